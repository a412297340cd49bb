"""Authentication on the manager and the assistant: an admin key, tenant keys (hashed in Redis, made and
revoked by the CLI) that work on both, the tenant taken from the key."""

from __future__ import annotations

import openai
import pytest
import requests

from msagent_srv.client import ManagerClient, ToolServiceProxy
from msagent_srv.toolservice import ToolServiceError

from .helpers import ADMIN, ENVELOPE_KEYS, ServiceProcess, keys_cli, new_key, wait_for
from .upstreams import ScriptedUpstream


@pytest.fixture
def secured(manager_factory) -> ServiceProcess:
    return manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_AUTH="on",
        MSAGENT_ADMIN_KEY=ADMIN,
        MSAGENT_NODE_PORT_BASE="22300",
        MSAGENT_NODE_PORT_MAX="22399",
    )


def call(manager: ServiceProcess, path: str, key: str | None, **body: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(manager.url + path, json=body, headers=headers, timeout=30)


def test_keys_decide_who_sees_what(secured: ServiceProcess, redis_url: str) -> None:
    made = keys_cli(redis_url, "create", "--tenant", "acme", "--name", "ci")
    assert made.returncode == 0, made.stderr
    acme = made.stdout.strip()
    assert acme.startswith("msk_") and "shown once" in made.stderr
    import redis

    stored = redis.Redis.from_url(redis_url).hgetall("msagent:apikeys")
    assert acme.encode() not in b"".join(k + v for k, v in stored.items())  # only a hash is kept

    assert requests.get(secured.url + "/health", timeout=10).status_code == 200  # liveness stays open
    anonymous = call(secured, "/create_tool_service", None, tool_name="calculator")
    assert anonymous.status_code == 401 and set(anonymous.json()) == ENVELOPE_KEYS
    assert call(secured, "/create_tool_service", "msk_wrong", tool_name="calculator").status_code == 401

    # a tenant key: the tenant comes from the key
    created = call(secured, "/create_tool_service", acme, tool_name="calculator")
    assert created.status_code == 200 and created.json()["output"]["tool_node_name"] == "calculator_acme"
    other = call(secured, "/create_tool_service", acme, tool_name="calculator", tenant_id="globex")
    assert other.status_code == 403 and "acme" in other.json()["message"]
    listing = requests.get(
        secured.url + "/tools",
        params={"tenant_id": "globex"},
        timeout=10,
        headers={"Authorization": f"Bearer {acme}"},
    )
    assert listing.status_code == 403
    own = requests.get(secured.url + "/tools", headers={"Authorization": f"Bearer {acme}"}, timeout=10)
    assert list(own.json()["output"]["tools"]) == ["calculator_acme"]

    # the admin key reaches every tenant
    as_admin = requests.get(
        secured.url + "/tools",
        params={"tenant_id": "acme"},
        timeout=10,
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert list(as_admin.json()["output"]["tools"]) == ["calculator_acme"]

    # the client library sends its token
    proxy = ToolServiceProxy("calculator", {}, tenant_id="acme", manager_url=secured.url, token=acme)
    assert proxy.call({"expression": "3*3"}) == "9"
    with pytest.raises(ToolServiceError):
        ManagerClient(secured.url).list("acme")

    listed = keys_cli(redis_url, "list", "--tenant", "acme")
    assert acme[:12] in listed.stdout and acme not in listed.stdout
    revoked = keys_cli(redis_url, "revoke", acme[:12])
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout
    wait_for(
        lambda: call(secured, "/check_tool_service_status", acme, tool_name="calculator").status_code == 401,
        5,
        what="the revoked key to be refused",
    )
    ManagerClient(secured.url, token=ADMIN).remove("calculator", "acme")


def test_auth_is_on_by_default_beyond_loopback() -> None:
    from msagent_srv.web.auth import auth_required

    assert auth_required("auto", "0.0.0.0") and auth_required("auto", "10.1.2.3")
    assert not auth_required("auto", "127.0.0.1") and not auth_required("off", "0.0.0.0")
    assert auth_required("on", "127.0.0.1")


def test_assistant_keys_are_ours_and_the_model_key_travels_apart(
    assistant_factory, redis_url: str, upstream: ScriptedUpstream, tmp_path
) -> None:
    service = assistant_factory(MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN, MSAGENT_KEY_CACHE_SECONDS="1")
    acme, globex = new_key(redis_url, "acme"), new_key(redis_url, "globex")
    ask = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    assert requests.get(service.url + "/health", timeout=10).status_code == 200
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=service.url + "/v1", api_key="msk_not-a-key").chat.completions.create(**ask)
    assert refused.value.body["code"] == "invalid_api_key"  # OpenAI's envelope
    anonymous = requests.post(service.url + "/v1/chat/completions", json=ask, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_api_key"

    # our key opens the door; the model key goes upstream in its own header, ours never does
    upstream.script = ["hello acme"]
    client = openai.OpenAI(
        base_url=service.url + "/v1", api_key=acme, default_headers={"X-Upstream-Api-Key": "sk-model"}
    )
    assert client.chat.completions.create(**ask).choices[0].message.content == "hello acme"
    assert upstream.headers[-1]["Authorization"] == "Bearer sk-model"
    assert all(acme not in str(headers) for headers in upstream.headers)
    no_model_key = openai.OpenAI(base_url=service.url + "/v1", api_key=acme)
    with pytest.raises(openai.AuthenticationError, match="X-Upstream-Api-Key"):
        no_model_key.chat.completions.create(**ask)

    # tenants never share files or session history, even under the same uuid_str
    def lite(key: str, text: str, **extra: object) -> requests.Response:
        return requests.post(
            service.url + "/v1/assistants/lite",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            json={"llm_config": {"model": "m", "api_key": "sk-model"}, "uuid_str": "shared",
                  "messages": [{"role": "user", "content": text}], **extra},
        )  # fmt: skip

    upstream.script = ["noted", "no idea"]
    assert lite(acme, "my password is swordfish").status_code == 200
    assert lite(globex, "what is my password?").status_code == 200
    assert "swordfish" not in str(upstream.requests[-1]["messages"])
    assert lite(acme, "x", tenant_id="globex", use_tool_api=True).status_code == 403
    sample = tmp_path / "plan.txt"
    sample.write_text("acme's plan")
    with sample.open("rb") as handle:
        uploaded = requests.post(
            service.url + "/v1/files",
            headers={"Authorization": f"Bearer {acme}"},
            data={"uuid_str": "shared"},
            files={"file": handle},
            timeout=60,
        )
    assert uploaded.status_code == 200 and uploaded.json()["output"]["uuid_str"] == "shared"

    def listed(key: str) -> list[str]:
        reply = requests.get(
            service.url + "/v1/files",
            params={"uuid_str": "shared"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        return [f["name"] for f in reply.json()["output"]["files"]]

    assert listed(acme) == ["plan.txt"] and listed(globex) == []

    # revocation reaches the assistant within its key cache time
    assert keys_cli(redis_url, "revoke", acme[:12]).returncode == 0
    wait_for(
        lambda: requests.get(service.url + "/v1/models", headers={"Authorization": f"Bearer {acme}"},
                             timeout=10).status_code == 401,
        5,
        what="the revoked key to be refused by the assistant",
    )  # fmt: skip


def test_agent_tools_reach_a_secured_manager_with_the_callers_key(
    assistant_factory, secured: ServiceProcess, redis_url: str, upstream: ScriptedUpstream
) -> None:
    service = assistant_factory(
        MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN, TOOL_MANAGER_SERVICE_URL=secured.url
    )
    acme = new_key(redis_url, "acme")
    upstream.reset(['Action: calculator\nAction Input: {"expression": "6*7"}', "It is 42."])
    reply = requests.post(
        service.url + "/v1/assistants/lite",
        headers={"Authorization": f"Bearer {acme}"},
        timeout=120,
        json={"llm_config": {"model": "m", "api_key": "sk-model"}, "use_tool_api": True,
              "agent_config": {"tools": ["calculator"]}, "messages": [{"role": "user", "content": "6*7?"}]},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"]["answer"] == "It is 42."
    admin = ManagerClient(secured.url, token=ADMIN)
    assert "calculator_acme" in admin.list("acme")  # the node belongs to the key's tenant
    admin.remove("calculator", "acme")
