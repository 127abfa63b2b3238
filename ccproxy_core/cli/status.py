"""`ccproxy status`: is the background proxy running, healthy, and if a provider is unusable, why.

It reads the pidfile (never removing it: a stale one is reported, `start` replaces it), asks the
server's `/health` and `/status`, and adds what only this machine can tell: the reasons from
`provider_problems` (an accounts file missing, readable by others, or without an account).
Exit codes: 0 running, 1 running but not answering, 3 not running (as LSB init scripts do).
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from attrs import asdict

from ccproxy_core import __version__
from ccproxy_core.cli.daemon import STATUS_NOT_RUNNING, _get_json, config_of
from ccproxy_core.cli.pidfile import PidInfo, is_ours, load_pidfile, pidfile_path


def _uptime(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    return " ".join([*parts, f"{s}s"])


def _pool(info: PidInfo) -> dict[str, Any] | None:
    """The account pool aggregate from `/status`, when the server has one (best effort)."""
    headers: dict[str, str] = {}
    with contextlib.suppress(Exception):  # the config may have changed since the start: then no key
        apikey = config_of(info).apikey
        if apikey:
            headers["x-api-key"] = apikey
    data = _get_json(f"{info.url}/status", timeout=2.0, headers=headers)
    return data if data is not None and "totalAccounts" in data else None


def _status_report(info: PidInfo) -> dict[str, Any]:
    health = _get_json(f"{info.url}/health", timeout=3.0)
    report: dict[str, Any] = {
        "running": True,
        "answering": health is not None,
        "pid": info.pid,
        "url": info.url,
        "host": info.host,
        "port": info.port,
        "version": info.version,
        "started_at": info.started_at,
        "uptime": None,
        "status": None,
        "providers": [],
        "pool": None,
        "log": info.log,
        "pidfile": str(pidfile_path()),
        "flags": asdict(info.flags),
        "workers": info.flags.workers or 1,  # `--workers N`: the pid is the supervisor's
    }
    if health is not None:
        report.update(
            version=health.get("version", info.version),
            uptime=health.get("uptime"),
            status=health.get("status"),
            providers=health.get("providers", []),
            pool=_pool(info),
        )
        report["problems"] = _problems(info, report["providers"])
    return report


def _problems(info: PidInfo, providers: list[dict[str, Any]]) -> dict[str, list[str]]:
    from ccproxy_core.cli.provider_problems import problems
    from ccproxy_core.config.model import ConfigError

    try:
        config = config_of(info)
    except (ConfigError, OSError):  # the config changed since the start and no longer loads: /health alone
        config = None
    return problems(providers, config)


def _render_status(report: dict[str, Any]) -> str:
    answering = report["answering"]
    lines = [
        f"ccproxy is running (pid {report['pid']})"
        if answering
        else f"ccproxy runs (pid {report['pid']}) but does not answer at {report['url']}/health; see `ccproxy logs`"
    ]
    rows = [
        ("url", report["url"]),
        (
            "version",
            report["version"]
            + ("" if report["version"] == __version__ else f" (this ccproxy is {__version__}: `ccproxy restart`)"),
        ),
    ]
    if report.get("workers", 1) > 1:
        rows.append(("workers", f"{report['workers']} processes on one port (pid {report['pid']} supervises them)"))
    if answering:
        rows += [("health", str(report["status"])), ("uptime", _uptime(float(report["uptime"] or 0)))]
        providers = [
            f"{p.get('name')} ({p.get('kind')}, circuit {p.get('circuit', '?')}"
            f"{'' if p.get('usable', True) else ', unusable'}"
            f"{'' if p.get('enabled', True) else ', disabled'})"
            for p in report["providers"]
        ]
        rows.append(("providers", ", ".join(providers) or "none"))
        for name, reasons in (report.get("problems") or {}).items():
            rows += [("problem", f"{name}: {reason}") for reason in reasons]
        pool = report["pool"]
        if pool and pool.get("totalAccounts"):  # transparent providers have no pool to show
            rows.append(
                (
                    "pool",
                    f"{pool.get('availableAccounts')}/{pool.get('totalAccounts')} accounts "
                    f"available, {pool.get('rateLimitedAccounts', 0)} rate limited, "
                    f"next {pool.get('nextAccount') or '-'}",
                )
            )
    rows += [("log", report["log"]), ("pidfile", report["pidfile"])]
    return "\n".join([*lines, *(f"  {k + ':':<10} {v}" for k, v in rows)])


def show(*, as_json: bool) -> int:
    exists, info = load_pidfile()
    if info is None or not is_ours(info):
        stale = exists
        if as_json:
            print(
                orjson.dumps(
                    {
                        "running": False,
                        "pidfile": str(pidfile_path()),
                        "stale": stale,
                        "stale_pid": info.pid if info else None,
                    }
                ).decode()
            )
        else:
            print(
                "ccproxy is not running"
                + (f" (stale pidfile {pidfile_path()}; `ccproxy start` replaces it)" if stale else "")
            )
        return STATUS_NOT_RUNNING
    report = _status_report(info)
    if as_json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(_render_status(report))
    return 0 if report["answering"] else 1
