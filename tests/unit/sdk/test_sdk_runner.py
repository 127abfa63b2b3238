"""The runner's queue: run slots and session turns, waited for up to sdk.queue_timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ccproxy_core.config.model import SdkConfig, Seconds
from ccproxy_core.core.errors import Overloaded
from ccproxy_core.sdk.runner import SdkRunner

FAST = SdkConfig(max_concurrent=1, queue_timeout=Seconds(0.05))


def runner(tmp_path: Path) -> SdkRunner:
    return SdkRunner(proxy_host="127.0.0.1", proxy_port=3456, state_dir=tmp_path)


async def test_a_full_house_is_overloaded_naming_the_settings(tmp_path: Path) -> None:
    """With every slot taken past queue_timeout the request is Overloaded, and the error names the knobs."""
    sdk = runner(tmp_path)
    await sdk._admit(FAST, None)
    with pytest.raises(Overloaded, match=r"sdk\.max_concurrent = 1.*sdk\.queue_timeout"):
        await sdk._admit(FAST, None)
    sdk._release_slot()
    await sdk._admit(FAST, None)  # the freed slot is taken
    await sdk.close()


async def test_a_waiter_that_gives_up_leaves_the_session_lock_to_its_holder(tmp_path: Path) -> None:
    """Timing out on a busy session never releases the lock another turn holds."""
    sdk = runner(tmp_path)
    lock = asyncio.Lock()
    await lock.acquire()  # the session's turn in progress
    with pytest.raises(Overloaded):
        await sdk._admit(FAST, lock)
    assert lock.locked()
    assert sdk._active == 0  # and it took no slot
    await sdk.close()


async def test_a_cancelled_waiter_gives_back_what_it_took(tmp_path: Path) -> None:
    """A client that leaves while its request waits for a slot releases the session lock it got."""
    sdk = runner(tmp_path)
    await sdk._admit(SdkConfig(max_concurrent=1), None)
    lock = asyncio.Lock()
    waiter = asyncio.ensure_future(sdk._admit(SdkConfig(max_concurrent=1), lock))
    for _ in range(100):  # until it holds the lock and waits for the slot (bounded)
        if lock.locked():
            break
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock.locked()
    await sdk.close()
