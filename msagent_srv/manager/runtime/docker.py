"""Docker runtime: one hardened container a node, launched with aiodocker, port published on the host."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
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
    labels_match,
    tcp_endpoint,
)

CONTAINER_PORT = 8000
SOCKET_MOUNT = "/run/msagent"  # the node's own directory: its socket, and its secrets until it read them
SECRETS_FILE = "secrets.json"


class DockerRuntime:
    name = "docker"

    def __init__(
        self,
        *,
        bind_address: str = "127.0.0.1",
        network: str = "none",
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

    @staticmethod
    def isolated(spec: NodeSpec) -> bool:
        """No network at all: the node is reached through a Unix socket."""
        return spec.network == "none"

    def socket_dir(self, spec: NodeSpec) -> Path:
        return self.sockets_dir / hashlib.sha256(spec.unit_name.encode()).hexdigest()[:16]

    def endpoint(self, spec: NodeSpec, connect_host: str) -> str:
        if self.isolated(spec):
            return f"unix:{self.socket_dir(spec) / 'node.sock'}"
        return tcp_endpoint(connect_host, spec.port)

    def container_config(self, spec: NodeSpec) -> dict[str, Any]:
        env = spec.environment(port=CONTAINER_PORT)
        memory = self.memory_mb * 1024 * 1024
        config = {
            "Image": spec.image,
            "Entrypoint": ["python3", "-m", "msagent_srv.node"],
            "Cmd": [],
            "Env": [f"{k}={v}" for k, v in env.items()]
            + [f"MSAGENT_NODE_SECRETS={SOCKET_MOUNT}/{SECRETS_FILE}"],
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
                "NetworkMode": spec.network,
                "RestartPolicy": {"Name": "no"},
                "Mounts": [
                    {
                        "Type": "bind",
                        "Source": str(self.socket_dir(spec)),
                        "Target": SOCKET_MOUNT,
                        "ReadOnly": False,
                    }
                ],
            },
        }
        if self.isolated(spec):
            config["Env"].append(f"MSAGENT_NODE_SOCKET={SOCKET_MOUNT}/node.sock")
            config.pop("ExposedPorts")
            config["HostConfig"].pop("PortBindings")
        return config

    async def start(self, spec: NodeSpec) -> str:
        await self._refuse_foreign(spec)
        await asyncio.to_thread(self._prepare_node_dir, spec)
        try:
            container = await self._docker.containers.create_or_replace(
                spec.unit_name, self.container_config(spec)
            )
            await container.start()
        except DockerError as exc:
            await asyncio.to_thread(shutil.rmtree, self.socket_dir(spec), True)
            raise RuntimeError_(f"docker could not start {spec.unit_name}: {exc.message}") from None
        return str(container.id)

    async def _refuse_foreign(self, spec: NodeSpec) -> None:
        """A container under this node's name that is not this node's (labels) is never replaced."""
        try:
            info = await self._docker.containers.container(spec.unit_name).show()
        except DockerError as exc:
            if exc.status == 404:
                return
            raise RuntimeError_(f"docker could not inspect {spec.unit_name}: {exc.message}") from None
        if not labels_match(info["Config"].get("Labels") or {}, spec.identity):
            raise RuntimeError_(f"container {spec.unit_name} belongs to another node: not replaced")

    def _prepare_node_dir(self, spec: NodeSpec) -> None:
        """The node's directory with its secrets file, readable by the node's user only where we can chown."""
        directory = self.socket_dir(spec)
        if len(str(directory / "node.sock").encode()) > 100:
            raise RuntimeError_(
                f"node socket path too long for AF_UNIX: {directory} (set MSAGENT_NODE_SOCKET_DIR)"
            )
        shutil.rmtree(directory, ignore_errors=True)  # a stale socket from an earlier node
        directory.mkdir(parents=True)
        directory.chmod(0o777)  # the node's unprivileged user creates its socket and deletes its secrets here
        secrets = directory / SECRETS_FILE
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(spec.secrets())
        uid, _, gid = self.user.partition(":")
        try:
            os.chown(secrets, int(uid), int(gid or uid))
        except (OSError, ValueError):  # not root, or a user given by name: the node must still read it
            secrets.chmod(0o644)

    async def stop(self, node_id: str, identity: tuple[str, str, str] | None = None) -> None:
        try:
            info = await self._docker.containers.container(node_id).show()
        except DockerError as exc:
            if exc.status == 404:
                return
            raise RuntimeError_(f"docker could not inspect {node_id[:12]}: {exc.message}") from None
        if identity is not None and not labels_match(info["Config"].get("Labels") or {}, identity):
            raise RuntimeError_(f"container {node_id[:12]} is not the node of {identity[1]}/{identity[2]}")
        for mount in info.get("Mounts", []):
            if mount.get("Destination") == SOCKET_MOUNT:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(shutil.rmtree, mount["Source"], True)
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
            found.append(
                RuntimeNode(
                    node_id=str(info["Id"]),
                    tool_name=labels.get(LABEL_TOOL, ""),
                    tenant_id=labels.get(LABEL_TENANT, ""),
                    port=int(labels.get(LABEL_PORT, "0")),
                    running=bool(info["State"].get("Running")),
                )
            )
        return found

    async def close(self) -> None:
        await self._docker.close()
