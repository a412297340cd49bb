"""Node runtimes behind one interface."""

from __future__ import annotations

from ...settings import Settings
from .base import NodeSpec, NodeState, Runtime, RuntimeError_, RuntimeNode
from .docker import DockerRuntime
from .process import ProcessRuntime


async def create_runtime(settings: Settings) -> Runtime:
    """The configured runtime; `auto` picks Docker when an engine answers, else local processes."""
    kind = settings.runtime
    if kind == "auto":
        kind = "docker" if await DockerRuntime.available() else "process"
    if kind == "docker":
        return DockerRuntime(
            bind_address=settings.node_bind_address,
            network=settings.node_network,
            memory_mb=settings.node_memory_mb,
            cpus=settings.node_cpus,
            pids_limit=settings.node_pids_limit,
            tmpfs_mb=settings.node_tmpfs_mb,
            user=settings.node_user,
            sockets_dir=settings.node_socket_dir,
        )
    return ProcessRuntime(
        bind_address=settings.node_bind_address,
        memory_mb=settings.node_memory_mb,
        log_dir=settings.data_dir / "nodes",
    )


__all__ = [
    "DockerRuntime",
    "NodeSpec",
    "NodeState",
    "ProcessRuntime",
    "Runtime",
    "RuntimeError_",
    "RuntimeNode",
    "create_runtime",
]
