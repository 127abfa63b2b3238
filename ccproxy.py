"""Entry point of the `ccproxy` command; everything else lives in ccproxy_core."""

import sys

from ccproxy_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
