"""Session history is capped by size as well as by count: the audit's three 10 MB messages."""

from __future__ import annotations

import json

import redis
import requests

from msagent_srv.identity import Space
from msagent_srv.store import ChatMessage, Store, keys

from .helpers import ServiceProcess
from .upstreams import ScriptedUpstream

MB = 1 << 20


async def test_history_keeps_the_newest_messages_that_fit_its_size(redis_url: str) -> None:
    store = Store.open(redis_url, history_max_bytes=64 * 1024)
    space = Space(None, "big")
    try:
        await store.sessions.append(space, [ChatMessage(role="user", content="a" * 25_000)])
        await store.sessions.append(space, [ChatMessage(role="user", content="b" * 25_000)])
        await store.sessions.append(space, [ChatMessage(role="user", content="c" * 25_000)])
        await store.sessions.append(space, [ChatMessage(role="assistant", content="ok")])
        kept = [m.content[0] for m in await store.sessions.get(space)]
        assert kept == ["b", "c", "o"]  # the oldest went first, the order stays
        # one message larger than the cap keeps the head of its text and says so
        await store.sessions.append(space, [ChatMessage(role="user", content="z" * 500_000)])
        newest = (await store.sessions.get(space))[-1].content
        assert newest.startswith("zzz") and newest.endswith(
            "truncated: the message was larger than the session history keeps]"
        )
        stored = sum(len(raw) for raw in await store.redis.lrange(keys.session_history(space), 0, -1))
        assert stored <= 64 * 1024
    finally:
        await store.close()


def test_three_huge_messages_neither_fill_redis_nor_go_upstream_again(
    assistant: ServiceProcess, upstream: ScriptedUpstream, redis_url: str
) -> None:
    upstream.script = lambda _body: "noted"  # type: ignore[assignment]

    def say(text: str) -> None:
        reply = requests.post(
            assistant.url + "/v1/assistants/lite",
            json={"llm_config": {"model": "m", "model_server": "openai", "api_key": "k"},
                  "uuid_str": "huge", "messages": [{"role": "user", "content": text}]},
            timeout=120,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text[:500]

    for _ in range(3):
        say("x" * (10 * MB))
    say("hi")
    followup = json.dumps(upstream.requests[-1]["messages"])
    assert len(followup) <= 2 * MB  # was 30 MB: every earlier message re-sent whole
    client = redis.Redis.from_url(redis_url)
    stored = sum(len(raw) for raw in client.lrange(keys.session_history(Space(None, "huge")), 0, -1))
    client.close()
    assert stored <= MB  # the default MSAGENT_SESSION_HISTORY_MAX_BYTES (was 42 MB for three messages)
