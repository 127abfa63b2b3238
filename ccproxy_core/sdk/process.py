"""One Claude Code process speaking stream-json, and one user turn read from it.

`CliProcess` owns the subprocess: it writes NDJSON to stdin, reads NDJSON from stdout with a
read that survives a caller's timeout (so a keep-alive wait never loses a line), keeps the
tail of stderr for error messages, and kills the whole process group (the CLI and any tool it
started). `Turn` reads one turn's lines up to its `result`. Policy (which process, when to
kill or keep) is the runner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.core.wire import JSON
from ccproxy_core.sdk.command import CliOptions, Launch

LINE_LIMIT = 64 * 1024 * 1024  # one NDJSON line (a big tool result) may be large

# The CLI's control request that stops the turn in progress (the process stays up).
INTERRUPT: JSON = {"type": "control_request", "request_id": "ccproxy-interrupt", "request": {"subtype": "interrupt"}}


def user_line(content: tuple[JSON, ...], session_uuid: str | None) -> JSON:
    """One user turn on the CLI's stdin."""
    message = {"role": "user", "content": list(content)}
    return {"type": "user", "message": message, "parent_tool_use_id": None, "session_id": session_uuid or ""}


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc; `ps` elsewhere)."""
    found: dict[int, int] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    # The command name may hold spaces and parentheses: the fields follow the last ")".
                    found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        return found
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        for line in out.splitlines():
            pid, _, ppid = line.strip().partition(" ")
            with contextlib.suppress(ValueError):
                found[int(pid)] = int(ppid.strip())
    return found


def descendants(root: int) -> list[int]:
    """Every process below `root`, parents before children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class CliProcess:
    """One `claude` process speaking stream-json on its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, launch: Launch, options: CliOptions) -> None:
        self.proc = proc
        self.launch = launch
        self.options = options
        self.last_used = time.monotonic()
        self.total_cost = 0.0  # the CLI's `total_cost_usd` after its last result
        self._stderr = b""
        self._stderr_task = asyncio.get_running_loop().create_task(self._read_stderr())
        self._line: asyncio.Task[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self._stderr = (self._stderr + chunk)[-4000:]

    def exit_error(self) -> UpstreamError:
        tail = self._stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        detail = ": " + " / ".join(tail) if tail else ""
        return UpstreamError(
            502, "api_error", f"Claude Code exited (status {self.proc.returncode}) before it answered{detail}"
        )

    async def send(self, message: JSON) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(orjson.dumps(message) + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self.proc.wait()
            raise self.exit_error() from None

    async def next(self, silence: float | None) -> JSON | None:
        """The next JSON line; None after `silence` seconds without one (the read stays pending)."""
        assert self.proc.stdout is not None
        while True:
            if self._line is None:
                self._line = asyncio.get_running_loop().create_task(self.proc.stdout.readline())
            done, _ = await asyncio.wait({self._line}, timeout=silence)
            if not done:
                return None
            task, self._line = self._line, None
            try:
                raw = task.result()
            except (ValueError, asyncio.LimitOverrunError):
                raise UpstreamError(502, "api_error", "Claude Code printed a line too long to read") from None
            if not raw:
                await self.proc.wait()
                await asyncio.wait({self._stderr_task}, timeout=1.0)
                raise self.exit_error()
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # a stray non-JSON line (a warning) is not part of the protocol
            if isinstance(message, dict):
                return message

    def kill(self) -> None:
        """SIGKILL the CLI and everything it started.

        Claude Code runs each Bash command in a process group of its own, so killing the CLI's
        group is not enough: the tree is read first (once the CLI is dead its children lose the
        link), then every group in it is killed.
        """
        if not self.alive:
            return
        if not hasattr(os, "killpg"):  # Windows: no process groups; the CLI alone
            self.proc.kill()
            return
        tree = descendants(self.proc.pid)
        groups = {self.proc.pid}
        for pid in tree:
            with contextlib.suppress(OSError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        for pid in tree:  # anything that left its group
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    async def reap(self) -> None:
        """Wait for the process to be gone and release its pipes and tasks."""
        await self.proc.wait()
        for task in (self._line, self._stderr_task):
            if task is not None and not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._stderr_task

    async def close(self, grace: float) -> None:
        """End of input: let the CLI exit on its own within `grace`, else kill it."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
        except TimeoutError:
            self.kill()
        await self.reap()


class Turn:
    """One user turn in flight: the CLI's output lines up to its `result`."""

    def __init__(self, process: CliProcess, new_messages: list[Any]) -> None:
        self.process = process
        self.new_messages = new_messages
        self.previous_cost = process.total_cost
        self.finished = False  # the result line was read: the process may take another turn
        self.succeeded = False

    @property
    def pid(self) -> int:
        return self.process.pid

    async def next(self, silence: float | None = None) -> JSON | None:
        """The next output line (None: `silence` seconds passed without one)."""
        message = await self.process.next(silence)
        if message is not None and message.get("type") == "result" and not message.get("parent_tool_use_id"):
            self.finished = True
            self.succeeded = message.get("subtype") == "success" and not message.get("is_error")
            cost = message.get("total_cost_usd")
            if isinstance(cost, (int, float)):
                self.process.total_cost = float(cost)
        return message
