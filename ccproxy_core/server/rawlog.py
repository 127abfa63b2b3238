"""The opt-in raw HTTP log (`log.raw_http_dir`): each proxied request and its answer, as text.

For debugging a client or a provider: the client's request line, headers and body, then the
answer's status, headers and body (for a stream, the provider's bytes as they came). Every
configured secret (the proxy key, provider keys, OAuth tokens) is replaced by its masked form
wherever it appears, and credential headers are masked whatever they hold. Each body is cut at
`BODY_LIMIT` bytes; the file `http.log` rotates at `max_bytes` keeping `BACKUPS` old files.
Writing happens on a logging queue listener's thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ccproxy_core.core.redaction import mask_setting

if TYPE_CHECKING:
    from ccproxy_core.server.reqlog import RequestLog

BODY_LIMIT = 65536
BACKUPS = 3
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie", "set-cookie"})

log = logging.getLogger("ccproxy.raw_http")


def _cap(data: bytes) -> str:
    text = data[:BODY_LIMIT].decode("utf-8", "replace")
    return text + (f"\n[... {len(data) - BODY_LIMIT} more bytes not logged]" if len(data) > BODY_LIMIT else "")


class RawHttpLog:
    def __init__(
        self,
        directory: str,
        secrets: Callable[[], Iterable[str]],
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = BACKUPS,
    ) -> None:
        self.path = Path(directory).expanduser() / "http.log"
        self._secrets = secrets
        self._max_bytes = max_bytes
        self._backups = backups
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=1000)
        self._listener: logging.handlers.QueueListener | None = None
        self._logger = logging.getLogger(f"ccproxy.raw_http.{id(self)}")
        self._logger.propagate = False

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=self._max_bytes, backupCount=self._backups, encoding="utf-8"
            )
        except OSError as exc:
            log.error("raw HTTP log disabled: cannot write %s: %s (log.raw_http_dir)", self.path, exc)
            return
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._listener.start()
        self._logger.handlers[:] = [_DroppingQueueHandler(self._queue)]
        self._logger.setLevel(logging.INFO)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            for handler in self._listener.handlers:
                handler.close()
            self._listener = None
        self._logger.handlers.clear()

    def mask(self, text: str) -> str:
        for secret in sorted({s for s in self._secrets() if len(s) >= 8}, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, mask_setting(secret))
        return text

    def _headers(self, mark: str, headers: Iterable[tuple[str, str]]) -> list[str]:
        return [
            f"{mark} {name}: {mask_setting(value) if name.lower() in _CREDENTIAL_HEADERS else value}"
            for name, value in headers
        ]

    def write(self, request: web.Request, response: web.StreamResponse | None, status: int, entry: RequestLog) -> None:
        if self._listener is None:
            return
        when = datetime.fromtimestamp(entry.ts, UTC).isoformat(timespec="milliseconds")
        body = request._read_bytes or b""
        lines = [
            f"=== {entry.request_id} {when} ===",
            f"> {request.method} {request.path_qs} HTTP/{request.version.major}.{request.version.minor}",
            *self._headers(">", request.headers.items()),
            ">",
            _cap(body),
            f"< {status}",
        ]
        if response is not None:
            lines.extend(self._headers("<", response.headers.items()))
        lines.append("<")
        answer = getattr(response, "body", None)
        if isinstance(answer, bytes):
            lines.append(_cap(answer))
        elif entry.raw:
            lines.append("(the provider's stream as it came)")
            lines.append(_cap(bytes(entry.raw)))
        lines.append("")
        self._logger.info("%s", self.mask("\n".join(lines)))


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """A full queue drops the entry rather than blocking a request."""

    def enqueue(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(record)
