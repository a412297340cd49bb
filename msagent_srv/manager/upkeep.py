"""Keeping the runtime in line with the registry: after a (re)start, adopt the nodes that run, mark the
vanished ones exited and remove the containers nobody owns; while the manager runs, notice dead nodes and
remove idle ones."""

from __future__ import annotations

import asyncio
import logging
import time

from ..store import NotFound, StoreError, ToolStatus
from .nodes import LIVE, NodeManager, port_owner

log = logging.getLogger("msagent_srv.manager")


async def reconcile(nodes: NodeManager) -> dict[str, int]:
    """Returns counts for the log."""
    store, runtime = nodes.store, nodes.runtime
    counts = {"adopted": 0, "exited": 0, "orphans_removed": 0, "ports_reclaimed": 0}
    running = {(n.tenant_id, n.tool_name): n for n in await runtime.nodes(nodes.namespace)}
    for record in await store.tools.all():
        key = (record.tenant_id, record.tool_name)
        node = running.pop(key, None)
        if record.status not in LIVE:
            if node is not None:
                await runtime.stop(node.node_id)
            continue
        if node is None or not node.running or node.node_id != record.container_id:
            if node is not None:
                await runtime.stop(node.node_id)
            if record.port is not None:
                await store.ports.release(record.port, port_owner(*key))
            await store.tools.transition(
                *key, allowed_from=LIVE, status=ToolStatus.exited, error="node gone after manager restart"
            )
            counts["exited"] += 1
            continue
        counts["adopted"] += 1
        if record.status is ToolStatus.pending and not nodes.launching(*key):
            nodes.resume_launch(record, node.node_id, node.port)
    for node in running.values():  # labelled ours, but no record claims it
        await runtime.stop(node.node_id)
        counts["orphans_removed"] += 1
    counts["ports_reclaimed"] = await reclaim_ports(nodes)
    return counts


async def reclaim_ports(nodes: NodeManager) -> int:
    """Release ports whose owner no longer holds them: a manager that died between allocating a port and
    recording it would otherwise leak the port for good."""
    store = nodes.store
    records = {port_owner(r.tenant_id, r.tool_name): r for r in await store.tools.all()}
    reclaimed = 0
    for port, owner in (await store.ports.owners()).items():
        record = records.get(owner)
        held = record is not None and record.status in LIVE and record.port in (None, port)
        if not held:
            reclaimed += await store.ports.release(port, owner)
    return reclaimed


async def sweep(nodes: NodeManager) -> None:
    """One liveness pass: notice dead nodes, remove idle ones."""
    now, idle = time.time(), nodes.idle_timeout
    for record in await nodes.store.tools.all():
        if record.status is not ToolStatus.running:
            continue
        record = await nodes.check_alive(record)
        if idle and record.status is ToolStatus.running and now - record.last_used_at > idle:
            log.info("removing idle node", extra={"tool": record.tool_name, "tenant": record.tenant_id})
            try:
                await nodes.remove(record.tenant_id, record.tool_name)
            except NotFound:
                pass


async def monitor(nodes: NodeManager, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(nodes)
        except StoreError as exc:  # Redis away: say so, without a traceback every sweep
            log.warning("node sweep skipped: %s", exc)
        except Exception:  # a failed sweep must not end the monitor
            log.exception("node sweep failed")
