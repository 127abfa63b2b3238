"""`python -m ccproxy_core ...` is the `ccproxy` command."""

import sys

from ccproxy_core.cli.main import main

sys.exit(main())
