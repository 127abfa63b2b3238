"""`ccproxy serve ...` is parsed by a parser built only as far as `serve`: same flags, help and errors."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from ccproxy_core.cli.main import build_parser

ARGVS = [
    ["serve"],
    ["server", "--port", "3456", "--host", "0.0.0.0", "--config", "c.json", "--log-level", "debug"],
    ["serve", "--reload"],
    ["serve", "--workers", "2"],
    ["serve", "--worker-index", "1", "--workers", "2"],
    ["serve", "--help"],
    ["serve", "--port", "x"],
    ["serve", "--workers", "0"],
    ["serve", "extra"],
    ["serve", "--version"],
    ["serve", "--log-level", "loud"],
]


def _outcome(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(parser.parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_serve_parses_the_same_with_the_short_parser(argv: list[str]) -> None:
    """Values, help text, error messages and exit codes match the full parser's for every `serve` command line."""
    assert _outcome(build_parser(serve_only=True), argv) == _outcome(build_parser(), argv)
