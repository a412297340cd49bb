"""/v1/files and /v1/assistants/lite with knowledge: real multipart uploads, real embeddings
(all-MiniLM-L6-v2 from its package), real Qdrant local mode, scripted upstream model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from msagent_srv.identity import Space

from .documents import CHINESE, ENGLISH, QUESTIONS
from .helpers import ServiceProcess, wait_for
from .service_calls import listing, upload, wait_indexed
from .upstreams import ScriptedUpstream


def lite(service: ServiceProcess, **body: object) -> requests.Response:
    body.setdefault("llm_config", {"model": "m", "model_server": "openai", "api_key": "k"})
    return requests.post(service.url + "/v1/assistants/lite", json=body, timeout=120)


@pytest.fixture
def kb_assistant(assistant_factory) -> ServiceProcess:
    return assistant_factory()


def test_every_type_in_english_and_chinese_is_retrieved_and_cited(
    kb_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    reply = upload(kb_assistant, "docs", {**ENGLISH, **CHINESE})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["request_id"] and body["output"]["status"] == "ok"
    assert {f["name"] for f in body["output"]["files"]} == set(ENGLISH) | set(CHINESE)
    wait_indexed(kb_assistant, "docs", [*ENGLISH, *CHINESE])
    upstream.reset(lambda _body: "Here is what I found.")
    for question, source, answer in QUESTIONS:
        result = lite(
            kb_assistant,
            uuid_str="docs",
            use_knowledge=True,
            messages=[{"role": "user", "content": question}],
        ).json()["output"]
        cited = [c["file"] for c in result["citations"]]
        assert source in cited[:3], (question, cited)
        top = next(c for c in result["citations"] if c["file"] == source)
        assert answer in top["text"] and top["chunk_id"].startswith(source + "#") and top["score"] > 0
        system = upstream.requests[-1]["messages"][0]["content"]
        assert "# Knowledge" in system and answer in system  # the passage reached the model
        assert result["response"] == "Here is what I found."


def test_files_restricts_the_search(kb_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upload(kb_assistant, "only", {"router.txt": ENGLISH["router.txt"], "guide.md": ENGLISH["guide.md"]})
    wait_indexed(kb_assistant, "only", ["router.txt", "guide.md"])
    upstream.reset(lambda _body: "ok")
    result = lite(
        kb_assistant,
        uuid_str="only",
        use_knowledge=True,
        files=["guide.md"],
        messages=[{"role": "user", "content": "How many ports does the router support?"}],
    ).json()["output"]
    assert result["citations"] and {c["file"] for c in result["citations"]} == {"guide.md"}


def test_follow_up_uses_session_history(kb_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset(["Nice to meet you, Ada.", "Your name is Ada."])
    first = lite(kb_assistant, uuid_str="chat1", messages=[{"role": "user", "content": "My name is Ada."}])
    assert first.json()["output"]["response"] == "Nice to meet you, Ada."
    second = lite(kb_assistant, uuid_str="chat1", messages=[{"role": "user", "content": "What is my name?"}])
    assert second.json()["output"]["response"] == "Your name is Ada."
    sent = upstream.requests[1]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "My name is Ada.",
        "Nice to meet you, Ada.",
        "What is my name?",
    ]
    other = lite(kb_assistant, uuid_str="chat2", messages=[{"role": "user", "content": "Hi"}])
    assert other.status_code == 200
    assert [m["content"] for m in upstream.requests[2]["messages"] if m["role"] != "system"] == ["Hi"]


def test_tool_calls_run_and_their_observations_reach_the_model(
    kb_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(['Action: calculator\nAction Input: {"expression": "6*7"}', "It is 42."])
    reply = lite(
        kb_assistant,
        uuid_str="tools1",
        agent_config={"name": "Calc", "instruction": "Be exact.", "tools": ["calculator"]},
        messages=[{"role": "user", "content": "What is 6 times 7?"}],
    ).json()["output"]
    assert reply["answer"] == "It is 42."
    assert reply["response"] == (  # the whole transcript, framed as the original servers framed it
        '\nAction: calculator\nAction Input: {"expression": "6*7"}\nObservation: <result>42</result>\nAnswer: It is 42.'
    )
    assert [c["name"] for c in reply["tool_calls"]] == ["calculator"]
    second = upstream.requests[1]["messages"]
    assert second[-1] == {"role": "user", "content": "Observation: 42"}
    assert "calculator" in upstream.requests[0]["messages"][0]["content"]
    assert "Be exact." in upstream.requests[0]["messages"][0]["content"]


def stream_lite(service: ServiceProcess, uuid_str: str, **extra: object) -> requests.Response:
    """A streamed /v1/assistants/lite run with the calculator (the caller closes the response)."""
    return requests.post(service.url + "/v1/assistants/lite", stream=True, timeout=60, json={
        "llm_config": {"model": "m", "model_server": "openai", "api_key": "k"}, "stream": True,
        "uuid_str": uuid_str, "agent_config": {"tools": ["calculator"]},
        "messages": [{"role": "user", "content": "2 to the 5th?"}], **extra})  # fmt: skip


def test_streams_legacy_text_and_typed_events(
    kb_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    script = ['Action: calculator\nAction Input: {"expression": "2**5"}', "The result is 32."]
    upstream.reset(list(script))
    with stream_lite(kb_assistant, "s1") as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        lines = [line.decode() for line in reply.iter_lines() if line]
    assert "Action: calculator" in lines and 'Action Input: {"expression": "2**5"}' in lines
    assert "Observation: <result>32</result>" in lines and lines[-1] == "Answer: The result is 32."
    upstream.reset(list(script))
    with stream_lite(kb_assistant, "s2", stream_format="sse") as reply:
        events = [block.split("\n") for block in reply.text.strip().split("\n\n")]
    kinds = [e[0].removeprefix("event: ") for e in events]
    assert kinds[0] == "tool_call" and "observation" in kinds and kinds[-1] == "done"
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done["answer"] == "The result is 32." and done["response"].endswith(
        "</result>\nAnswer: The result is 32."
    )


def test_bad_uploads_are_refused_and_lose_nothing(assistant_factory, tmp_path: Path) -> None:
    service = assistant_factory(MSAGENT_UPLOAD_MAX_MB="1")
    assert upload(service, "safe", {"router.txt": ENGLISH["router.txt"]}).status_code == 200
    wait_indexed(service, "safe", ["router.txt"])
    cases = [
        ({"../evil.txt": b"x"}, 400, "not allowed"),
        ({"/etc/evil.txt": b"x"}, 400, "not allowed"),
        ({"sub/evil.txt": b"x"}, 400, "not allowed"),
        ({"..\\evil.txt": b"x"}, 400, "not allowed"),
        ({"big.txt": b"a" * (2 * 1024 * 1024)}, 413, "larger than"),
        (
            {"router.txt": b"fine", "../evil.txt": b"x"},
            400,
            "not allowed",
        ),  # nothing of a refused request is kept
    ]
    for files, status, fragment in cases:
        reply = upload(service, "safe", files)
        assert reply.status_code == status, (files.keys(), reply.text)
        error = reply.json()["error"]
        assert fragment in error["message"] and isinstance(error["code"], str)
    no_session = requests.post(service.url + "/v1/files", files=[("files", ("a.txt", b"x"))], timeout=30)
    assert no_session.status_code == 400 and no_session.json()["error"]["param"] == "uuid_str"
    bad_session = upload(service, "x" * 257, {"a.txt": b"x"})  # any text up to 256 characters names one
    assert bad_session.status_code == 400 and bad_session.json()["error"]["param"] == "uuid_str"
    malformed = requests.post(  # a part header with a control character: not multipart at all
        service.url + "/v1/files",
        data=b'--b\r\nContent-Disposition: form-data; name="\x1b"\r\n\r\nv\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_multipart"
    nested = requests.post(  # the audit's multipart nested 2,000 deep: a stack overflow and a 500 before
        service.url + "/v1/files",
        data=nested_multipart(2000),
        headers={"Content-Type": "multipart/form-data; boundary=b0"},
        timeout=30,
    )
    assert nested.status_code == 400 and nested.json()["error"]["code"] == "invalid_multipart"
    many = upload(service, "safe", {f"n{i}.txt": b"x" for i in range(21)})  # MSAGENT_UPLOAD_MAX_FILES=20
    assert many.status_code == 400 and many.json()["error"]["code"] == "too_many_files"
    files = listing(service, "safe")
    assert list(files) == ["router.txt"] and files["router.txt"]["status"] == "indexed"
    uploads = Path(service.env["MSAGENT_DATA_DIR"]) / "uploads"
    folder = Space(None, "safe").digest  # a space's folder is named by its digest, never by the caller
    written = sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*") if p.is_file())
    assert written == [f"{folder}/router.txt"]
    assert (uploads / folder / "router.txt").read_bytes() == ENGLISH["router.txt"]


def nested_multipart(depth: int) -> bytes:
    """A multipart body whose only part is a multipart, `depth` levels down."""
    body = (
        b'--b%d\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nx\r\n--b%d--\r\n'
        % (
            depth,
            depth,
        )
    )
    for level in range(depth - 1, -1, -1):
        head = b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
        body = head + body + b"\r\n--b%d--\r\n" % level
    return body


def test_replace_deduplicate_and_delete(kb_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upload(kb_assistant, "v", {"notes.txt": b"The secret colour is turquoise."})
    wait_indexed(kb_assistant, "v", ["notes.txt"])
    same = upload(
        kb_assistant,
        "v",
        {"notes.txt": b"The secret colour is turquoise.", "copy.txt": b"The secret colour is turquoise."},
    ).json()["output"]["files"]
    assert all(f["duplicate"] for f in same) and list(listing(kb_assistant, "v")) == ["notes.txt"]
    replaced = upload(kb_assistant, "v", {"notes.txt": b"The secret animal is a lynx."}).json()["output"][
        "files"
    ]
    assert replaced[0]["replaced"] is True
    wait_for(
        lambda: (
            listing(kb_assistant, "v")["notes.txt"]["sha256"] == replaced[0]["sha256"]
            and listing(kb_assistant, "v")["notes.txt"]["status"] == "indexed"
        ),
        60,
        what="re-indexing",
    )
    upstream.reset(lambda _body: "ok")
    result = lite(
        kb_assistant,
        uuid_str="v",
        use_knowledge=True,
        messages=[{"role": "user", "content": "What is the secret colour?"}],
    ).json()["output"]
    assert [c["text"] for c in result["citations"]] == [
        "The secret animal is a lynx."
    ]  # the old version is gone
    deleted = requests.delete(
        kb_assistant.url + "/v1/files", params={"uuid_str": "v", "name": "notes.txt"}, timeout=30
    )
    assert deleted.status_code == 200 and listing(kb_assistant, "v") == {}
    after = lite(
        kb_assistant,
        uuid_str="v",
        use_knowledge=True,
        messages=[{"role": "user", "content": "What is the secret animal?"}],
    ).json()["output"]
    assert after["citations"] == []
    missing = requests.delete(
        kb_assistant.url + "/v1/files", params={"uuid_str": "v", "name": "notes.txt"}, timeout=30
    )
    assert missing.status_code == 404


def test_lite_refuses_what_it_cannot_do(assistant_factory) -> None:
    service = assistant_factory(DASHSCOPE_API_KEY="")
    no_key = lite(
        service,
        llm_config={"model": "qwen-max", "model_server": "dashscope"},
        messages=[{"role": "user", "content": "hi"}],
    )
    assert no_key.status_code == 400 and no_key.json()["error"]["param"] == "llm_config.api_key"
    untrusted = lite(
        service, agent_config={"tools": ["code_interpreter"]}, messages=[{"role": "user", "content": "x"}]
    )
    assert untrusted.status_code == 400 and "use_tool_api" in untrusted.json()["error"]["message"]
    unknown = lite(service, agent_config={"tools": ["nope"]}, messages=[{"role": "user", "content": "x"}])
    assert unknown.status_code == 400 and "unknown tool" in unknown.json()["error"]["message"]
    empty = lite(service, messages=[])
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "messages"
    not_http = lite(
        service,
        llm_config={"model": "m", "model_server": "openai", "api_base": "file:///etc/passwd", "api_key": "k"},
        messages=[{"role": "user", "content": "x"}],
    )
    assert not_http.status_code == 400 and not_http.json()["error"]["param"] == "llm_config.api_base"


def test_tools_through_the_manager(
    assistant_factory, manager: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    service = assistant_factory(TOOL_MANAGER_SERVICE_URL=manager.url)
    upstream.reset(
        ['Action: code_interpreter\nAction Input: {"code": "print(sum(range(10)))"}', "The sum is 45."]
    )
    reply = lite(
        service,
        uuid_str="remote",
        use_tool_api=True,
        tenant_id="lite",
        agent_config={"tools": ["code_interpreter"]},
        messages=[{"role": "user", "content": "Sum 0..9 with Python"}],
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"]["answer"] == "The sum is 45."
    observation = upstream.requests[1]["messages"][-1]["content"]
    assert observation.startswith("Observation: ") and "45\n" in observation


def test_an_embeddings_api_can_replace_the_local_model(assistant_factory, upstream: ScriptedUpstream) -> None:
    service = assistant_factory(
        MSAGENT_EMBEDDING_BACKEND="openai",
        MSAGENT_EMBEDDING_MODEL="text-embedding-3-small",
        MSAGENT_EMBEDDING_BASE_URL=upstream.openai_url,
        MSAGENT_EMBEDDING_API_KEY="sk-emb",
    )
    upload(service, "api", {"router.txt": ENGLISH["router.txt"], "guide.md": ENGLISH["guide.md"]})
    wait_indexed(service, "api", ["router.txt", "guide.md"])
    embedding_calls = [
        (b, h) for b, h in zip(upstream.requests, upstream.headers, strict=True) if "input" in b
    ]
    assert embedding_calls and all(b["model"] == "text-embedding-3-small" for b, _ in embedding_calls)
    assert all(h["Authorization"] == "Bearer sk-emb" for _, h in embedding_calls)
    upstream.script = lambda _body: "ok"
    result = lite(
        service,
        uuid_str="api",
        use_knowledge=True,
        messages=[{"role": "user", "content": "How long does the Zephyr-9 warranty last?"}],
    ).json()["output"]
    assert result["citations"][0]["file"] == "guide.md" and "seven years" in result["citations"][0]["text"]


def test_without_knowledge_uploads_and_retrieval_say_why(
    assistant_factory, upstream: ScriptedUpstream
) -> None:
    service = assistant_factory(MSAGENT_KNOWLEDGE="false")  # the same path as a missing [knowledge] extra
    refused = upload(service, "k0", {"a.txt": b"text"})
    assert refused.status_code == 501 and "MSAGENT_KNOWLEDGE" in refused.json()["error"]["message"]
    asked = lite(service, uuid_str="k0", use_knowledge=True, messages=[{"role": "user", "content": "hi"}])
    assert asked.status_code == 400 and asked.json()["error"]["param"] == "use_knowledge"
    upstream.reset(["still chatting"])
    chat = lite(service, uuid_str="k0", messages=[{"role": "user", "content": "hi"}])
    assert chat.json()["output"]["response"] == "still chatting"
