"""Identifiers for requests, completions and tool calls. They must be unique, not secret: a fast PRNG
seeded from the OS serves (the OS's CSPRNG costs a system call each time)."""

from __future__ import annotations

import random

_random = random.Random()


def random_hex(nbytes: int) -> str:
    return f"{_random.getrandbits(nbytes * 8):0{nbytes * 2}x}"
