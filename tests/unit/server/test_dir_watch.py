"""config/dir_watch.py: inotify events read by the event loop, and the config watcher's use of it.

The watches are real (a temporary directory, the kernel's inotify); waits are bounded by a count
of loop turns, never by a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ccproxy_core.config import dir_watch
from ccproxy_core.config.load import Sources
from ccproxy_core.server import config_watch
from ccproxy_core.server.app import create_app

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def inotify_fds() -> int:
    """How many inotify descriptors this process holds (other tests' watchers included)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (listdir's own descriptor, another thread's)
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    return count


def event(wd: int, mask: int, name: bytes = b"", pad: int = 0) -> bytes:
    raw = name + b"\0" * pad if name or pad else b""
    return struct.pack("iIII", wd, mask, 0, len(raw)) + raw


def test_parse_reads_every_event_of_one_read_with_its_name_unpadded() -> None:
    """Events follow each other in one read; a name is NUL-padded, and an event may have none."""
    buf = event(1, dir_watch.IN_MODIFY, b"config.json", pad=5) + event(2, dir_watch.IN_Q_OVERFLOW) + event(1, 8, b"a")
    assert dir_watch.parse(buf) == [
        (1, dir_watch.IN_MODIFY, b"config.json"),
        (2, dir_watch.IN_Q_OVERFLOW, b""),
        (1, 8, b"a"),
    ]


async def until(seen: list[str | None], want: set[str | None]) -> None:
    for _ in range(2000):  # bounded: the kernel queues the event at once, the loop reads it in a turn or two
        if want <= set(seen):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never seen: {want - set(seen)}; seen {seen}")


@linux
async def test_a_write_a_rename_in_and_a_delete_are_each_reported_by_path(tmp_path: Path) -> None:
    """Each name a change in the directory is about reaches on_change as a full path."""
    seen: list[str | None] = []
    watch = dir_watch.open_watch([str(tmp_path)], seen.append)
    assert watch is not None
    try:
        (tmp_path / "config.json").write_text("{}")
        await until(seen, {str(tmp_path / "config.json")})
        outside = tmp_path.parent / f"{tmp_path.name}-new.json"
        outside.write_text("{}")
        os.replace(outside, tmp_path / "moved.json")  # how editors save: a rename over the file
        (tmp_path / "config.json").unlink()
        await until(seen, {str(tmp_path / "moved.json")})
        seen.clear()
        (tmp_path / "config.json").write_text("{}")
        await until(seen, {str(tmp_path / "config.json")})
    finally:
        watch.close()


@linux
async def test_after_close_nothing_is_reported_and_the_descriptor_is_gone(tmp_path: Path) -> None:
    """close() stops reading and closes the descriptor; closing twice is harmless."""
    before = inotify_fds()
    seen: list[str | None] = []
    watch = dir_watch.open_watch([str(tmp_path)], seen.append)
    assert watch is not None
    watch.close()
    watch.close()
    (tmp_path / "x.json").write_text("{}")
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == []
    assert inotify_fds() <= before


@linux
async def test_a_directory_that_cannot_be_watched_is_an_oserror_naming_it(tmp_path: Path) -> None:
    """A refused watch raises OSError with the directory (the watcher then serves without reload), leaking no descriptor."""
    before = inotify_fds()
    with pytest.raises(OSError, match="inotify_add_watch") as caught:
        dir_watch.open_watch([str(tmp_path), str(tmp_path / "missing")], lambda _: None)
    assert caught.value.filename == str(tmp_path / "missing")
    assert inotify_fds() <= before


async def reloads(aiohttp_server: Any, tmp_path: Path) -> tuple[config_watch.ConfigWatcher, list[object]]:
    """A server watching its config file; the file is rewritten and the reload awaited."""
    path = tmp_path / "config.json"
    provider = {"name": "a", "kind": "anthropic", "api_base_url": "http://127.0.0.1:9", "api_key": "k"}
    path.write_text(json.dumps({"providers": [provider]}))
    sources = Sources(env={}, cwd=tmp_path, managed=tmp_path / "none.json", config_file=str(path))
    app: web.Application = create_app(sources.load().config)
    watcher = config_watch.install(app, sources)
    await aiohttp_server(app)
    outcomes: list[object] = []
    watcher.on_reload = outcomes.append
    path.write_text(path.read_text().replace('"a"', '"b"'))
    for _ in range(2000):  # bounded: the debounce is 0.25 s
        if outcomes:
            break
        await asyncio.sleep(0.005)
    return watcher, outcomes


@linux
async def test_on_linux_the_config_is_watched_in_the_loop_without_a_thread(aiohttp_server: Any, tmp_path: Path) -> None:
    """The config watcher uses inotify in the event loop: no watchdog thread runs, and an edit is applied."""
    watcher, outcomes = await reloads(aiohttp_server, tmp_path)
    assert isinstance(watcher._observer, dir_watch.DirWatch)
    assert [t for t in threading.enumerate() if type(t).__module__.startswith("watchdog")] == []
    assert outcomes and outcomes[0] is not None


async def test_where_inotify_cannot_be_had_watchdog_watches(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without inotify (macOS, Windows, an old libc) the config watcher falls back to watchdog, and reloads the same."""
    monkeypatch.setattr(dir_watch, "_libc", lambda: None)
    watcher, outcomes = await reloads(aiohttp_server, tmp_path)
    assert isinstance(watcher._observer, dir_watch.WatchdogWatch)
    assert type(watcher._observer.observer).__module__.startswith("watchdog")
    assert outcomes and outcomes[0] is not None
