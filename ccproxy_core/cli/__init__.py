"""The `ccproxy` command line: argparse in front of plain functions, and the daemon."""
