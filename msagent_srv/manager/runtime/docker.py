"""Docker runtime: one hardened container a node, launched with aiodocker, port published on the host."""

from __future__ import annotations

import asyncio
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from .base import (
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_PORT,
    LABEL_TENANT,
    LABEL_TOOL,
    NodeSpec,
    NodeState,
    RuntimeError_,
    RuntimeNode,
)

CONTAINER_PORT = 8000


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        *,
        bind_address: str = "127.0.0.1",
        network: str = "bridge",
        memory_mb: int = 512,
        cpus: float = 1.0,
        pids_limit: int = 128,
        tmpfs_mb: int = 64,
        user: str = "65534:65534",
        docker: aiodocker.Docker | None = None,
    ) -> None:
        self.bind_address, self.network, self.user = bind_address, network, user
        self.memory_mb, self.cpus, self.pids_limit, self.tmpfs_mb = memory_mb, cpus, pids_limit, tmpfs_mb
        self._docker = docker or aiodocker.Docker()

    @classmethod
    async def available(cls) -> bool:
        """True when a Docker engine answers."""
        try:
            async with aiodocker.Docker() as docker:
                await asyncio.wait_for(docker.version(), 3)
            return True
        except (DockerError, OSError, ValueError, asyncio.TimeoutError):
            return False

    def container_config(self, spec: NodeSpec) -> dict[str, Any]:
        env = spec.environment(port=CONTAINER_PORT)
        memory = self.memory_mb * 1024 * 1024
        return {
            "Image": spec.image,
            "Entrypoint": ["python3", "-m", "msagent_srv.node"],
            "Cmd": [],
            "Env": [f"{k}={v}" for k, v in env.items()],
            "User": self.user,
            "WorkingDir": "/tmp",
            "Labels": spec.labels,
            "ExposedPorts": {f"{CONTAINER_PORT}/tcp": {}},
            "HostConfig": {
                "PortBindings": {
                    f"{CONTAINER_PORT}/tcp": [{"HostIp": self.bind_address, "HostPort": str(spec.port)}]
                },
                # tini as PID 1 forwards signals, so a stop takes milliseconds, not the stop timeout.
                "Init": True,
                "Memory": memory,
                "MemorySwap": memory,
                "NanoCpus": int(self.cpus * 1e9),
                "PidsLimit": self.pids_limit,
                "SecurityOpt": ["no-new-privileges"],
                "CapDrop": ["ALL"],
                "ReadonlyRootfs": True,
                "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={self.tmpfs_mb}m"},
                "NetworkMode": self.network,
                "RestartPolicy": {"Name": "no"},
            },
        }

    async def start(self, spec: NodeSpec) -> str:
        try:
            container = await self._docker.containers.create_or_replace(
                spec.unit_name, self.container_config(spec)
            )
            await container.start()
        except DockerError as exc:
            raise RuntimeError_(f"docker could not start {spec.unit_name}: {exc.message}") from None
        return str(container.id)

    async def stop(self, node_id: str) -> None:
        try:
            await self._docker.containers.container(node_id).delete(force=True)
        except DockerError as exc:
            if exc.status != 404:
                raise RuntimeError_(f"docker could not remove {node_id[:12]}: {exc.message}") from None

    async def state(self, node_id: str) -> NodeState | None:
        try:
            info = await self._docker.containers.container(node_id).show()
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise RuntimeError_(f"docker could not inspect {node_id[:12]}: {exc.message}") from None
        state = info["State"]
        if state.get("Running"):
            return NodeState(running=True)
        reason = (
            "out of memory (killed)"
            if state.get("OOMKilled")
            else state.get("Error") or state.get("Status", "")
        )
        return NodeState(running=False, exit_code=state.get("ExitCode"), reason=reason)

    async def logs(self, node_id: str, tail: int = 20) -> str:
        try:
            lines = await self._docker.containers.container(node_id).log(stdout=True, stderr=True, tail=tail)
        except DockerError:
            return ""
        return "".join(lines).strip()

    async def nodes(self, namespace: str) -> list[RuntimeNode]:
        containers = await self._docker.containers.list(
            all=True, filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_NAMESPACE}={namespace}"]}
        )
        found: list[RuntimeNode] = []
        for container in containers:
            info = await container.show()
            labels = info["Config"].get("Labels") or {}
            env = dict(e.split("=", 1) for e in info["Config"].get("Env") or [] if "=" in e)
            found.append(
                RuntimeNode(
                    node_id=str(info["Id"]),
                    tool_name=labels.get(LABEL_TOOL, ""),
                    tenant_id=labels.get(LABEL_TENANT, ""),
                    port=int(labels.get(LABEL_PORT, "0")),
                    running=bool(info["State"].get("Running")),
                    token=env.get("MSAGENT_NODE_TOKEN", ""),
                )
            )
        return found

    async def close(self) -> None:
        await self._docker.close()
