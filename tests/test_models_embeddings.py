"""`/v1/models` and `/v1/embeddings` through the official `openai` SDK: the served models (the default,
the embedding model, what the upstream lists, cached), one model by id, and embeddings from the packaged
local model, as floats and as the base64 the SDK asks for by default."""

from __future__ import annotations

import math

import openai
import pytest
import requests

from .helpers import ServiceProcess
from .upstreams import ScriptedUpstream


def client(assistant: ServiceProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=assistant.url + "/v1", api_key="sk-user-key", max_retries=0, timeout=120)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_models_list_and_retrieve(assistant_factory, upstream: ScriptedUpstream) -> None:
    upstream.listed_models = ["upstream-model-a", "org/model-with-slash"]
    service = assistant_factory(MSAGENT_MODELS_CACHE_SECONDS="3600")
    api = client(service)
    ids = {m.id: m.owned_by for m in api.models.list()}
    assert ids == {
        "scripted-model": "openai", "all-MiniLM-L6-v2": "embeddings", "upstream-model-a": "openai",
        "org/model-with-slash": "openai",
    }  # fmt: skip
    assert api.models.retrieve("org/model-with-slash").id == "org/model-with-slash"
    assert api.models.retrieve("scripted-model").object == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        api.models.retrieve("no-such-model")
    assert missing.value.body["code"] == "model_not_found"
    assert len(upstream.model_lists) == 1  # the upstream's list was reused, not fetched three times
    assert upstream.model_lists[0]["Authorization"] == "Bearer sk-user-key"  # no server key: the caller's


def test_models_list_survives_a_failing_upstream(assistant_factory, upstream: ScriptedUpstream) -> None:
    upstream.fail_status = 500
    service = assistant_factory(MSAGENT_KNOWLEDGE="false")
    ids = [m.id for m in client(service).models.list()]
    assert ids == ["scripted-model"]


def test_embeddings_from_the_local_model(module_assistant: ServiceProcess) -> None:
    api = client(module_assistant)
    texts = ["a cat sleeps on the sofa", "a kitten naps on the couch", "stock markets fell sharply today"]
    as_floats = api.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    assert as_floats.model == "all-MiniLM-L6-v2" and [d.index for d in as_floats.data] == [0, 1, 2]
    cat, kitten, stocks = (d.embedding for d in as_floats.data)
    assert (
        len(cat) == 384 and abs(math.sqrt(sum(x * x for x in cat)) - 1) < 1e-2
    )  # unit length (bf16 where the CPU has it)
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2  # similar sentences, near vectors
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens > 0
    by_default = api.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0])  # the SDK asks for base64
    assert cosine(by_default.data[0].embedding, cat) > 0.999
    assert len(api.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], dimensions=384).data) == 1


def test_embedding_requests_refused_clearly(module_assistant: ServiceProcess, assistant_factory) -> None:
    url = module_assistant.url + "/v1/embeddings"
    for body, status, param in (
        ({"model": "text-embedding-3-small", "input": "x"}, 404, "model"),
        ({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 128}, 400, "dimensions"),
        ({"input": [1, 2, 3]}, 400, "input"),
        ({"input": []}, 400, "input"),
        ({"input": ""}, 400, "input"),
    ):
        reply = requests.post(url, json=body, timeout=60)
        assert reply.status_code == status, (body, reply.text)
        assert reply.json()["error"]["param"].startswith(param), reply.json()
    off = assistant_factory(MSAGENT_KNOWLEDGE="false")
    reply = requests.post(off.url + "/v1/embeddings", json={"input": "x"}, timeout=30)
    assert reply.status_code == 501 and "MSAGENT_KNOWLEDGE" in reply.json()["error"]["message"]
