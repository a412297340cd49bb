"""The Redis state store against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import pytest

from msagent_srv.identity import Space
from msagent_srv.store import (
    ChatMessage,
    Conflict,
    FileRecord,
    NotFound,
    PortsExhausted,
    Store,
    StoreUnavailable,
    ToolInstance,
    ToolStatus,
    keys,
)
from msagent_srv.store.embedded import EmbeddedRedis, free_port


def instance(tool: str, tenant: str = "default", **fields: object) -> ToolInstance:
    return ToolInstance(tool_name=tool, tenant_id=tenant, image="img", **fields)


async def test_registry_is_per_tenant(store: Store) -> None:
    assert (await store.tools.create(instance("calc", "a")))[0]
    assert (await store.tools.create(instance("calc", "b")))[0]
    assert (await store.tools.create(instance("renew", "a")))[0]
    assert [t.tool_name for t in await store.tools.list("a")] == ["calc", "renew"]
    assert [t.tool_name for t in await store.tools.list("b")] == ["calc"]
    assert await store.tools.list("nobody") == []
    assert await store.tools.tenants() == ["a", "b"]
    with pytest.raises(NotFound):
        await store.tools.get("b", "renew")


async def test_create_keeps_a_live_record_and_replaces_an_ended_one(store: Store) -> None:
    created, first = await store.tools.create(instance("calc", port=21001))
    assert created and first.status is ToolStatus.pending
    created, existing = await store.tools.create(instance("calc", port=21002))
    assert not created and existing.port == 21001
    await store.tools.transition("default", "calc", status=ToolStatus.failed, error="boom")
    created, replaced = await store.tools.create(instance("calc", port=21003))
    assert created and replaced.port == 21003 and replaced.error is None


async def test_status_transition_is_atomic_under_concurrency(store: Store) -> None:
    await store.tools.create(instance("calc"))

    async def promote(i: int) -> bool:
        try:
            await store.tools.transition(
                "default",
                "calc",
                allowed_from=[ToolStatus.pending],
                status=ToolStatus.running,
                container_id=f"c{i}",
            )
            return True
        except Conflict:
            return False

    # 50 concurrent requests race to promote the same pending record: exactly one may win.
    results = await asyncio.gather(*(promote(i) for i in range(50)))
    assert results.count(True) == 1
    record = await store.tools.get("default", "calc")
    assert record.status is ToolStatus.running and record.container_id is not None
    with pytest.raises(NotFound):
        await store.tools.transition("default", "missing", status=ToolStatus.running)


def _url(store: Store) -> str:
    kwargs = store.redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


async def test_delete_respects_allowed_statuses(store: Store) -> None:
    await store.tools.create(instance("calc"))
    with pytest.raises(Conflict):
        await store.tools.delete("default", "calc", allowed_from=[ToolStatus.exited])
    deleted = await store.tools.delete("default", "calc")
    assert deleted.tool_name == "calc"
    with pytest.raises(NotFound):
        await store.tools.delete("default", "calc")


_ALLOCATE_IN_CHILD = """
import asyncio, json, sys
from msagent_srv.store import Store, keys
async def main():
    store = Store.open(sys.argv[1], port_range=(21000, 21999))
    ports = await asyncio.gather(*(store.ports.allocate(f"{sys.argv[2]}/{i}") for i in range(25)))
    await store.close()
    print(json.dumps(ports))
