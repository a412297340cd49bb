"""The runtime interface: how a node is started, watched and stopped.

Implemented by Docker (one container a node), local processes (no engine), and shaped so a Kubernetes
runtime (one pod and one service a node, found again by labels) fits the same five calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...netguard import ALLOW_ENV

LABEL_MANAGED = "io.msagent.managed"
LABEL_TOOL = "io.msagent.tool"
LABEL_TENANT = "io.msagent.tenant"
LABEL_PORT = "io.msagent.port"
LABEL_NAMESPACE = "io.msagent.namespace"


class RuntimeError_(Exception):
    """The runtime could not do what was asked (message is safe to show)."""


@dataclass(frozen=True)
class NodeSpec:
    tool_name: str
    tenant_id: str
    image: str
    port: int
    token: str
    tool_cfg: dict[str, Any] = field(default_factory=dict)
    call_timeout: float = 60.0
    # Managers that share an engine but not a Redis keep apart by namespace.
    namespace: str = "default"
    allow_private_urls: bool = False  # the operator's MSAGENT_ALLOW_PRIVATE_URLS, for the tool
    network: str = "none"  # Docker network of this node ("none": no network, reached over a Unix socket)
    # the operator's endpoints for tools (DASHSCOPE_HTTP_BASE_URL...): where their calls go, not secrets
    endpoints: dict[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.namespace, self.tenant_id, self.tool_name)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_MANAGED: "1",
            LABEL_NAMESPACE: self.namespace,
            LABEL_TOOL: self.tool_name,
            LABEL_TENANT: self.tenant_id,
            LABEL_PORT: str(self.port),
        }

    @property
    def unit_name(self) -> str:
        """A name unique per (namespace, tenant, tool) by construction, valid for containers, pods and
        services (at most 63 characters of [a-z0-9-])."""
        return unit_name(*self.identity)

    def secrets(self) -> str:
        """What the node must know but its tool's code must not read: delivered outside the environment."""
        return json.dumps({"token": self.token, "tool_cfg": self.tool_cfg})

    def environment(self, port: int | None = None, host: str = "0.0.0.0") -> dict[str, str]:
        """The node's environment: nothing secret (the token and tool_cfg go through `secrets()`)."""
        return {
            "MSAGENT_TOOL_NAME": self.tool_name,
            "MSAGENT_TENANT_ID": self.tenant_id,
            "MSAGENT_NAMESPACE": self.namespace,
            "MSAGENT_NODE_HOST": host,
            "MSAGENT_NODE_PORT": str(port or self.port),
            "MSAGENT_NODE_CALL_TIMEOUT": str(self.call_timeout),
            **({ALLOW_ENV: "true"} if self.allow_private_urls else {}),
            **self.endpoints,
        }


def unit_name(namespace: str, tenant_id: str, tool_name: str) -> str:
    """`msa-<readable>-<sha256 of the identity, whole, base32>`: 4 + at most 6 + 1 + 52 characters. The
    identity is JSON-encoded, so no two (namespace, tenant, tool) triples hash the same input."""
    identity = json.dumps([namespace, tenant_id, tool_name]).encode()
    digest = base64.b32encode(hashlib.sha256(identity).digest()).decode().rstrip("=").lower()
    readable = re.sub(r"[^a-z0-9]+", "-", tool_name.lower()).strip("-")[:6].strip("-") or "node"
    return f"msa-{readable}-{digest}"


def labels_match(labels: dict[str, str], identity: tuple[str, str, str]) -> bool:
    """True when a container's labels say it is the node of `identity` (namespace, tenant, tool)."""
    return (
        labels.get(LABEL_MANAGED) == "1"
        and (
            labels.get(LABEL_NAMESPACE),
            labels.get(LABEL_TENANT),
            labels.get(LABEL_TOOL),
        )
        == identity
    )


def tcp_endpoint(host: str, port: int) -> str:
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class NodeState:
    """What the runtime knows of a node. `running` False with `exit_code` means it ended."""

    running: bool
    exit_code: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class RuntimeNode:
    """A node the runtime holds, as found by its labels (for reconciliation)."""

    node_id: str
    tool_name: str
    tenant_id: str
    port: int
    running: bool


class Runtime(Protocol):
    name: str

    async def start(self, spec: NodeSpec) -> str:
        """Start a node; returns its id (container id, pid, pod name). Raises RuntimeError_."""

    def endpoint(self, spec: NodeSpec, connect_host: str) -> str:
        """Where the manager reaches the node: `http://host:port` or `unix:/path/to/socket`."""

    async def stop(self, node_id: str, identity: tuple[str, str, str] | None = None) -> None:
        """Stop and remove the node; a node that is already gone is not an error. With `identity`
        (namespace, tenant, tool), a node that turns out to be another's is left alone (RuntimeError_)."""

    async def state(self, node_id: str) -> NodeState | None:
        """The node's state, or None when the runtime no longer knows it."""

    async def logs(self, node_id: str, tail: int = 20) -> str:
        """The last lines the node printed, to explain a failure."""

    async def nodes(self, namespace: str) -> list[RuntimeNode]:
        """Every node this runtime manages in `namespace`, for reconciliation after a restart."""

    async def close(self) -> None: ...
