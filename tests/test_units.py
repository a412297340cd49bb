"""Direct tests of the logic the services rely on: argument checking, chunking, the BM25 scorer."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msagent_srv.assistant.function_calling.parser import check_arguments
from msagent_srv.assistant.knowledge.chunking import chunk_sections
from msagent_srv.assistant.knowledge.keywords import K1, query_terms, term_id, term_weights, terms
from msagent_srv.assistant.knowledge.loaders import Section
from msagent_srv.assistant.tokens import count_text
from msagent_srv.identity import Space
from msagent_srv.store import Store
from msagent_srv.store.keyword_index import KeywordIndex

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "ratio": {"type": "number"},
        "metric": {"type": "boolean"},
        "tags": {"type": "array"},
    },
    "required": ["city"],
}


@pytest.mark.parametrize(
    ("args", "problem", "after"),
    [
        ({"city": "Paris"}, None, {"city": "Paris"}),
        ({}, "missing required argument 'city'", {}),
        ({"city": 75}, None, {"city": "75"}),  # a number where text is wanted: as text
        ({"city": "P", "days": "3"}, None, {"city": "P", "days": 3}),  # digits where a number is wanted
        ({"city": "P", "ratio": "0.5"}, None, {"city": "P", "ratio": 0.5}),
        ({"city": "P", "days": "three"}, "argument 'days' must be integer", None),
        ({"city": "P", "days": True}, "argument 'days' must be integer", None),  # a bool is no number
        ({"city": "P", "metric": "yes"}, "argument 'metric' must be boolean", None),
        ({"city": "P", "tags": "a,b"}, "argument 'tags' must be array", None),
        ({"city": "P", "unknown": [1]}, None, {"city": "P", "unknown": [1]}),  # undeclared: left alone
    ],
)
def test_arguments_are_checked_and_obvious_types_coerced(
    args: dict, problem: str | None, after: dict | None
) -> None:
    assert check_arguments(SCHEMA, args) == problem
    if after is not None:
        assert args == after


def test_chunks_follow_headings_and_stay_within_the_budget() -> None:
    paragraph = "The router has four ports. Each port runs at one gigabit. " * 6
    sections = [Section(paragraph, ["Guide", "Ports"]), Section("短文本。" * 3, ["指南"], page=2)]
    chunks = chunk_sections(sections, max_tokens=40, overlap_tokens=10)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(count_text(c.text) <= 40 for c in chunks)
    assert {tuple(c.headings) for c in chunks} == {("Guide", "Ports"), ("指南",)}
    assert chunks[-1].page == 2 and chunks[-1].text == "短文本。短文本。短文本。"  # CJK joined without spaces
    english = [c for c in chunks if c.headings == ["Guide", "Ports"]]
    assert len(english) > 1
    for left, right in itertools.pairwise(english):  # neighbours share a sentence
        assert right.text.split(".")[0] in left.text


# prose as documents hold it: words, CJK, punctuation, spaces and line breaks
PROSE = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnop0123456789 .,!?;\n\n路由器端口。，！")), max_size=300
)


@settings(max_examples=60, deadline=None)
@given(st.lists(PROSE.filter(str.strip), min_size=1, max_size=5))
def test_chunking_loses_no_word(texts: list[str]) -> None:
    chunks = chunk_sections([Section(t) for t in texts], max_tokens=30, overlap_tokens=5)
    words = {w for t in texts for w in t.split()}
    joined = " ".join(c.text for c in chunks)
    assert all(w in joined for w in words if count_text(w) <= 30)


def test_terms_split_latin_words_and_chinese_characters_and_pairs() -> None:
    assert terms("The Router's ports, and 4 speeds") == ["router's", "ports", "4", "speeds"]
    assert terms("路由器") == ["路", "由", "器", "路由", "由器"]
    assert query_terms("ports PORTS") == [term_id("ports")]


def test_term_weights_saturate_and_normalise_by_length() -> None:
    once, many = term_weights("port"), term_weights("port " * 50)
    weight = once[term_id("port")]
    assert 0 < weight < K1 + 1 and many[term_id("port")] < K1 + 1  # saturation: never above k1 + 1
    short, long = term_weights("port router"), term_weights("port " + "filler " * 300)
    assert short[term_id("port")] > long[term_id("port")]  # the same term counts less in a longer text


async def test_the_redis_bm25_scores_equal_a_reference_computation(store: Store) -> None:
    docs = {
        "a": "the router has four ports",
        "b": "ports and more ports on the switch",
        "c": "a firewall with no ports mentioned",
        "d": "the garden has four roses",
    }
    space, index = Space(None, "bm25"), KeywordIndex(store.redis)
    weights = {cid: term_weights(text) for cid, text in docs.items()}
    await index.add(space, "f.txt", list(weights.items()))
    query = "four ports"
    found = dict(await index.search(space, query_terms(query), limit=10))

    n = len(docs)
    expected: dict[str, float] = {}
    for term in query_terms(query):
        df = sum(term in w for w in weights.values())
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for cid, w in weights.items():
            if term in w:
                expected[cid] = expected.get(cid, 0.0) + idf * w[term]
    assert found.keys() == expected.keys()
    assert all(found[c] == pytest.approx(expected[c], rel=1e-6) for c in expected)
    assert max(found, key=found.get) == "a"  # both terms, a short text


def test_office_files_that_unpack_beyond_the_limit_are_refused_before_parsing(tmp_path) -> None:
    import io
    import zipfile

    from msagent_srv.assistant.knowledge.loaders import MAX_UNPACKED, UnsupportedDocument, load

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"0" * (MAX_UNPACKED + 1))  # a few hundred KB packed
    for name in ("bomb.docx", "bomb.xlsx", "bomb.pptx"):
        path = tmp_path / name
        path.write_bytes(bomb.getvalue())
        with pytest.raises(UnsupportedDocument, match="over the"):
            load(path)


async def test_an_oversized_message_never_wipes_the_history(store: Store) -> None:
    from msagent_srv.store import ChatMessage, SessionHistory

    sessions = SessionHistory(store.redis, cap=50, max_bytes=8192)
    space = Space(None, "huge-call")
    await sessions.append(space, [ChatMessage(role="user", content="keep me")])
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "x" * 100_000}}
    await sessions.append(space, [ChatMessage(role="assistant", content=None, tool_calls=[call])])
    first, newest = await sessions.get(space)
    assert first.content == "keep me"  # the older message survives (it was all wiped before)
    assert newest.tool_calls[0]["id"] == "call_1" and newest.tool_calls[0]["function"]["name"] == "f"


def test_only_upstreams_the_operator_set_are_trusted_for_callers() -> None:
    from msagent_srv.assistant.backends.router import upstream_urls
    from msagent_srv.settings import Settings

    assert not any("11434" in url for url in upstream_urls(Settings.load({})))  # Ollama's default port
    assert "http://10.0.0.5:11434/v1" in upstream_urls(Settings.load({"OLLAMA_HOST": "10.0.0.5:11434"}))
