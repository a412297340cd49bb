"""Node lifecycle: create, check, remove and call tool nodes. The registry in Redis is the truth; upkeep.py
brings the runtime in line with it after a restart and while the manager runs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from typing import Any

import aiohttp

from ..node.schemas import NODE_TOKEN_HEADER
from ..settings import Settings
from ..store import Conflict, NotFound, Store, StoreError, ToolInstance, ToolStatus
from ..tools import TOOL_ENDPOINTS, Tool, UnknownTool, tool_class
from .errors import TenantAtNodeCap, UnknownToolName, UnsafeOnThisRuntime
from .node_transport import NodeTransport
from .runtime import NodeSpec, Runtime, RuntimeError_

log = logging.getLogger("msagent_srv.manager")

LIVE = (ToolStatus.pending, ToolStatus.running)
ENDED = (ToolStatus.exited, ToolStatus.failed)


def config_digest(image: str, tool_cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([image, tool_cfg], sort_keys=True).encode()).hexdigest()[:16]


def port_owner(tenant_id: str, tool_name: str) -> str:
    return f"{tenant_id}/{tool_name}"


def tool_endpoints() -> dict[str, str]:
    """The operator's endpoints for tools, as this manager was given them, passed on to every node."""
    return {name: os.environ[name] for name in TOOL_ENDPOINTS if os.environ.get(name)}


UNSAFE_TOOLS_SETTING = "MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS"


def known_tool(tool_name: str) -> type[Tool] | None:
    try:
        return tool_class(tool_name)
    except UnknownTool:
        return None


def unsafe_tools_allowed(setting: str, tool_name: str) -> bool:
    """The operator's opt-in: 'true'/'all'/'*', or a comma list of tool names."""
    names = {name.strip() for name in setting.split(",") if name.strip()}
    return bool(names & {"true", "all", "*", "1", "yes"}) or tool_name in names


