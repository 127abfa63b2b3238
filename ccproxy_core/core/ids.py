"""Ids ccproxy makes up for what it translates: messages, responses, tool calls.

They must be unique, not secret. 96 bits from the `random` module (seeded from the OS at start,
and again in each forked worker) serve, where `secrets` asked the kernel for fresh bytes with a
system call for every id of every translated request.
"""

from __future__ import annotations

import random


def new_id(prefix: str) -> str:
    """`prefix` and 24 random hex digits, the shape `secrets.token_hex(12)` gave."""
    return f"{prefix}{random.getrandbits(96):024x}"
