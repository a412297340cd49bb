"""Process runtime: each node a local subprocess, for hosts with no Docker engine.

Isolation is what an unprivileged host allows: a fresh session, a minimal environment with nothing secret
in it (the node token and tool_cfg come on stdin), its own working directory, and rlimits on memory and core
dumps. Tool code runs as the manager's user on the manager's host: tools that execute code are refused here
unless the operator opts in (MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS), and even then their code runs without
capabilities, next to processes (the node, the manager) that are non-dumpable. Nodes are found again after a
manager restart by their pid and command line (`msagent_srv.node <unit> <namespace> <tenant> <tool> <port>`).
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

_ENV_KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "MSAGENT_LOG_LEVEL", "MSAGENT_LOG_FORMAT")

_MARKER = "msagent_srv.node"


def _limits(memory_mb: int) -> None:  # runs in the child before exec
    import resource

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cmdline_of(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


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
        # nothing of the manager's own environment but these (no REDIS_URL, no keys)
        env = {
            "LANG": "C.UTF-8",
            **{name: os.environ[name] for name in _ENV_KEPT if name in os.environ},
            "HOME": workdir,
            **spec.environment(host=self.bind_address),
            "MSAGENT_PROCESS_NODE": spec.unit_name,
            "MSAGENT_NODE_SECRETS": "stdin",
        }
        log_path = self.log_dir / f"{spec.unit_name}.log"
        identity = [spec.unit_name, spec.namespace, spec.tenant_id, spec.tool_name, str(spec.port)]
        with open(log_path, "wb") as log_file:
            child = subprocess.Popen(
                [sys.executable, "-m", _MARKER, *identity],
                env=env,
                cwd=workdir,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _limits(self.memory_mb),
            )
        assert child.stdin is not None
        try:  # the secrets, on a pipe only the node reads: not in its environment, not on disk
            child.stdin.write(spec.secrets().encode() + b"\n")
            child.stdin.close()
        except BrokenPipeError:
            pass
        link = self._log_path(child.pid)
        link.unlink(missing_ok=True)
        link.symlink_to(log_path)
        return child

    def endpoint(self, spec: NodeSpec, connect_host: str) -> str:
        return tcp_endpoint(connect_host, spec.port)

    async def stop(self, node_id: str, identity: tuple[str, str, str] | None = None) -> None:
        pid = int(node_id)
        if identity is not None and _is_node(pid):
            args = _cmdline_of(pid)
            found = tuple(args[args.index(_MARKER) + 2 : args.index(_MARKER) + 5]) if _MARKER in args else ()
            if found and found != identity:
                raise RuntimeError_(f"process {pid} is not the node of {identity[1]}/{identity[2]}")
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
            args = _cmdline_of(int(entry.name))
            identity = args[args.index(_MARKER) + 1 :] if _MARKER in args else []
            if len(identity) < 5 or identity[1] != namespace:
                continue
            _unit, _namespace, tenant, tool, port = identity[:5]
            found.append(
                RuntimeNode(
                    node_id=entry.name,
                    tool_name=tool,
                    tenant_id=tenant,
                    port=int(port) if port.isdigit() else 0,
                    running=True,
                )
            )
        return found

    async def close(self) -> None:
        for child in list(self._children.values()):
            if child.poll() is not None:
                child.wait()
