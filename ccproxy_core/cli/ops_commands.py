"""The operations commands: `service`, `completion` and `import`.

Their parsers are added to the main parser by `add_commands(command)` (the `command` factory of
`main.build_parser`), and each handler calls one function in the module that does the job:
`service`, `completion`, `importer`. Kept apart so the parser module stays the table of
everyday commands; `serve` never loads this module.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

SHELLS = ("bash", "zsh", "fish")  # completion.py renders a script for each; named here so the parser needs not load it
Handler = Callable[[argparse.Namespace], int]
Factory = Callable[[str, str, Handler], argparse.ArgumentParser]


def _errors(func: Handler) -> Handler:
    """A service step that failed is one line for the user, never a traceback."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from ccproxy_core.cli.errors import CommandError
        from ccproxy_core.cli.service import ServiceError

        try:
            return func(args)
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc

    return wrapper


def add_commands(command: Factory) -> None:
    svc = command(
        "service", "run ccproxy as a service that starts with the machine (systemd, launchd, Windows)", _service_help
    )
    sub = svc.add_subparsers(dest="service_command", metavar="ACTION")
    install = sub.add_parser(
        "install",
        help="write the service, enable and start it",
        epilog="example: ccproxy service install --config ~/.config/ccproxy/config.json",
    )
    install.add_argument(
        "--system", action="store_true", help="a systemd system unit that starts at boot, running as you (needs sudo)"
    )
    install.add_argument("--config", metavar="FILE", help="the config the service reads (default: your user config)")
    install.set_defaults(func=_service_install)
    uninstall = sub.add_parser("uninstall", help="stop and remove the service (the config and env file stay)")
    uninstall.add_argument("--system", action="store_true", help="the systemd system unit")
    uninstall.set_defaults(func=_service_uninstall)
    st = sub.add_parser("status", help="say whether the service is installed, enabled and running")
    st.add_argument("--system", action="store_true", help="the systemd system unit")
    st.set_defaults(func=_service_status)
    run = sub.add_parser("run")  # what the unit executes; no help= keeps it out of the listing
    run.add_argument("--config", metavar="FILE", required=True)
    run.add_argument("--env-file", metavar="FILE")
    run.set_defaults(func=_service_run)

    command("completion", "print the shell completion script", _completion).add_argument(
        "shell", choices=SHELLS, help="bash, zsh or fish"
    )

    imp = command("import", "convert another proxy's config into a commented ccproxy config", _import)
    imp.add_argument(
        "file", metavar="FILE", help="a Go ccproxy, npm claude-code-proxy, claude-code-router or ccproxy-api config"
    )
    imp.add_argument("-o", "--output", metavar="OUT", help="write here instead of printing")
    imp.add_argument("--force", action="store_true", help="replace OUT when it exists")


def _service_help(args: argparse.Namespace) -> int:
    import sys

    print("usage: ccproxy service {install,uninstall,status} [--system] [--help]", file=sys.stderr)
    return 2


@_errors
def _service_install(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import service

    return service.install(system=args.system, config=args.config)


@_errors
def _service_uninstall(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import service

    return service.uninstall(system=args.system)


@_errors
def _service_status(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import service

    return service.status(system=args.system)


@_errors
def _service_run(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import service

    return service.run(config=args.config, env_file=args.env_file)


def _completion(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import completion

    return completion.main(args.shell)


def _import(args: argparse.Namespace) -> int:
    from datetime import date

    from ccproxy_core.cli import importer

    return importer.run(args.file, args.output, force=args.force, when=date.today().isoformat())
