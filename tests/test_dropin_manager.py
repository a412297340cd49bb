"""The manager as a drop-in for the original's: its documented paths (with trailing slashes), its
reachability check, its idempotent removal, its bare auth header, JSON5 params, failure reasons."""

from __future__ import annotations

import requests

from .helpers import ADMIN, ENVELOPE_KEYS, ServiceProcess, new_key, run_seed, wait_for
from .service_calls import RENEW, create_running, post

RENEW_PARAMS = {"instance_id": 123, "period": "mon"}


def test_every_path_answers_with_and_without_its_trailing_slash(manager: ServiceProcess) -> None:
    for slash in ("", "/"):
        tenant = "slash" if slash else "plain"
        created = requests.post(
            manager.url + "/create_tool_service" + slash,
            json={"tool_name": "RenewInstance", "tenant_id": tenant}, timeout=60,
        )  # fmt: skip
        assert created.status_code == 200 and created.json()["output"]["status"] in ("pending", "running")

        def running(tenant: str = tenant, slash: str = slash) -> bool:
            reply = requests.get(
                manager.url + "/check_tool_service_status" + slash,
                params={"tool_name": "RenewInstance", "tenant_id": tenant}, timeout=30,
            )  # fmt: skip
            return reply.json()["output"]["status"] == "running"

        wait_for(running, 120, what=f"the node made at /create_tool_service{slash}")
        ref = {"tool_name": "RenewInstance", "tenant_id": tenant}
        info = requests.post(manager.url + "/tool_info" + slash, json=ref, timeout=30).json()
        assert info["output"]["name"] == "RenewInstance"
        ran = requests.post(
            manager.url + "/execute_tool" + slash, json={**ref, "params": RENEW_PARAMS}, timeout=60
        )
        assert ran.json()["output"] == RENEW
        listed = requests.get(manager.url + "/tools" + slash, params={"tenant_id": tenant}, timeout=30).json()
        assert set(listed) == ENVELOPE_KEYS and listed["status_code"] == 200
        assert listed["output"] == {"tools": {f"RenewInstance_{tenant}": "running"}}
        removed = requests.post(manager.url + "/remove_tool" + slash, params=ref, timeout=60).json()
        assert removed["output"]["status"] == "exited"


def test_reachability_removal_and_failure_reasons_as_the_original(manager: ServiceProcess) -> None:
    for method in (requests.get, requests.post):
        hello = method(manager.url + "/", timeout=10)
        assert hello.status_code == 200 and hello.json()["output"] == {"message": "Hello World"}
    # removing what never existed, or twice, answers exited; the record says exited; re-creating works
    never = post(manager, "/remove_tool", tool_name="calculator", tenant_id="ghost")
    assert never.status_code == 200 and never.json()["output"] == {
        "tool_node_name": "calculator_ghost", "status": "exited"
    }  # fmt: skip
    create_running(manager, "calculator", "again")
    for _ in range(2):
        assert (
            post(manager, "/remove_tool", tool_name="calculator", tenant_id="again").json()["output"][
                "status"
            ]
            == "exited"
        )
    status = post(manager, "/check_tool_service_status", tool_name="calculator", tenant_id="again").json()
    assert status["output"]["status"] == "exited"
    create_running(manager, "calculator", "again")
    # params as JSON5, as the original's clients send them
    create_running(manager, "RenewInstance", "json5")
    ran = post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="json5",
               params="{'instance_id': 123, 'period': 'mon',}")  # fmt: skip
    assert ran.status_code == 200 and ran.json()["output"] == RENEW
    # a node that fails says why in `message` as well as in `output.error`
    post(manager, "/create_tool_service", tool_name="calculator", tenant_id="broken",
         tool_image="msagent-srv-node:no-such-image")  # fmt: skip
    wait_for(
        lambda: post(manager, "/check_tool_service_status", tool_name="calculator", tenant_id="broken").json()[
            "output"
        ]["status"] == "failed",
        120, what="the node without an image to fail",
    )  # fmt: skip
    failed = post(manager, "/check_tool_service_status", tool_name="calculator", tenant_id="broken").json()
    assert failed["message"] and failed["message"] == failed["output"]["error"]


def test_the_originals_bare_auth_header_and_user_token(
    manager_factory, node_image: str, redis_url: str, seed_client: str
) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN)
    key = new_key(redis_url, "default")
    hello = requests.get(manager.url + "/", timeout=10)  # reachability needs no key
    assert hello.status_code == 200
    empty = requests.get(manager.url + "/tools", headers={"Authorization": ""}, timeout=10)
    assert empty.status_code == 401  # an empty header is no key
    bare = requests.get(manager.url + "/tools", headers={"Authorization": key}, timeout=10)
    assert bare.status_code == 200  # the original's TOOL_MANAGER_AUTH: the key without "Bearer"
    # the original's client, its key in TOOL_MANAGER_AUTH and a user token in its own header
    result = run_seed(
        seed_client,
        """
        import json
        from modelscope_agent.tools.base import ToolServiceProxy
        tool = ToolServiceProxy('RenewInstance', {'test': 'xxx'}, user_token='user-token-123')
        print(json.dumps({"result": tool.call("{\\"instance_id\\": 123, \\"period\\": \\"mon\\"}")}))
        """,
        TOOL_MANAGER_SERVICE_URL=manager.url,
        TOOL_MANAGER_AUTH=key,
    )
    assert result["result"] == RENEW
    assert "user-token-123" not in manager.log() and key not in manager.log()
