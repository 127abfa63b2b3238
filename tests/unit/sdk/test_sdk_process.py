"""Finding everything a CLI process started, so a kill leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from ccproxy_core.sdk.process import descendants

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process trees are POSIX here")


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_descendants_include_grandchildren_in_other_groups() -> None:
    """Children and grandchildren are found, even one that made a process group of its own (as Bash tools do)."""
    parent = subprocess.Popen(
        ["sh", "-c", "sleep 61 & python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(61)' & wait"]
    )
    try:
        found: list[int] = []
        for _ in range(200):  # until the second child has made its own group (bounded)
            found = descendants(parent.pid)
            if any(_group(pid) not in (None, os.getpgid(parent.pid)) for pid in found):
                break
            time.sleep(0.02)
        assert len(found) >= 2
        assert any(_group(pid) not in (None, os.getpgid(parent.pid)) for pid in found)
    finally:
        for pid in [*descendants(parent.pid), parent.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_no_descendants_for_a_process_without_children() -> None:
    """A lone process has an empty tree."""
    assert descendants(os.getpid() + 10_000_000) == []
