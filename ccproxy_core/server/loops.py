"""Pick the fastest event loop available: uvloop where it imports (not on Windows), else asyncio."""

from __future__ import annotations

import asyncio


def install() -> str:
    """Install uvloop's policy when possible; return the name of the loop in use."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
