"""config/file_watch.py: every kind of change to a watched file is reported by path, nothing else is."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from ccproxy_core.config import file_watch
from ccproxy_core.config.file_watch import changed, signature

FAST = 0.02  # the tests' interval between looks


def test_signature_is_none_for_a_missing_file_and_changes_with_the_content(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    assert signature(str(path)) is None
    path.write_text("{}")
    first = signature(str(path))
    assert first is not None
    path.write_text('{"port": 8080}')
    assert signature(str(path)) != first


def test_a_file_replaced_by_rename_has_a_new_signature_even_at_the_same_size_and_time(tmp_path: Path) -> None:
    path, temp = tmp_path / "config.json", tmp_path / ".config.json.tmp"
    path.write_text("{}")
    before = signature(str(path))
    temp.write_text("[]")
    st = path.stat()
    os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(temp, path)
    assert signature(str(path)) != before  # a new inode (and a new ctime)


def test_changed_names_the_paths_whose_signature_moved() -> None:
    before = {"a": (1, 2, 3, 4), "b": None, "c": (5, 6, 7, 8)}
    after = {"a": (1, 2, 3, 4), "b": (9, 9, 9, 9), "c": None}
    assert changed(before, after) == ["b", "c"]
    assert changed(after, after) == []


async def _watching(paths: list[Path]) -> tuple[file_watch.FileWatch, asyncio.Queue[str]]:
    seen: asyncio.Queue[str] = asyncio.Queue()
    return file_watch.watch([str(p) for p in paths], seen.put_nowait, interval=FAST), seen


async def _next(seen: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(seen.get(), 5)


async def test_a_write_a_rename_over_a_creation_and_a_deletion_are_each_reported(tmp_path: Path) -> None:
    config, later = tmp_path / "config.json", tmp_path / "project.json"
    config.write_text("{}")
    watch, seen = await _watching([config, later])
    try:
        config.write_text('{"port": 1}')
        assert await _next(seen) == str(config)
        temp = tmp_path / ".config.json.swp"
        temp.write_text('{"port": 2}')
        os.replace(temp, config)
        assert await _next(seen) == str(config)
        later.write_text("{}")  # a file that did not exist at the start
        assert await _next(seen) == str(later)
        config.unlink()
        assert await _next(seen) == str(config)
        (tmp_path / "other.json").write_text("{}")  # not watched: never reported
        await asyncio.sleep(5 * FAST)
        assert seen.empty()
    finally:
        await watch.stop()


async def test_a_file_in_a_directory_created_later_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "config.json"
    watch, seen = await _watching([path])
    try:
        path.parent.mkdir()
        path.write_text("{}")
        assert await _next(seen) == str(path)
    finally:
        await watch.stop()


async def test_nothing_is_reported_after_stop_and_no_thread_ever_runs(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    before = set(threading.enumerate())
    watch, seen = await _watching([path])
    assert set(threading.enumerate()) == before
    await watch.stop()
    path.write_text('{"port": 3}')
    await asyncio.sleep(5 * FAST)
    assert seen.empty()


async def test_a_callback_that_stops_the_watch_ends_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    calls: list[str] = []

    def once(p: str) -> None:
        calls.append(p)
        watch.close()

    watch = file_watch.watch([str(path)], once, interval=FAST)
    path.write_text("{}")
    await asyncio.sleep(5 * FAST)
    path.write_text('{"port": 4}')
    await asyncio.sleep(5 * FAST)
    assert calls == [str(path)]


@pytest.mark.parametrize("bad", ["", "nul\0byte"])
def test_an_unreadable_path_is_missing_not_an_error(bad: str) -> None:
    assert signature(bad) is None
