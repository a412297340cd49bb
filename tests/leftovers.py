"""What a test run leaves behind: its processes, containers and listening ports still there at the end.
The session-end check in conftest fails the run on any of them (and then removes them).

Ours, exactly, also when other runs share the machine: the test process is made a child subreaper, so
every process it starts (however deeply, daemonised or orphaned) stays its descendant; every container a
test makes carries the run's id in its namespace label or its compose project name."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

RUN_ID = uuid.uuid4().hex[:6]  # in every test namespace: t<RUN_ID><test's own part>
_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Orphaned descendants are re-parented to this process instead of init (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) and stat[1] != "Z":
            children.setdefault(stat[0], []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _listening_ports(pids: set[int]) -> dict[int, int]:
    """Listening TCP ports held by `pids`: port -> pid."""
    inodes: dict[int, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[int(target[8:-1])] = pid
    ports: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[9]) in inodes:  # TCP_LISTEN
                ports[int(fields[1].rsplit(":", 1)[1], 16)] = inodes[int(fields[9])]
    return ports


def _our_containers() -> dict[str, str]:
    """Containers of this run: id -> name."""
    try:
        listing = subprocess.run(
            ["docker", "ps", "-a", "--no-trunc", "--format",
             '{{.ID}} {{.Names}} {{.Label "io.msagent.namespace"}} {{.Label "com.docker.compose.project"}}'],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    mark = f"t{RUN_ID}"
    found = {}
    for line in listing.stdout.splitlines():
        cid, name, *labels = line.split(" ")
        if any(label.startswith(mark) or label.startswith(f"msagent-{mark}") for label in labels):
            found[cid] = name
    return found


@dataclass
class Leftovers:
    processes: dict[int, str]
    containers: dict[str, str]
    ports: dict[int, int]

    def __bool__(self) -> bool:
        return bool(self.processes or self.containers or self.ports)

    def describe(self) -> list[str]:
        lines = [f"process {pid}: {cmd[:200]}" for pid, cmd in sorted(self.processes.items())]
        lines += [f"container {cid[:12]} {name}" for cid, name in sorted(self.containers.items())]
        lines += [f"port {port} listening (pid {pid})" for port, pid in sorted(self.ports.items())]
        return lines

    def remove(self) -> None:
        for pid in self.processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.containers:
            subprocess.run(
                ["docker", "rm", "-f", *self.containers], capture_output=True, timeout=120, check=False
            )


def leftovers() -> Leftovers:
    pids = _descendants(os.getpid())
    processes = {pid: _cmdline(pid) for pid in pids}
    return Leftovers(processes, _our_containers(), _listening_ports(pids))