class NodeManager:
    """The nodes of every tenant: their records (store), their processes or containers (runtime), and the
    HTTP session the manager calls them with. Every limit and default comes from `settings`."""

    def __init__(
        self, store: Store, runtime: Runtime, session: aiohttp.ClientSession, settings: Settings
    ) -> None:
        self.store, self.runtime, self.session, self.settings = store, runtime, session, settings
        self.namespace, self.allow_private_urls = settings.namespace, settings.allow_private_urls
        self.network, self.egress_network = settings.node_network, settings.node_egress_network
        self.unsafe_tools, self.max_nodes_per_tenant = (
            settings.process_runtime_unsafe_tools,
            settings.max_nodes_per_tenant,
        )
        self.max_reply_bytes = int(settings.node_max_reply_mb * (1 << 20))
        self.default_image, self.connect_host = settings.node_image, settings.node_connect_host
        self.start_timeout, self.call_timeout = settings.node_start_timeout, settings.node_call_timeout
        self.idle_timeout = settings.node_idle_timeout
        self._launches: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.transport = NodeTransport(session, settings.node_connect_host)

    # -- creation -------------------------------------------------------------------------------------
    async def create(
        self, tenant_id: str, tool_name: str, tool_cfg: dict[str, Any], image: str | None
    ) -> ToolInstance:
        """Register the node as pending and launch it in the background; a live node is returned as is.
        Refused before anything is allocated: a tool the manager does not know (with its default image),
        a code-running tool on the process runtime without the operator's opt-in, a tenant at its cap."""
        tool = self._admit(tool_name, image)
        image = image or self.default_image
        await self._check_tenant_cap(tenant_id, tool_name)
        record = ToolInstance(
            tool_name=tool_name,
            tenant_id=tenant_id,
            image=image,
            runtime=self.runtime.name,
            config_digest=config_digest(image, tool_cfg),
            node_token=secrets.token_urlsafe(24),
        )
        created, current = await self.store.tools.create(record, replace=ENDED)
        if not created:
            return current
        try:
            await self._check_tenant_cap(tenant_id, tool_name)  # creations racing past the first check
        except TenantAtNodeCap:
            with contextlib.suppress(NotFound, Conflict):
                await self.store.tools.delete(tenant_id, tool_name, allowed_from=[ToolStatus.pending])
            raise
        try:
            port = await self.store.ports.allocate(port_owner(tenant_id, tool_name))
            record = await self.store.tools.transition(tenant_id, tool_name, port=port)
        except StoreError as exc:
            await self._mark_failed(tenant_id, tool_name, f"no port: {exc}")
            raise
        spec = NodeSpec(
            tool_name, tenant_id, image, port, record.node_token, tool_cfg, self.call_timeout, self.namespace,
            self.allow_private_urls, self.network_for(tool), tool_endpoints(),
        )  # fmt: skip
        self._spawn_launch(spec)
        return record

    def _admit(self, tool_name: str, image: str | None) -> type[Tool] | None:
        """The tool's class, or why it may not be created here (NodeRefused). None: a tool only a custom image
        knows (the Docker runtime tries it; the process runtime runs this host's tools only)."""
        try:
            tool = tool_class(tool_name)
        except UnknownTool as exc:
            if image and self.runtime.name != "process":
                return None
            raise UnknownToolName(str(exc)) from None
        if (
            self.runtime.name == "process"
            and tool.executes_code
            and not unsafe_tools_allowed(self.unsafe_tools, tool_name)
        ):
            raise UnsafeOnThisRuntime(
                f"tool {tool_name!r} runs callers' code, which the process runtime cannot isolate (it would run "
                f"on this host as the manager's user): use the Docker runtime, or opt in with "
                f"{UNSAFE_TOOLS_SETTING}={tool_name} (unsafe)"
            )
        return tool

    def network_for(self, tool: type[Tool] | None) -> str:
        """No network, unless the tool needs one and the operator's egress network is not 'none'."""
        if tool is not None and tool.needs_network:
            return self.egress_network
        return self.network

    async def _check_tenant_cap(self, tenant_id: str, tool_name: str) -> None:
        live = [
            r for r in await self.store.tools.list(tenant_id) if r.status in LIVE and r.tool_name != tool_name
        ]
        if len(live) >= self.max_nodes_per_tenant:
            raise TenantAtNodeCap(
                f"tenant {tenant_id!r} already has {len(live)} nodes pending or running, the most allowed "
                f"(MSAGENT_MAX_NODES_PER_TENANT={self.max_nodes_per_tenant}): remove one first"
            )

    def _spawn_launch(self, spec: NodeSpec, node_id: str | None = None) -> None:
        key = (spec.tenant_id, spec.tool_name)
        task = asyncio.create_task(self._launch(spec, node_id), name=f"launch {spec.unit_name}")
        self._launches[key] = task
        task.add_done_callback(
            lambda t: self._launches.pop(key, None) if self._launches.get(key) is t else None
        )

    async def _launch(self, spec: NodeSpec, node_id: str | None) -> None:
        tenant, tool = spec.tenant_id, spec.tool_name
        try:
            if node_id is None:
                node_id = await self.runtime.start(spec)
                await self.store.tools.transition(
                    tenant,
                    tool,
                    allowed_from=[ToolStatus.pending],
                    container_id=node_id,
                    endpoint=self.runtime.endpoint(spec, self.connect_host),
                )
            error = await self._wait_ready(spec, node_id)
            if error is None:
                await self.store.tools.transition(
                    tenant, tool, allowed_from=[ToolStatus.pending], status=ToolStatus.running, error=None
                )
                log.info("node running", extra={"tool": tool, "tenant": tenant, "port": spec.port})
            else:
                await self._mark_failed(tenant, tool, error)
                await self.runtime.stop(node_id)
        except (NotFound, Conflict):
            # Removed (or replaced) while starting: the remover owns the cleanup of the record;
            # the container we just started is ours to stop.
            if node_id:
                await self.runtime.stop(node_id)
        except RuntimeError_ as exc:
            await self._mark_failed(tenant, tool, str(exc))
        except asyncio.CancelledError:
            if node_id:
                await asyncio.shield(self.runtime.stop(node_id))
            raise
        except Exception as exc:  # keep the record truthful whatever went wrong
            log.exception("launch failed", extra={"tool": tool, "tenant": tenant})
            await self._mark_failed(tenant, tool, f"{exc.__class__.__name__}: {exc}")

    async def _wait_ready(self, spec: NodeSpec, node_id: str) -> str | None:
        """None once `/health` answers 200 over HTTP; else why the node never came up."""
        endpoint = self.runtime.endpoint(spec, self.connect_host)
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            try:
                async with self.request(
                    endpoint,
                    "GET",
                    "/health",
                    headers={NODE_TOKEN_HEADER: spec.token},
                    timeout=aiohttp.ClientTimeout(total=1),
                ) as response:
                    if response.status == 200:
                        return None
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            state = await self.runtime.state(node_id)
            if state is None or not state.running:
                logs = await self.runtime.logs(node_id)
                reason = state.reason if state else "node vanished"
                return f"node exited during start-up ({reason}){': ' + logs[-500:] if logs else ''}"
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        return f"node did not answer /health within {self.start_timeout:g}s"

    async def _mark_failed(self, tenant_id: str, tool_name: str, error: str) -> None:
        try:
            record = await self.store.tools.transition(
                tenant_id, tool_name, allowed_from=LIVE, status=ToolStatus.failed, error=error,
                expires_at=time.time() + self.settings.exited_record_ttl,  # kept as an exited one is
            )  # fmt: skip
            log.warning("node failed", extra={"tool": tool_name, "tenant": tenant_id, "error": error})
        except (NotFound, Conflict):
            return
        await self._release_port(record)

    async def _release_port(self, record: ToolInstance) -> None:
        """A node that ended gives its port back at once (a failed node kept it until a restart)."""
        if record.port is not None:
            await self.store.ports.release(record.port, port_owner(record.tenant_id, record.tool_name))

    # -- queries --------------------------------------------------------------------------------------
    async def status(self, tenant_id: str, tool_name: str) -> ToolInstance:
        """The record, after checking that a node marked running still runs."""
        record = await self.store.tools.get(tenant_id, tool_name)
        if record.status is ToolStatus.running:
            record = await self.check_alive(record)
        return record

    async def check_alive(self, record: ToolInstance) -> ToolInstance:
        if not record.container_id:
            return record
        state = await self.runtime.state(record.container_id)
        if state is not None and state.running:
            return record
        if state is None:
            status, error = ToolStatus.exited, "node vanished"
        elif state.exit_code in (0, 143):
            status, error = ToolStatus.exited, f"node exited ({state.reason})"
        else:
            status, error = ToolStatus.failed, f"node died: {state.reason}, exit code {state.exit_code}"
        try:
            ended = await self.store.tools.transition(
                record.tenant_id,
                record.tool_name,
                allowed_from=[ToolStatus.running],
                status=status,
                error=error,
            )
        except Conflict:
            return await self.store.tools.get(record.tenant_id, record.tool_name)
        await self._release_port(ended)
        return ended

    async def list(self, tenant_id: str) -> list[ToolInstance]:
        return await self.store.tools.list(tenant_id)

    # -- removal --------------------------------------------------------------------------------------
    async def remove(self, tenant_id: str, tool_name: str) -> ToolInstance:
        """Mark the record exited first (so a launch in flight sees it gone), then remove the node and free
        its port. The exited record stays for MSAGENT_EXITED_RECORD_TTL, as the original servers kept it."""
        record = await self.store.tools.retire(tenant_id, tool_name, self.settings.exited_record_ttl)
        launch = self._launches.pop((tenant_id, tool_name), None)
        if launch is not None:
            launch.cancel()
            await asyncio.gather(launch, return_exceptions=True)
        if record.container_id:
            try:
                await self.runtime.stop(record.container_id, (self.namespace, tenant_id, tool_name))
            except RuntimeError_ as exc:  # not ours after all: left alone, the record is gone anyway
                log.warning("node not removed: %s", exc, extra={"tool": tool_name, "tenant": tenant_id})
        await self.transport.forget(record.endpoint)
        if record.port is not None:
            await self.store.ports.release(record.port, port_owner(tenant_id, tool_name))
        return record.model_copy(update={"status": ToolStatus.exited, "error": None})

    async def update(
        self, tenant_id: str, tool_name: str, tool_cfg: dict[str, Any], image: str | None
    ) -> ToolInstance:
        try:
            await self.remove(tenant_id, tool_name)
        except NotFound:
            pass
        return await self.create(tenant_id, tool_name, tool_cfg, image)

    # -- calls ----------------------------------------------------------------------------------------
    async def running_node(self, tenant_id: str, tool_name: str) -> ToolInstance:
        record = await self.store.tools.get(tenant_id, tool_name)
        if record.status is not ToolStatus.running or record.port is None:
            raise Conflict(f"tool {tool_name!r} is {record.status.value}, not running")
        return record

    def endpoint_of(self, record: ToolInstance) -> str:
        return self.transport.endpoint_of(record)

    def request(self, endpoint: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.transport.request(endpoint, method, path, **kwargs)

    async def touch(self, record: ToolInstance) -> None:
        """Record use for the idle timeout, at most once every few seconds a node."""
        now = time.time()
        if self.idle_timeout and now - record.last_used_at > min(5.0, self.idle_timeout / 4):
            try:
                await self.store.tools.transition(record.tenant_id, record.tool_name, last_used_at=now)
            except (NotFound, Conflict):
                pass

    # -- for upkeep (reconcile after a restart, the liveness sweep) ---------------------------------------
    def launching(self, tenant_id: str, tool_name: str) -> bool:
        return (tenant_id, tool_name) in self._launches

    def resume_launch(self, record: ToolInstance, node_id: str, port: int) -> None:
        """Watch the start-up of a node this manager adopted while it was still pending."""
        spec = NodeSpec(
            record.tool_name, record.tenant_id, record.image, port, record.node_token,
            namespace=self.namespace, allow_private_urls=self.allow_private_urls,
            network=self.network_for(known_tool(record.tool_name)), endpoints=tool_endpoints(),
        )  # fmt: skip
        self._spawn_launch(spec, node_id)

    async def close(self) -> None:
        tasks = list(self._launches.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.transport.close()
