"""Schemathesis against our own OpenAPI documents, served by the running services: valid and invalid
requests for every operation, bounded in count, and deterministic (the same cases on every run). No request
may get a 5xx, and every error must come in the service's envelope."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .helpers import ENVELOPE_KEYS, ServiceProcess
from .upstreams import ScriptedUpstream

EXAMPLES_PER_MODE = 40


def fuzz(service: ServiceProcess, is_envelope, adjust=None) -> Counter[str]:  # type: ignore[no-untyped-def]
    """Every operation, positive and negative cases; returns how many requests got which status class."""
    document = requests.get(service.url + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    seen: Counter[str] = Counter()
    failures: list[str] = []

    def check(case: schemathesis.Case, mode: GenerationMode) -> None:
        if adjust is not None:
            adjust(case)
        response = case.call(base_url=service.url, timeout=60)
        seen[f"{response.status_code // 100}xx"] += 1
        where = f"{case.method} {case.path} ({mode.value})"
        if response.status_code >= 500:
            failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
        elif response.status_code >= 400 and not is_envelope(response):
            failures.append(f"{where} -> {response.status_code} outside the envelope: {response.text[:200]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        described = document["paths"][operation.path][operation.method]
        modes = [GenerationMode.POSITIVE]
        # else there is nothing to break (a path segment cannot be made invalid: any text names something)
        if "requestBody" in described or any(p["in"] != "path" for p in described.get("parameters", [])):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            examples(operation.as_strategy(generation_mode=mode), lambda case, m=mode: check(case, m))
    assert not failures, "\n".join(failures[:20])
    assert seen["2xx"] and seen["4xx"]  # both valid and refused requests were really exercised
    return seen


def examples(strategy, body) -> None:  # type: ignore[no-untyped-def]
    """Run `body` on EXAMPLES_PER_MODE cases drawn from `strategy`, the same ones on every run."""

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        body(case)

    run()


def openai_envelope(response: requests.Response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error.get("message"), str) and isinstance(error.get("code"), str)


def assistant_envelope(response: requests.Response) -> bool:
    """Anthropic's envelope on its Messages API, OpenAI's on the rest of /v1."""
    if requests.utils.urlparse(response.request.url).path != "/v1/messages":
        return openai_envelope(response)
    try:
        body = response.json()
    except ValueError:
        return False
    return body.get("type") == "error" and isinstance(body.get("error", {}).get("message"), str)


def legacy_envelope(response: requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return set(body) == ENVELOPE_KEYS and bool(body["message"])


def keep_agents_local(case: schemathesis.Case) -> None:
    """Agent requests stay on this machine: tools through a manager and caller-chosen upstreams have their
    own tests (and a random api_base would be looked up in DNS)."""
    if case.path == "/v1/assistants/lite" and isinstance(case.body, dict):
        case.body["use_tool_api"] = False
        if isinstance(case.body.get("llm_config"), dict):
            case.body["llm_config"].pop("api_base", None)


def test_assistant_survives_fuzzing(assistant_factory, upstream: ScriptedUpstream) -> None:
    upstream.script = lambda _body: 'Action: f\nAction Input: {"x": 1}'  # type: ignore[assignment]
    # every configured backend answers: the scripted upstream stands in for Ollama too
    service = assistant_factory(MSAGENT_UPLOAD_MAX_MB="1", OLLAMA_HOST=f"127.0.0.1:{upstream.port}")
    seen = fuzz(service, assistant_envelope, keep_agents_local)
    print("assistant fuzz:", dict(seen))


@pytest.fixture
def process_manager(manager_factory) -> ServiceProcess:
    return manager_factory(
        MSAGENT_RUNTIME="process", MSAGENT_NODE_PORT_BASE="22500", MSAGENT_NODE_PORT_MAX="22999"
    )


def test_manager_survives_fuzzing(process_manager: ServiceProcess) -> None:
    seen = fuzz(process_manager, legacy_envelope)
    print("manager fuzz:", dict(seen))
    tools: dict[str, Any] = requests.get(process_manager.url + "/tools", timeout=10).json()["output"]["tools"]
    assert all(status in ("pending", "running", "failed", "exited") for status in tools.values())
