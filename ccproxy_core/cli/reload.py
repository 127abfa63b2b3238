"""`ccproxy serve --reload`: development mode, a server restarted whenever its code or config changes.

ccproxy-api's users type it. Config edits alone are applied live by every server (see
`server.config_watch`); `--reload` also picks up edits to ccproxy's own Python code, which
only a new process can. The supervisor (this process) never serves: it runs
`ccproxy serve` (same flags, without `--reload`) as a child, watches the package directory
(recursively, `.py` files) and the config files' directories, and on a change (after a short
debounce) stops the child gracefully and starts a new one. A child that crashes (a syntax
error mid-edit) is started again at the next change. Ctrl-C or SIGTERM stops both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEBOUNCE = 0.3
STOP_TIMEOUT = 10.0
CHILD_BOOT = (
    "import sys; sys.path[0] = sys.argv.pop(1); from ccproxy_core.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


# watchdog's events that can mean a file's content changed (not opened, not closed unwritten).
WATCHDOG_KINDS = frozenset({"modified", "created", "moved", "deleted", "closed"})


def package_root() -> Path:
    """The directory that holds `ccproxy_core` (a checkout, site-packages, or a zipapp's extract)."""
    return Path(__file__).resolve().parents[2]


def relevant(path: str, code_dir: Path, config_files: frozenset[str]) -> bool:
    """Whether a change to `path` calls for a restart: ccproxy's Python code or a config file."""
    if os.path.normcase(path) in config_files:
        return True
    p = Path(path)
    return p.suffix == ".py" and code_dir in p.parents and "__pycache__" not in p.parts


class Supervisor:
    def __init__(self, serve_argv: Sequence[str], config_files: Sequence[Path]) -> None:
        self.serve_argv = list(serve_argv)
        self.code_dir = package_root() / "ccproxy_core"
        self.config_files = frozenset(os.path.normcase(str(p)) for p in config_files)
        self.config_dirs = sorted({str(p.parent) for p in config_files if p.parent.is_dir()})
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.last_change = ""
        self.child: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        argv = [sys.executable, "-c", CHILD_BOOT, str(package_root()), *self.serve_argv]
        self.child = subprocess.Popen(argv)
        print(
            f"ccproxy: --reload: server started (pid {self.child.pid}); watching {self.code_dir} and the config files",
            file=sys.stderr,
            flush=True,
        )

    def stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(OSError):
            child.send_signal(signal.SIGINT if os.name == "nt" else signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def seen(self, path: str) -> None:
        if relevant(path, self.code_dir, self.config_files):
            self.last_change = path
            self.changed.set()

    def watch(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        supervisor = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in WATCHDOG_KINDS:
                    for p in (event.src_path, getattr(event, "dest_path", "")):
                        if p:
                            supervisor.seen(os.fsdecode(p))

        observer = Observer()
        observer.schedule(Handler(), str(self.code_dir), recursive=True)
        for d in self.config_dirs:
            observer.schedule(Handler(), d, recursive=False)
        observer.daemon = True
        observer.start()
        return observer

    def run(self) -> int:
        observer = self.watch()
        previous = {s: signal.signal(s, lambda *_: self.stopping.set()) for s in (signal.SIGTERM,)}
        try:
            self.spawn()
            reported_exit = False
            while not self.stopping.is_set():
                if self.changed.wait(0.2):
                    time.sleep(DEBOUNCE)  # let the editor finish writing
                    self.changed.clear()
                    print(
                        f"ccproxy: --reload: {self.last_change} changed; restarting the server",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.stop_child()
                    self.spawn()
                    reported_exit = False
                elif self.child is not None and self.child.poll() is not None and not reported_exit:
                    print(
                        f"ccproxy: --reload: the server exited with code {self.child.returncode}; "
                        "it starts again at the next change",
                        file=sys.stderr,
                        flush=True,
                    )
                    reported_exit = True
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_child()
            observer.stop()
            observer.join(5)
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0


def run(serve_argv: Sequence[str], config_files: Sequence[Path]) -> int:
    return Supervisor(serve_argv, config_files).run()
