"""Claude Code processes: spawning, warm sessions, the concurrency limit, interrupts and the TTL.

One `SdkRunner` per application (started and closed by the app's `cleanup_ctx`). A request
gets a `Turn` from `SdkRunner.turn(...)`: one user message written to a CLI process, whose
output lines the handler reads until the `result` line.

- A stateless request runs its own process (`--no-session-persistence`); once the result is
  in, stdin is closed and the process exits. If the turn ends early (the client went away,
  an error), the process group is killed at once: no `claude` and no tool it started survives.
- A session's process stays up after its turn (warm: the next turn skips the CLI's start-up)
  until it has been idle for `sdk.session_ttl`; a later turn then resumes the transcript
  (`--resume`) in a new process. A turn that ends early is interrupted with the CLI's
  `interrupt` control request and drained to its result, so the process can serve the next
  turn; if the CLI does not answer within `INTERRUPT_GRACE`, it is killed.
- At most `sdk.max_concurrent` turns run at once; beyond that a request waits up to
  `sdk.queue_timeout` and then gets `Overloaded`. Turns of one session run one at a time.

Every process runs in its own process group, so killing it kills the tools it spawned.
Background work (reaping, draining, the TTL sweep) runs in tasks the runner owns and awaits
or cancels at `close()`; none is left untracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from attrs import evolve

from ccproxy_core.config.model import SdkConfig
from ccproxy_core.core.errors import Overloaded, ServiceUnavailable, UpstreamError
from ccproxy_core.core.wire import JSON
from ccproxy_core.sdk import command, conversation, sessions
from ccproxy_core.sdk.command import CliOptions, Launch
from ccproxy_core.sdk.models import cli_model
from ccproxy_core.sdk.process import INTERRUPT, LINE_LIMIT, CliProcess, Turn, user_line

log = logging.getLogger("ccproxy.sdk")

INTERRUPT_GRACE = 5.0  # seconds an interrupted turn may take to reach its result
EXIT_GRACE = 5.0  # seconds a finished stateless process may take to exit after stdin closes
MAX_SESSIONS = 1000  # remembered session ids; the least recently used is forgotten first
NOT_FOUND = (
    "SDK mode needs the Claude Code CLI (`claude`), and {what}; install Claude Code "
    "(npm install -g @anthropic-ai/claude-code) or set sdk.cli_path to the `claude` executable"
)


class SdkRunner:
    def __init__(self, *, proxy_host: str, proxy_port: int, state_dir: Path) -> None:
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.state_dir = state_dir
        self.sessions: dict[str, sessions.Session] = {}
        self._warm: dict[str, CliProcess] = {}
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._active = 0
        self._slots = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._processes: set[CliProcess] = set()
        self._ttl: Callable[[], float] = lambda: 600.0
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, ttl: Callable[[], float]) -> None:
        """Begin the TTL sweep; `ttl` gives the current sdk.session_ttl (the config may be reloaded)."""
        self._ttl = ttl
        self._spawn_task(self._sweep())

    async def close(self) -> None:
        self._closed = True
        for process in list(self._processes):
            process.kill()
        for task in list(self._tasks):
            task.cancel()
        for process in list(self._processes):
            await process.reap()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._processes.clear()
        self._warm.clear()

    def live_pids(self) -> list[int]:
        return sorted(p.pid for p in self._processes if p.alive)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        """Close session processes idle for longer than the TTL."""
        while not self._closed:
            ttl = self._ttl()
            await asyncio.sleep(max(0.05, min(ttl / 2, 30.0)))
            now = time.monotonic()
            for key, process in list(self._warm.items()):
                lock = self._session_locks.get(key)
                if now - process.last_used >= ttl and not (lock and lock.locked()):
                    del self._warm[key]
                    self._spawn_task(self._retire(process, EXIT_GRACE))

    async def _retire(self, process: CliProcess, grace: float) -> None:
        try:
            await process.close(grace)
        finally:
            self._processes.discard(process)

    # -- one turn ------------------------------------------------------------------------

    def cli_path(self, settings: SdkConfig, env: Mapping[str, str]) -> str:
        if settings.cli_path:
            path = Path(settings.cli_path).expanduser()
            if not path.is_file() or not os.access(path, os.X_OK):
                raise ServiceUnavailable(NOT_FOUND.format(what=f"sdk.cli_path ({path}) is not an executable file"))
            return str(path)
        found = shutil.which("claude", path=env.get("PATH"))
        if found is None:
            raise ServiceUnavailable(NOT_FOUND.format(what="it is not on the PATH"))
        return found

    def workdir(self, settings: SdkConfig) -> Path:
        if settings.cwd:
            return Path(settings.cwd).expanduser()
        path = self.state_dir / "sdk-cwd"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @contextlib.asynccontextmanager
    async def turn(self, settings: SdkConfig, body: JSON, model: str, session_id: str | None) -> AsyncIterator[Turn]:
        """Run one user turn; the caller reads `Turn.next()` until the result."""
        conversation.refuse_client_tools(body)
        messages = body.get("messages")
        assert isinstance(messages, list)
        conversation.cli_turn(messages, body.get("system"))  # a bad request is refused before it queues
        env = command.cli_env(os.environ, settings.env, proxy_host=self.proxy_host, proxy_port=self.proxy_port)
        cli = self.cli_path(settings, env)
        options = CliOptions(
            allowed_tools=settings.allowed_tools, user_settings=settings.user_settings, mcp_servers=settings.mcp_servers
        )
        lock = self._session_locks.setdefault(session_id, asyncio.Lock()) if session_id is not None else None
        await self._admit(settings, lock)
        process: CliProcess | None = None
        turn: Turn | None = None
        # Read under the lock: the previous turn of this session may have changed it until now.
        session = self._session(session_id) if session_id is not None else None
        try:
            offset, new = sessions.unseen(session, messages) if session else (0, messages)
            plan = conversation.cli_turn(new, body.get("system"), offset=offset)
            launch = Launch(
                model=cli_model(model),
                system=plan.system,
                session_uuid=session.uuid if session else None,
                resume=bool(session and session.started),
            )
            process = self._take_warm(session_id, launch, options)
            if process is None:
                process = await self._spawn(cli, options, launch, env, self.workdir(settings))
            await process.send(user_line(plan.content, launch.session_uuid))
            turn = Turn(process, new)
            yield turn
        finally:
            self._release_slot()
            self._finish(process, turn, session, lock)

    def _session(self, session_id: str) -> sessions.Session:
        session = self.sessions.pop(session_id, None) or sessions.new_session(session_id)
        self.sessions[session_id] = session  # most recently used last
        while len(self.sessions) > MAX_SESSIONS:
            self._forget(next(iter(self.sessions)))
        return session

    def _forget(self, session_id: str) -> None:
        """Drop the least recently used session: its id, its warm process and its (idle) lock."""
        self.sessions.pop(session_id, None)
        lock = self._session_locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._session_locks[session_id]
            process = self._warm.pop(session_id, None)
            if process is not None:
                self._spawn_task(self._retire(process, EXIT_GRACE))

    async def _admit(self, settings: SdkConfig, lock: asyncio.Lock | None) -> None:
        """Wait (up to sdk.queue_timeout) for the session's turn and a free run slot."""
        locked = False
        try:
            async with asyncio.timeout(settings.queue_timeout):
                if lock is not None:
                    await lock.acquire()
                    locked = True
                async with self._slots:
                    await self._slots.wait_for(lambda: self._active < settings.max_concurrent)
                    self._active += 1
        except BaseException as exc:
            if locked and lock is not None:
                lock.release()
            if not isinstance(exc, TimeoutError):
                raise
            raise Overloaded(
                f"SDK mode is busy: {self._active} Claude Code run(s) in progress (sdk.max_concurrent = "
                f"{settings.max_concurrent}) and this request waited sdk.queue_timeout "
                f"({settings.queue_timeout:g} s); retry later, or raise sdk.max_concurrent"
            ) from None

    def _release_slot(self) -> None:
        self._active -= 1

        async def notify() -> None:
            async with self._slots:
                self._slots.notify_all()

        self._spawn_task(notify())

    def _take_warm(self, session_id: str | None, launch: Launch, options: CliOptions) -> CliProcess | None:
        if session_id is None:
            return None
        process = self._warm.pop(session_id, None)
        if process is None:
            return None
        if (
            process.alive
            and process.launch.session_uuid == launch.session_uuid
            and process.launch.model == launch.model
            and process.options == options
        ):
            return process
        self._spawn_task(self._retire(process, 0.0))  # a changed model or settings: start afresh
        return None

    async def _spawn(
        self, cli: str, options: CliOptions, launch: Launch, env: Mapping[str, str], cwd: Path
    ) -> CliProcess:
        args = command.cli_args(cli, options, launch)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env),
                cwd=str(cwd),
                limit=LINE_LIMIT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceUnavailable(
                NOT_FOUND.format(what=f"{cli} could not be started ({exc.strerror or exc})")
            ) from None
        process = CliProcess(proc, launch, options)
        self._processes.add(process)
        log.debug(
            "started Claude Code pid %d (model %s, session %s)",
            proc.pid,
            launch.model or "default",
            launch.session_uuid or "none",
        )
        return process

    def _finish(
        self, process: CliProcess | None, turn: Turn | None, session: sessions.Session | None, lock: asyncio.Lock | None
    ) -> None:
        """After a turn (synchronous: it also runs while the handler is being cancelled)."""
        interrupting = session is not None and process is not None and process.alive and turn is not None
        interrupting = interrupting and not (turn and turn.finished)
        if session is not None and not interrupting:
            self.sessions[session.client_id] = self._session_after(session, turn)
        if process is None:
            if lock is not None:
                lock.release()
            return
        process.last_used = time.monotonic()
        if session is None:
            if not (turn and turn.finished):
                process.kill()
            self._spawn_task(self._retire(process, EXIT_GRACE))
        elif turn is not None and turn.finished and process.alive:
            self._warm[session.client_id] = process
        elif interrupting and turn is not None:
            self._spawn_task(self._interrupt(session, process, turn, lock))
            return  # the drain releases the session lock once the process is idle again
        else:
            process.kill()
            self._spawn_task(self._retire(process, 0.0))
        if lock is not None:
            lock.release()

    @staticmethod
    def _session_after(session: sessions.Session, turn: Turn | None) -> sessions.Session:
        if turn is not None and turn.succeeded:
            return session.after_turn(turn.new_messages)
        if turn is not None and turn.finished:
            return evolve(session, started=True)  # the CLI holds the turn in its transcript
        if not session.started:
            # A first turn cut short may or may not have left a transcript: start a new one.
            return sessions.new_session(session.client_id)
        return session

    async def _interrupt(
        self, session: sessions.Session, process: CliProcess, turn: Turn, lock: asyncio.Lock | None
    ) -> None:
        """Stop the turn in progress and read to its result, so the process can take the next turn."""
        try:
            await process.send(INTERRUPT)
            async with asyncio.timeout(INTERRUPT_GRACE):
                while not turn.finished:
                    await turn.next()
            process.last_used = time.monotonic()
            if not self._closed:
                self._warm[session.client_id] = process
        except (TimeoutError, UpstreamError):
            process.kill()
            await self._retire(process, 0.0)
        finally:
            if self.sessions.get(session.client_id, session).uuid == session.uuid:
                self.sessions[session.client_id] = self._session_after(session, turn)
            if lock is not None:
                lock.release()
