"""The assistant as a drop-in for the original servers: their uploads, identifiers and error envelope."""

from __future__ import annotations

import io
from pathlib import Path

import requests

from msagent_srv.identity import Space

from .helpers import ServiceProcess, wait_for
from .upstreams import ScriptedUpstream


def xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Prices"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pptx(title: str, body: str) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = body
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def files_of(service: ServiceProcess, uuid_str: str) -> dict[str, dict]:
    reply = requests.get(service.url + "/v1/files", params={"uuid_str": uuid_str}, timeout=30)
    assert reply.status_code == 200, reply.text
    return {f["name"]: f for f in reply.json()["output"]["files"]}


def test_every_type_the_original_took_is_kept_and_text_of_any_kind_indexed(
    assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    uploads = {
        "config.yaml": b"server:\n  port: 8443  # the gateway port is 8443\n",
        "main.py": b"def answer():\n    return 'the magic number is 4711'\n",
        "build.xml": b"<project><target name='deploy'>the release train leaves on Thursday</target></project>",
        "prices.xlsx": xlsx([["item", "price"], ["platinum widget", 314]]),
        "roadmap.pptx": pptx("Roadmap", "The moon base opens in 2031."),
        "blob.bin": bytes(range(256)) * 4,
    }
    for uuid_str in ("user@example.com", "张三", "../../etc"):  # the last names a space, not a folder
        reply = requests.post(
            assistant.url + "/v1/files",
            data={"uuid_str": uuid_str},
            files=[("files", (name, data)) for name, data in uploads.items()],
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        out = reply.json()["output"]
        assert out["status"] == "ok" and sorted(f["name"] for f in out["files"]) == sorted(uploads)

        def settled(uuid_str: str = uuid_str) -> dict[str, dict] | None:
            files = files_of(assistant, uuid_str)
            return files if all(f["status"] not in ("pending", "indexing") for f in files.values()) else None

        files = wait_for(settled, 180, interval=0.5, what="the uploads to be indexed")
        assert {n: f["status"] for n, f in files.items() if n != "blob.bin"} == dict.fromkeys(
            set(uploads) - {"blob.bin"}, "indexed"
        )
        assert files["blob.bin"]["status"] == "not_indexed" and "not indexed" in files["blob.bin"]["error"]
    uploads_dir = Path(assistant.env["MSAGENT_DATA_DIR"]) / "uploads"
    folders = {p.name for p in uploads_dir.iterdir() if not p.name.startswith(".")}
    assert folders == {Space(None, u).digest for u in ("user@example.com", "张三", "../../etc")}

    upstream.script = lambda _body: "Found it."  # type: ignore[assignment]
    for question, fact in [
        ("What is the price of the platinum widget?", "314"),
        ("When does the moon base open?", "2031"),
        ("What is the gateway port?", "8443"),
    ]:
        reply = requests.post(
            assistant.url + "/v1/assistants/lite",
            json={"llm_config": {"model": "m", "model_server": "openai", "api_key": "k"},
                  "uuid_str": "张三", "use_knowledge": True,
                  "messages": [{"role": "user", "content": question}]},
            timeout=120,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert fact in reply.json()["output"]["citations"][0]["text"], (question, reply.json()["output"])


def test_agent_and_file_errors_carry_both_envelopes(assistant: ServiceProcess) -> None:
    lite = requests.post(assistant.url + "/v1/assistants/lite", json={"messages": "not a list"}, timeout=30)
    files = requests.post(assistant.url + "/v1/files", data={"uuid_str": "x" * 257}, timeout=30)
    generate = requests.post(  # a bad generate_config names its field (it was a 500)
        assistant.url + "/v1/assistants/lite",
        json={"llm_config": {"model": "m", "model_server": "openai", "api_key": "k",
                             "generate_config": {"temperature": "hot"}},
              "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )  # fmt: skip
    assert generate.json()["error"]["param"] == "llm_config.generate_config"
    for reply in (lite, files, generate):
        body = reply.json()
        assert reply.status_code == 400, body
        assert body["request_id"] and body["output"] is None  # the original's clients read these
        assert body["message"] == body["error"]["message"] and body["error"]["code"]  # OpenAI's read this


def test_resent_and_stored_conversations_reach_the_model_once(
    assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    """The original's clients resend the whole conversation; ours send the new message. Same model input."""

    def lite(uuid_str: str, messages: list[dict]) -> dict:
        reply = requests.post(
            assistant.url + "/v1/assistants/lite",
            json={"llm_config": {"model": "m", "model_server": "openai", "api_key": "k"},
                  "uuid_str": uuid_str, "messages": messages},
            timeout=60,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        return reply.json()["output"]

    def seen() -> list[tuple[str, str]]:
        return [(m["role"], m["content"]) for m in upstream.requests[-1]["messages"] if m["role"] != "system"]

    u1, u2, u3 = (
        {"role": "user", "content": "My name is Ada."},
        {"role": "user", "content": "I like tea."},
        {"role": "user", "content": "Who am I?"},
    )
    for style in ("resend", "new-only"):
        upstream.script = ["Hello Ada.", "Tea is nice.", "You are Ada, who likes tea."]
        a1 = {"role": "assistant", "content": lite(style, [u1])["answer"]}
        a2 = {
            "role": "assistant",
            "content": lite(style, [u1, a1, u2] if style == "resend" else [u2])["answer"],
        }
        lite(style, [u1, a1, u2, a2, u3] if style == "resend" else [u3])
        expected = [(m["role"], m["content"]) for m in (u1, a1, u2, a2, u3)]
        assert seen() == expected, style


def test_the_originals_model_server_values_are_served(assistant_factory, upstream: ScriptedUpstream) -> None:
    # OPENAI_API_BASE, the name the original servers' users set, is read as OPENAI_BASE_URL is
    service = assistant_factory(OPENAI_BASE_URL="", OPENAI_API_BASE=upstream.openai_url)

    def lite(llm_config: dict) -> requests.Response:
        return requests.post(
            service.url + "/v1/assistants/lite",
            json={"llm_config": {"model": "qwen-max", "api_key": "k", **llm_config},
                  "messages": [{"role": "user", "content": "hi"}]},
            timeout=60,
        )  # fmt: skip

    upstream.script = lambda _body: "served"  # type: ignore[assignment]
    for llm_config in (
        {"model_server": "openai"},  # the configured upstream, found through OPENAI_API_BASE
        {"model_server": "vllm"},
        {"model_server": "azure_openai"},
        {"model_server": "vllm-server", "api_base": upstream.openai_url},
        {"model_server": "my-own-server", "api_base": upstream.openai_url},  # any name with an api_base
        {"model_server": "dashscope_qwen"},
        {"model_server": "dashscope"},
    ):
        reply = lite(llm_config)
        assert reply.status_code == 200 and reply.json()["output"]["answer"] == "served", (
            llm_config,
            reply.text,
        )
    assert "parameters" in upstream.requests[-1]  # the DashScope wire, for the dashscope_* values
    unknown = lite({"model_server": "modelscope"})  # a local ModelScope model: not something we run
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_model_server"
