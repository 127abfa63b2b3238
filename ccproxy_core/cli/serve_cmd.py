"""`ccproxy serve`: load the config and run the server in the foreground (or its workers, or --reload).

Before it binds, the container's guard: with CCPROXY_REQUIRE_APIKEY set, a server reachable from
other machines needs an apikey (`open_bind_refusal`).

The one command on the path of every start of the proxy (`ccproxy start`, `ccproxy code` and the
services run it too), so it is kept apart from the other commands: `ccproxy serve ...` loads
this module, the parser built as far as serve, and nothing of the other commands.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from ccproxy_core.cli.errors import CommandError


def flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config layer the command line gives: --host, --port and --log-level where set."""
    out: dict[str, Any] = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    if getattr(args, "log_level", None):
        out["log"] = {"level": args.log_level}
    return out


def load(args: argparse.Namespace) -> Any:
    """The effective configuration (config.load.LoadedConfig) for the command line's flags and --config."""
    from ccproxy_core.config.load import load as load_config

    return load_config(flags=flags(args), config_file=getattr(args, "config", None))


def serve(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import codegen_cache

    codegen_cache.install()  # attrs' and cattrs' generated code from the cache, not compiled at each start
    try:
        return _serve_cached(args)
    finally:
        codegen_cache.uninstall()  # (done before the server runs; here too for the paths that return early)


def _serve_cached(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import codegen_cache
    from ccproxy_core.config.model import unstructure
    from ccproxy_core.server import app as server

    loaded = load(args)
    guard_serve(loaded.config)  # the container's CCPROXY_REQUIRE_APIKEY
    if args.worker_index is not None or (args.workers or 1) > 1:
        return _serve_workers(args, loaded)
    if args.reload:
        from ccproxy_core.cli import reload

        return reload.run(_serve_argv(args), loaded.origin.candidates() if loaded.origin else [])
    # The modules and the config are loaded (and the unstructure functions the app builds from the
    # config made, by unstructuring it once): keep their code for the next start, and free the cache
    # (a module first loaded by a request compiles its classes as it would without it).
    unstructure(loaded.config)
    codegen_cache.uninstall()
    codegen_cache.forget_sources()  # ~0.3 MB of generated text kept for tracebacks and debuggers only
    try:
        server.run(loaded.config, config_files=tuple(str(f) for f in loaded.files), loaded=loaded)
    except OSError as exc:
        from ccproxy_core.cli import ports  # only to name what holds the port

        if not ports.is_address_in_use(exc):
            raise
        host, port = loaded.config.host, loaded.config.port
        raise CommandError(ports.in_use_message(host, port, ports.holder(port))) from None
    return 0


def _serve_workers(args: argparse.Namespace, loaded: Any) -> int:
    """`serve --workers N`: the supervisor (cli/workers.py), or one of its workers (`--worker-index`)."""
    from ccproxy_core.cli import workers

    if args.reload and args.worker_index is None:
        raise CommandError("--reload runs one server process; drop --workers to use it")
    return workers.serve(
        loaded, args.workers or 1, args.worker_index, config_file=args.config, log_level=args.log_level
    )


def _serve_argv(args: argparse.Namespace) -> list[str]:
    """`serve`'s own flags again, for the child that `--reload` runs."""
    argv = ["serve"]
    for flag in ("host", "port", "config", "log_level"):
        if getattr(args, flag, None) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return argv


def guard_serve(config: Any) -> None:
    """`serve` refuses a non-loopback bind without an apikey when CCPROXY_REQUIRE_APIKEY is set."""
    refusal = open_bind_refusal(str(config.host), str(config.apikey), os.environ)
    if refusal:
        raise CommandError(refusal)


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
REQUIRE_APIKEY = "CCPROXY_REQUIRE_APIKEY"


def open_bind_refusal(host: str, apikey: str, env: Mapping[str, str]) -> str | None:
    """Why `serve` must not start, or None: with CCPROXY_REQUIRE_APIKEY=1 (the container sets it)
    a server reachable from other machines needs an `apikey`, or anyone who can reach the port
    spends the configured provider keys."""
    if env.get(REQUIRE_APIKEY, "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    if host in _LOOPBACK or host.startswith("127.") or apikey:
        return None
    return (
        f"refusing to listen on {host} without an apikey ({REQUIRE_APIKEY} is set): set `apikey` in the "
        "config or CCPROXY_API_KEY in the environment, and give that key to your clients"
    )
