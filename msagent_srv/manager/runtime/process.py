"""Process runtime: each node a local subprocess, for hosts with no Docker engine.

Isolation is what an unprivileged host allows: a fresh session, a clean environment, its own working
directory, and rlimits on memory, processes and open files. Nodes are found again after a manager restart
by their pid and command line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .base import NodeSpec, NodeState, RuntimeError_, RuntimeNode, tcp_endpoint

_MARKER = "msagent_srv.node"


def _limits(memory_mb: int) -> None:  # runs in the child before exec
    import resource

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _is_node(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        status = Path(f"/proc/{pid}/stat").read_text().split()
    except OSError:
        return False
    return _MARKER in cmdline and status[2] != "Z"


class ProcessRuntime:
    name = "process"

    def __init__(
        self, *, bind_address: str = "127.0.0.1", memory_mb: int = 1024, log_dir: Path | None = None
    ):
        self.bind_address, self.memory_mb = bind_address, memory_mb
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="msagent-nodes-"))
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def _log_path(self, pid: int) -> Path:
        return self.log_dir / f"node-{pid}.log"

    async def start(self, spec: NodeSpec) -> str:
        try:
            child = await asyncio.to_thread(self._spawn, spec)
        except OSError as exc:
            raise RuntimeError_(f"could not start node process: {exc}") from None
        self._children[child.pid] = child
        return str(child.pid)

    def _spawn(self, spec: NodeSpec) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix=f"{spec.unit_name}-")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": workdir,
            **spec.environment(host=self.bind_address),
            "MSAGENT_PROCESS_NODE": spec.unit_name,
        }
        log_path = self.log_dir / f"{spec.unit_name}.log"
        with open(log_path, "wb") as log_file:
            child = subprocess.Popen(
                [sys.executable, "-m", _MARKER],
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _limits(self.memory_mb),
            )
        link = self._log_path(child.pid)
        link.unlink(missing_ok=True)
        link.symlink_to(log_path)
        return child

    def endpoint(self, spec: NodeSpec, connect_host: str) -> str:
        return tcp_endpoint(connect_host, spec.port)

    async def stop(self, node_id: str) -> None:
        pid = int(node_id)
        child = self._children.pop(pid, None)
        if child is None and not _is_node(pid):
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            if child is not None and child.poll() is not None:
                return
            if child is None and not _is_node(pid):
                return
            await asyncio.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if child is not None:
            await asyncio.to_thread(child.wait)

    async def state(self, node_id: str) -> NodeState | None:
        pid = int(node_id)
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            return NodeState(running=True) if code is None else NodeState(False, code, f"exited with {code}")
        return NodeState(running=True) if _is_node(pid) else None

    async def logs(self, node_id: str, tail: int = 20) -> str:
        try:
            lines = self._log_path(int(node_id)).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    async def nodes(self, namespace: str) -> list[RuntimeNode]:
        return await asyncio.to_thread(self._scan_nodes, namespace)

    def _scan_nodes(self, namespace: str) -> list[RuntimeNode]:
        found: list[RuntimeNode] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or not _is_node(int(entry.name)):
                continue
            env = _environ_of(int(entry.name))
            if "MSAGENT_PROCESS_NODE" not in env or env.get("MSAGENT_NAMESPACE") != namespace:
                continue
            found.append(
                RuntimeNode(
                    node_id=entry.name,
                    tool_name=env.get("MSAGENT_TOOL_NAME", ""),
                    tenant_id=env.get("MSAGENT_TENANT_ID", ""),
                    port=int(env.get("MSAGENT_NODE_PORT", "0")),
                    running=True,
                    token=env.get("MSAGENT_NODE_TOKEN", ""),
                )
            )
        return found

    async def close(self) -> None:
        for child in list(self._children.values()):
            if child.poll() is not None:
                child.wait()
