"""The processes a root process forked (its descendants and the members of its session, from /proc), and
killing them all, fork bombs included."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, session) of every process visible."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def forked_by(root: int) -> set[int]:
    """Live processes descending from `root` or in its session, `root` excluded."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = {pid for pid, (_ppid, sid) in table.items() if sid == root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(root)
    return found


def kill_forked(root: int, deadline: float) -> None:
    """SIGKILL everything `root` forked, round after round (a fork bomb forks while we kill) until none is
    left or the deadline passes."""
    while time.monotonic() < deadline:
        found = forked_by(root)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
