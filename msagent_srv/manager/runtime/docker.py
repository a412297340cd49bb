"""Docker runtime: one hardened container a node, launched with aiodocker, port published on the host."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from pathlib import Path
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
    tcp_endpoint,
)

CONTAINER_PORT = 8000
SOCKET_MOUNT = "/run/msagent"


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
        sockets_dir: Path | None = None,
        docker: aiodocker.Docker | None = None,
    ) -> None:
        # nodes without a network (network "none") are reached through a Unix socket in here; the path
        # stays short because AF_UNIX paths end at 108 bytes
        self.sockets_dir = sockets_dir or Path(tempfile.gettempdir()) / "msagent-sockets"
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

    @property
    def isolated(self) -> bool:
        """No network at all: the node is reached through a Unix socket."""
        return self.network == "none"

    def socket_dir(self, spec: NodeSpec) -> Path:
        return self.sockets_dir / hashlib.sha256(spec.unit_name.encode()).hexdigest()[:16]

    def endpoint(self, spec: NodeSpec, connect_host: str) -> str:
        if self.isolated:
            return f"unix:{self.socket_dir(spec) / 'node.sock'}"
        return tcp_endpoint(connect_host, spec.port)

    def container_config(self, spec: NodeSpec) -> dict[str, Any]:
        env = spec.environment(port=CONTAINER_PORT)
        memory = self.memory_mb * 1024 * 1024
        config = {
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
        if self.isolated:
            config["Env"].append(f"MSAGENT_NODE_SOCKET={SOCKET_MOUNT}/node.sock")
            config.pop("ExposedPorts")
            config["HostConfig"].pop("PortBindings")
            config["HostConfig"]["Mounts"] = [
                {
                    "Type": "bind",
                    "Source": str(self.socket_dir(spec)),
                    "Target": SOCKET_MOUNT,
                    "ReadOnly": False,
                }
            ]
        return config

    async def start(self, spec: NodeSpec) -> str:
        if self.isolated:
            await asyncio.to_thread(self._prepare_socket_dir, spec)
        try:
            container = await self._docker.containers.create_or_replace(
                spec.unit_name, self.container_config(spec)
            )
            await container.start()
        except DockerError as exc:
            raise RuntimeError_(f"docker could not start {spec.unit_name}: {exc.message}") from None
        return str(container.id)

    def _prepare_socket_dir(self, spec: NodeSpec) -> None:
        directory = self.socket_dir(spec)
        if len(str(directory / "node.sock").encode()) > 100:
            raise RuntimeError_(
                f"node socket path too long for AF_UNIX: {directory} (set MSAGENT_NODE_SOCKET_DIR)"
            )
        shutil.rmtree(directory, ignore_errors=True)  # a stale socket from an earlier node
        directory.mkdir(parents=True)
        directory.chmod(0o777)  # the node's unprivileged user creates its socket here

    async def stop(self, node_id: str) -> None:
        if self.isolated:
            try:
                info = await self._docker.containers.container(node_id).show()
                mounts = [m["Source"] for m in info.get("Mounts", []) if m.get("Destination") == SOCKET_MOUNT]
                for source in mounts:
                    await asyncio.to_thread(shutil.rmtree, source, True)
            except DockerError:
                pass
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
