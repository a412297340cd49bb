"""Manager authentication: an admin key, tenant keys (hashed in Redis, made and revoked by the CLI), the
tenant taken from the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from msagent_srv.client import ManagerClient, ToolServiceProxy
from msagent_srv.client.errors import ToolServiceError

from .helpers import ServiceProcess, wait_for

ADMIN = "admin-key-for-tests-0123456789"


def keys_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msagent_srv.cli", "keys", "--redis-url", redis_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def secured(manager_factory) -> ServiceProcess:
    return manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_AUTH="on",
        MSAGENT_ADMIN_KEY=ADMIN,
        MSAGENT_NODE_PORT_BASE="42300",
        MSAGENT_NODE_PORT_MAX="42399",
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
    assert anonymous.status_code == 401 and set(anonymous.json()) == {"request_id", "message", "output"}
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
    from msagent_srv.manager.auth import auth_required

    assert auth_required("auto", "0.0.0.0") and auth_required("auto", "10.1.2.3")
    assert not auth_required("auto", "127.0.0.1") and not auth_required("off", "0.0.0.0")
    assert auth_required("on", "127.0.0.1")
