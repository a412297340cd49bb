"""Process hardening on Linux: keep secrets out of reach of code that runs as the same user.

- `set_non_dumpable()`: /proc/<pid>/{environ,mem,maps} of this process become unreadable to other processes
  of the same uid that lack CAP_SYS_PTRACE, and they cannot ptrace it (the node and the manager call it).
- `drop_all_capabilities()`: for a child run as root (the process runtime), before exec: no capability left,
  none regained by exec, `no_new_privs` set. Root without CAP_SYS_PTRACE cannot read a non-dumpable
  process's /proc files either.
- `kill_session(sid)`: SIGKILL every process of a session (its process groups), e.g. everything a code
  execution forked.
- `become_subreaper()` and `end_strays(keep)`: processes that left their session (setsid) and were orphaned
  become the node's children, and are killed and reaped when no running execution owns their session.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
_CAP_VERSION_3 = 0x20080522


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def set_non_dumpable() -> bool:
    """True when the kernel accepted it (Linux only)."""
    libc = _libc()
    return libc is not None and libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


_subreaper = False  # set by become_subreaper(): only then are this process's stray children ours to end


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux). A node calls it."""
    global _subreaper
    libc = _libc()
    _subreaper = libc is not None and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In a child before exec: the kernel sends `sig` when the parent thread ends."""
    libc = _libc()
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_all_capabilities() -> None:
    """Runs in a child before exec. Raises OSError when the kernel refuses (the child then does not run)."""
    libc = _libc()
    if libc is None:
        raise OSError("no libc to drop capabilities with")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if os.geteuid() != 0:
        return  # an unprivileged user holds no capabilities to drop (a container's user: none at all)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):  # the bounding set: exec cannot give them back
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after "(comm)": state ppid pgrp session ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def end_strays(keep_sessions: set[int]) -> int:
    """Kills and reaps this process's children whose session is not in `keep_sessions` (pids of the running
    executions, which are session leaders and stay too). Returns how many it ended. Only in a process that
    called become_subreaper() (a node): elsewhere (a test runner, an agent running the tool in-process) the
    other children are not the tool's."""
    if not _subreaper:
        return 0
    me, ended = os.getpid(), 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        pid = int(entry.name)
        if fields is None or int(fields[1]) != me or pid in keep_sessions or int(fields[3]) in keep_sessions:
            continue
        if fields[0] not in ("Z", "X"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        ended += 1
    return ended


def session_members(sid: int) -> list[int]:
    """Pids whose session is `sid` (the leader included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp session ...
        if int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def kill_session(sid: int) -> None:
    """SIGKILL the process group `sid` and every other process of session `sid`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
