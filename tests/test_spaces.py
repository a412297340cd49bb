"""(tenant, uuid_str) pairs that collided under the old name-gluing never meet in any store: Redis
session history and file records, the keyword index, Qdrant vectors, upload folders, and end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from msagent_srv.assistant.knowledge.chunking import Chunk
from msagent_srv.assistant.knowledge.store import VectorStore
from msagent_srv.identity import Space
from msagent_srv.store import ChatMessage, FileRecord, Store
from msagent_srv.store.keyword_index import KeywordIndex

from .helpers import ADMIN, new_key, wait_for
from .upstreams import ScriptedUpstream

# Each pair shared one name under some gluing: `~`/`.` replaced by `_`, or `tenant~uuid` joined.
COLLIDING = [
    (Space("acme", "hr_docs"), Space("acme_hr", "docs")),
    (Space("a~b", "c"), Space("a", "b~c")),
    (Space("a.b", "c"), Space("a_b", "c")),
    (Space(None, "acme~docs"), Space("acme", "docs")),
    (Space(None, "x"), Space("", "x")),
]

names = st.text(min_size=0, max_size=12)


@given(st.tuples(st.none() | names, names), st.tuples(st.none() | names, names))
def test_space_encodings_are_injective(a: tuple[str | None, str], b: tuple[str | None, str]) -> None:
    first, second = Space(*a), Space(*b)
    if first != second:
        assert first.key != second.key and first.digest != second.digest
    assert ":" not in first.key  # Redis key templates put ':' around it


@pytest.mark.parametrize("pair", COLLIDING, ids=lambda p: f"{p[0].key}|{p[1].key}")
async def test_colliding_pairs_share_no_redis_state(store: Store, pair: tuple[Space, Space]) -> None:
    mine, theirs = pair
    await store.sessions.append(mine, [ChatMessage(role="user", content="payroll: 9000")])
    await store.files.put(mine, FileRecord(name="payroll.txt", path="/x", size=1, sha256="a"))
    keywords = KeywordIndex(store.redis)
    await keywords.add(mine, "payroll.txt", [("chunk-1", {7: 1.0})])

    assert await store.sessions.get(theirs) == []
    assert await store.files.list(theirs) == []
    assert await keywords.search(theirs, [7]) == []
    await keywords.remove_file(theirs, "payroll.txt")  # the other's delete touches nothing of mine
    assert [chunk for chunk, _score in await keywords.search(mine, [7])] == ["chunk-1"]
    assert [m.content for m in await store.sessions.get(mine)] == ["payroll: 9000"]


def test_colliding_pairs_share_no_vectors(tmp_path: Path) -> None:
    import asyncio

    async def run() -> None:
        vectors = VectorStore(tmp_path / "qdrant")
        try:
            for mine, theirs in COLLIDING:
                await vectors.upsert(mine, "payroll.txt", [Chunk("salary 9000", 0, [])], [[1.0, 0.0, 0.0]])
                await vectors.upsert(theirs, "payroll.txt", [Chunk("salary 1", 0, [])], [[1.0, 0.0, 0.0]])
                await vectors.delete_file(theirs, "payroll.txt")  # deleting theirs keeps mine
                assert await vectors.search(theirs, [1.0, 0.0, 0.0]) == []
                found = await vectors.search(mine, [1.0, 0.0, 0.0])
                hits = await vectors.retrieve(mine, [found[0][0]])
                assert [h.text for h in hits.values()] == ["salary 9000"]
                assert await vectors.retrieve(theirs, [found[0][0]]) == {}  # no reading by id either
        finally:
            await vectors.close()

    asyncio.run(run())


def test_tenants_whose_names_collided_read_only_their_own_knowledge(
    assistant_factory, redis_url: str, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """The audit's attack: tenant `acme` + uuid_str `hr_docs` against tenant `acme_hr` + uuid_str `docs`."""
    service = assistant_factory(MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN)
    acme, acme_hr = new_key(redis_url, "acme"), new_key(redis_url, "acme_hr")

    def upload(key: str, uuid_str: str, text: str) -> None:
        reply = requests.post(
            service.url + "/v1/files",
            headers={"Authorization": f"Bearer {key}"},
            data={"uuid_str": uuid_str},
            files=[("files", ("payroll.txt", text.encode()))],
            timeout=60,
        )
        assert reply.status_code == 200, reply.text

    def indexed(key: str, uuid_str: str) -> bool:
        reply = requests.get(
            service.url + "/v1/files",
            params={"uuid_str": uuid_str},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        return [f["status"] for f in reply.json()["output"]["files"]] == ["indexed"]

    def ask(key: str, uuid_str: str) -> dict:
        reply = requests.post(
            service.url + "/v1/assistants/lite",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
            json={"llm_config": {"model": "m", "api_key": "sk-model"}, "uuid_str": uuid_str,
                  "use_knowledge": True, "messages": [{"role": "user", "content": "What is the salary?"}]},
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        return reply.json()["output"]

    upload(acme_hr, "docs", "Payroll of acme_hr: the salary of the director is 250000 dollars.")
    wait_for(lambda: indexed(acme_hr, "docs"), 180, interval=0.5, what="acme_hr's payroll indexed")
    upload(acme, "hr_docs", "Payroll of acme: the salary of the intern is 100 dollars.")  # same file name
    wait_for(lambda: indexed(acme, "hr_docs"), 180, interval=0.5, what="acme's payroll indexed")

    upstream.script = lambda _body: "Here it is."  # type: ignore[assignment]
    acme_sees = ask(acme, "hr_docs")
    assert acme_sees["citations"] and all("intern" in c["text"] for c in acme_sees["citations"])
    assert "250000" not in str(upstream.requests[-1]["messages"])
    hr_sees = ask(acme_hr, "docs")  # its chunks were not overwritten by acme's same-named upload
    assert hr_sees["citations"] and all("director" in c["text"] for c in hr_sees["citations"])
    assert "100 dollars" not in str(upstream.requests[-1]["messages"])