asyncio.run(main())
"""


async def test_ports_are_unique_across_100_concurrent_allocations_in_4_processes(store: Store) -> None:
    url = _url(store)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _ALLOCATE_IN_CHILD, url, f"proc{n}", stdout=asyncio.subprocess.PIPE
        )
        for n in range(4)
    ]
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    ports = [p for stdout, _ in outputs for p in json.loads(stdout)]
    assert len(ports) == 100
    assert len(set(ports)) == 100
    assert all(21000 <= p <= 21999 for p in ports)
    assert len(await store.ports.owners()) == 100


async def test_ports_are_reused_after_release_and_kept_per_owner(store: Store) -> None:
    first = await store.ports.allocate("t/a")
    second = await store.ports.allocate("t/b")
    assert second != first
    assert await store.ports.allocate("t/a") == first  # a retried allocation returns the same port
    assert not await store.ports.release(first, "t/b")  # only the owner releases
    assert await store.ports.release(first, "t/a")
    assert await store.ports.allocate("t/c") == first  # lowest free port comes back


async def test_ports_skip_what_another_program_listens_on(store: Store) -> None:
    lowest = await store.ports.allocate("t/probe")
    await store.ports.release(lowest, "t/probe")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", lowest))
        squatter.listen()
        port = await store.ports.allocate("t/a")
    assert port != lowest
    assert await store.ports.owner_of(lowest) is None  # the busy port was not kept by us


async def test_ports_exhausted_is_a_clear_error(redis_url: str) -> None:
    store = Store.open(redis_url, port_range=(21500, 21501))
    try:
        await store.ports.allocate("t/a")
        await store.ports.allocate("t/b")
        with pytest.raises(PortsExhausted):
            await store.ports.allocate("t/c")
    finally:
        await store.close()


async def test_ports_and_registry_survive_a_redis_restart(tmp_path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path, port=port, appendonly=True).start()
    store = Store.open(server.url, port_range=(21000, 21999))
    try:
        allocated = await store.ports.allocate("t/a")
        await store.tools.create(instance("calc", "t", port=allocated))
        await store.sessions.append(Space(None, "s1"), [ChatMessage(role="user", content="hi")])
        server.stop()
        server = EmbeddedRedis(tmp_path, port=port, appendonly=True).start()
        assert await store.ports.owner_of(allocated) == "t/a"
        assert await store.ports.allocate("t/b") != allocated
        assert (await store.tools.get("t", "calc")).port == allocated
        assert [m.content for m in await store.sessions.get(Space(None, "s1"))] == ["hi"]
    finally:
        await store.close()
        server.stop()


async def test_session_history_keeps_order_cap_and_ttl(redis_url: str) -> None:
    store = Store.open(redis_url, history_cap=5, history_ttl=60)
    try:
        for i in range(4):
            await store.sessions.append(
                Space(None, "u1"),
                [ChatMessage(role="user", content=f"q{i}"), ChatMessage(role="assistant", content=f"a{i}")],
            )
        history = await store.sessions.get(Space(None, "u1"))
        assert [m.content for m in history] == ["a1", "q2", "a2", "q3", "a3"]
        assert [m.content for m in await store.sessions.get(Space(None, "u1"), last=2)] == ["q3", "a3"]
        assert 0 < await store.redis.ttl(keys.session_history(Space(None, "u1"))) <= 60
        assert await store.sessions.get(Space(None, "other")) == []
        await store.sessions.clear(Space(None, "u1"))
        assert await store.sessions.length(Space(None, "u1")) == 0
    finally:
        await store.close()


async def test_tool_calls_round_trip_in_history(store: Store) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}
    await store.sessions.append(
        Space(None, "u"),
        [
            ChatMessage(role="assistant", content=None, tool_calls=[call]),
            ChatMessage(role="tool", content="2", tool_call_id="call_1"),
        ],
    )
    first, second = await store.sessions.get(Space(None, "u"))
    assert first.tool_calls == [call] and first.content is None
    assert second.tool_call_id == "call_1"


async def test_file_records(store: Store) -> None:
    record = FileRecord(name="a.txt", path="/d/a.txt", size=3, sha256="x")
    await store.files.put(Space(None, "u"), record)
    await store.files.put(Space(None, "u"), FileRecord(name="b.md", path="/d/b.md", size=4, sha256="y"))
    assert [f.name for f in await store.files.list(Space(None, "u"))] == ["a.txt", "b.md"]
    updated = await store.files.update(Space(None, "u"), "a.txt", status="indexed", chunks=7)
    assert (
        updated.chunks == 7 and (await store.files.get(Space(None, "u"), "a.txt")).status.value == "indexed"
    )
    assert await store.files.delete(Space(None, "u"), "a.txt")
    with pytest.raises(NotFound):
        await store.files.get(Space(None, "u"), "a.txt")
    assert await store.files.list(Space(None, "other")) == []


async def test_unreachable_redis_fails_fast_with_store_unavailable() -> None:
    dead = Store.open(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await dead.tools.list("default")
        with pytest.raises(StoreUnavailable):
            await dead.ports.allocate("t/a")
    finally:
        await dead.close()
    assert time.monotonic() - started < 5


def test_embedded_redis_starts_and_stops(tmp_path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        assert conn.recv(16).startswith(b"+PONG")
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_port_with_only_closed_connections_is_free() -> None:
    from msagent_srv.store.ports import port_is_free

    port = free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not port_is_free(port)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end lingers in TIME_WAIT
        client.close()
    assert port_is_free(port)


async def test_ended_records_are_kept_for_their_time_then_forgotten(store: Store) -> None:
    await store.tools.create(instance("calc", "ttl"))
    old = await store.tools.retire("ttl", "calc", keep_seconds=3600)
    assert old.status is ToolStatus.pending  # the record it replaced, for its node's cleanup
    kept = await store.tools.get("ttl", "calc")
    assert kept.status is ToolStatus.exited and [r.tool_name for r in await store.tools.list("ttl")] == [
        "calc"
    ]
    await store.tools.retire("ttl", "calc", keep_seconds=0)
    with pytest.raises(NotFound):
        await store.tools.get("ttl", "calc")
    assert await store.tools.list("ttl") == []
    created, _ = await store.tools.create(instance("calc", "ttl"))  # and the name can be used again
    assert created
