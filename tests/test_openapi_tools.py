"""OpenAPI tools (#12): a tenant saves an OpenAPI 3 document, reads it back (as the document or as tool
schemas) and calls its operations through our real manager, against a real HTTP API on 127.0.0.1 that
this test starts; the original's OpenapiServiceProxy does the same with its own client."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web

from .helpers import ADMIN, ENVELOPE_KEYS, ServiceProcess, free_port, new_key, run_seed

API_KEY, SESSION = "key-0123", "session-4567"


class ShopApi:
    """A small API described by an OpenAPI document: a GET with a path and a query parameter, a POST with a
    JSON body (both checking a header and a cookie), a redirect, a slow and a huge reply, and a path
    outside the document's server."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def document(self) -> dict[str, Any]:
        auth = [
            {"in": "header", "name": "X-Api-Key", "required": True, "schema": {"type": "string"}},
            {"in": "cookie", "name": "session", "required": True, "schema": {"type": "string"}},
        ]
        return {
            "openapi": "3.0.1",
            "info": {"title": "Shop", "description": "A shop of items", "version": "1"},
            "servers": [{"url": self.base + "/api"}],
            "paths": {
                "/items/{item_id}": {
                    "get": {
                        "operationId": "getItem",
                        "summary": "One item",
                        "parameters": [
                            {
                                "in": "path",
                                "name": "item_id",
                                "required": True,
                                "schema": {"type": "integer"},
                            },
                            {"in": "query", "name": "detail", "schema": {"type": "string"}},
                            *auth,
                        ],
                    }
                },
                "/items": {
                    "post": {
                        "operationId": "addItem",
                        "summary": "Add an item",
                        "parameters": auth,
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/NewItem"}}
                            },
                        },
                    }
                },
                "/redirect": {"get": {"operationId": "redirect"}},
                "/slow": {"get": {"operationId": "slow"}},
                "/huge": {"get": {"operationId": "huge"}},
            },
            "components": {
                "schemas": {
                    "NewItem": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "description": "its name"},
                            "price": {"type": "integer", "description": "its price"},
                        },
                    }
                }
            },
        }

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("X-Api-Key") == API_KEY and request.cookies.get("session") == SESSION

    async def _get_item(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        item = int(request.match_info["item_id"])
        return web.json_response({"id": item, "detail": request.query.get("detail"), "name": f"item {item}"})

    async def _add_item(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        return web.json_response({"created": await request.json(), "host": request.host})

    async def _redirect(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/admin")

    async def _slow(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"late": True})

    async def _huge(self, _request: web.Request) -> web.Response:
        return web.Response(text="x" * (5 << 20))

    async def _admin(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        return web.json_response({"secret": True})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/items/{item_id}", self._get_item)
        app.router.add_post("/api/items", self._add_item)
        app.router.add_get("/api/redirect", self._redirect)
        app.router.add_get("/api/slow", self._slow)
        app.router.add_get("/api/huge", self._huge)
        app.router.add_get("/admin", self._admin)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> ShopApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def shop() -> Iterator[ShopApi]:
    api = ShopApi().start()
    yield api
    api.stop()


@pytest.fixture
def manager(manager_factory) -> ServiceProcess:
    """Listening on loopback: callers' URLs may reach private addresses (the shop on 127.0.0.1)."""
    return manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_NODE_PORT_BASE="23400",
        MSAGENT_NODE_PORT_MAX="23449",
        MSAGENT_OPENAPI_TIMEOUT="2",
    )


def post(service: ServiceProcess, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(service.url + path, json=body, headers=headers, timeout=60)


def save(service: ServiceProcess, shop: ShopApi, name: str = "shop", **headers: str) -> requests.Response:
    return post(service, "/openapi_schema/save", {"openapi_name": name, "schema": shop.document()}, **headers)


def execute(service: ServiceProcess, **body: Any) -> requests.Response:
    return post(service, "/execute_openapi", {"openapi_name": "shop", **body})


def auth() -> dict[str, Any]:
    return {"headers": {"X-Api-Key": API_KEY}, "cookies": {"session": SESSION}}


def refused(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS and body["message"] and body["status_code"] == status
    return body


def test_save_read_and_call_both_operations(manager: ServiceProcess, shop: ShopApi) -> None:
    saved = save(manager, shop)
    assert saved.status_code == 200, saved.text
    assert [t["name"] for t in saved.json()["output"]["tools"]] == [
        "getItem",
        "addItem",
        "redirect",
        "slow",
        "huge",
    ]

    # the document itself, as the original's client reads it, and the same as tools
    document = post(manager, "/openapi_schema", {"openapi_name": "shop"}).json()["output"]
    assert document == shop.document()
    tools = post(manager, "/openapi_schema/", {"openapi_name": "shop", "format": "tools"}).json()["output"]
    get_item = tools["tools"][0]
    assert get_item["url"] == shop.base + "/api/items/{item_id}" and get_item["method"] == "GET"
    assert get_item["parameters"][:2] == [
        {"name": "item_id", "type": "integer", "description": "", "required": True, "in": "path"},
        {"name": "detail", "type": "string", "description": "", "required": False, "in": "query"},
    ]
    body_params = [p for p in tools["tools"][1]["parameters"] if p["in"] == "body"]
    assert body_params == [
        {"name": "name", "type": "string", "description": "its name", "required": True, "in": "body"},
        {"name": "price", "type": "integer", "description": "its price", "required": False, "in": "body"},
    ]
    assert requests.get(manager.url + "/openapi_schema/list", timeout=10).json()["output"] == {
        "openapi_names": ["shop"]
    }

    got = execute(manager, url=shop.base + "/api/items/7", method="GET", params={"detail": "full"}, **auth())
    assert got.status_code == 200, got.text
    assert got.json()["output"] == {"id": 7, "detail": "full", "name": "item 7"}

    # POST with a JSON body; Host and Content-Length from the caller are dropped, not sent
    headers = {
        **auth()["headers"],
        "Host": "evil.example",
        "Content-Length": "1",
        "Content-Type": "application/json",
    }
    made = execute(
        manager,
        url=shop.base + "/api/items",
        method="post",
        data={"name": "pen", "price": 3},
        headers=headers,
        cookies=auth()["cookies"],
    )
    assert made.status_code == 200, made.text
    assert made.json()["output"] == {"created": {"name": "pen", "price": 3}, "host": f"127.0.0.1:{shop.port}"}

    # without the header and cookie the API refuses: its answer is a 502 naming its status
    assert "401" in refused(execute(manager, url=shop.base + "/api/items/7"), 502)["message"]
    # headers and cookies are never logged
    assert API_KEY not in manager.log() and SESSION not in manager.log()


def test_only_the_documents_operations_are_called(manager: ServiceProcess, shop: ShopApi) -> None:
    assert save(manager, shop).status_code == 200
    # outside the document's server (its /api), on the same host
    assert refused(execute(manager, url=shop.base + "/admin", **auth()), 403)
    assert refused(execute(manager, url=shop.base + "/api/../admin", **auth()), 403)
    assert refused(execute(manager, url="http://127.0.0.2:1/api/items/1", **auth()), 403)
    # under the server, but no such operation (path or method)
    assert refused(execute(manager, url=shop.base + "/api/items/1/more", **auth()), 403)
    assert refused(execute(manager, url=shop.base + "/api/items", method="GET", **auth()), 403)
    assert all(seen["path"] != "/admin" for seen in shop.seen)
    # a redirect is not followed (it would lead to /admin)
    assert "redirect" in refused(execute(manager, url=shop.base + "/api/redirect"), 502)["message"]
    assert all(seen["path"] != "/admin" for seen in shop.seen)
    # a reply over the size cap, and one slower than MSAGENT_OPENAPI_TIMEOUT
    assert refused(execute(manager, url=shop.base + "/api/huge"), 502)
    assert refused(execute(manager, url=shop.base + "/api/slow"), 504)
    # an unknown name, bad headers and cookies, a bad method: 4xx in the envelope
    assert refused(
        post(manager, "/execute_openapi", {"openapi_name": "nope", "url": shop.base + "/api"}), 404
    )
    bad_header = {"headers": {"X-Api-Key": "a\r\nX-Injected: 1"}, "cookies": {"session": SESSION}}
    assert refused(execute(manager, url=shop.base + "/api/items/1", **bad_header), 400)
    assert refused(execute(manager, url=shop.base + "/api/items/1", cookies={"session": "a; b=c"}), 400)
    assert refused(execute(manager, url=shop.base + "/api/items/1", method="TRACE"), 400)
    assert refused(execute(manager, url="ftp://127.0.0.1/api/items/1"), 400)


def test_documents_are_validated(manager: ServiceProcess, shop: ShopApi) -> None:
    def save_doc(document: Any) -> requests.Response:
        return post(manager, "/openapi_schema/save", {"openapi_name": "bad", "schema": document})

    good = shop.document()
    for broken in (
        {**good, "openapi": "2.0"},
        {key: value for key, value in good.items() if key != "servers"},
        {**good, "servers": [{"url": "/relative"}]},
        {**good, "paths": {}},
        {**good, "paths": {"/x": {"get": {"parameters": [{"name": "a"}]}}}},
        {**good, "components": {}},  # the POST's $ref points at nothing
        "not json",
        [1, 2],
    ):
        refused(save_doc(broken), 400)
    refused(save_doc({**good, "info": {"description": "x" * (2 << 20)}}), 413)
    assert save_doc(json.dumps(good)).status_code == 200  # the document as JSON text works too
    assert (
        post(manager, "/openapi_schema/remove", {"openapi_name": "bad"}).json()["output"]["removed"] is True
    )
    assert refused(post(manager, "/openapi_schema", {"openapi_name": "bad"}), 404)


def test_tenants_see_only_their_documents(manager_factory, redis_url: str, shop: ShopApi) -> None:
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_NODE_PORT_BASE="23450",
        MSAGENT_NODE_PORT_MAX="23499",
        MSAGENT_AUTH="on",
        MSAGENT_ADMIN_KEY=ADMIN,
    )
    acme, other = new_key(redis_url, "acme"), new_key(redis_url, "other")
    assert save(manager, shop, Authorization=f"Bearer {acme}").status_code == 200
    read = post(manager, "/openapi_schema", {"openapi_name": "shop"}, Authorization=f"Bearer {acme}")
    assert read.status_code == 200 and read.json()["output"]["servers"]
    # another tenant's key: the name is not found, and naming acme is refused
    refused(post(manager, "/openapi_schema", {"openapi_name": "shop"}, Authorization=f"Bearer {other}"), 404)
    call = {"openapi_name": "shop", "url": shop.base + "/api/items/1", **auth()}
    refused(post(manager, "/execute_openapi", call, Authorization=f"Bearer {other}"), 404)
    named = {"openapi_name": "shop", "tenant_id": "acme"}
    refused(post(manager, "/openapi_schema", named, Authorization=f"Bearer {other}"), 403)
    assert post(manager, "/execute_openapi", call, Authorization=f"Bearer {acme}").json()["output"]["id"] == 1
    refused(post(manager, "/openapi_schema", {"openapi_name": "shop"}), 401)


def test_public_only_manager_refuses_a_loopback_api(manager_factory, shop: ShopApi) -> None:
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_NODE_PORT_BASE="23500",
        MSAGENT_NODE_PORT_MAX="23549",
        MSAGENT_PUBLIC_URLS_ONLY="true",
    )
    assert save(manager, shop).status_code == 200  # saving is fine: the guard acts on the call
    body = refused(execute(manager, url=shop.base + "/api/items/1", **auth()), 400)
    assert "non-public" in body["message"]
    assert not shop.seen


def test_the_originals_openapi_service_proxy(
    seed_client: str, manager: ServiceProcess, shop: ShopApi
) -> None:
    """The original's client, unmodified: it fetches the saved document by name, converts it into tools
    itself, and calls both operations through /execute_openapi."""
    assert save(manager, shop, name="shop_plugin").status_code == 200
    result = run_seed(
        seed_client,
        f"""
        import json
        from modelscope_agent.tools.base import OpenapiServiceProxy
        proxy = OpenapiServiceProxy(openapi='shop_plugin')
        got = proxy.call(
            json.dumps({{"item_id": 5, "detail": "short", "X-Api-Key": "{API_KEY}", "session": "{SESSION}"}}),
            tool_name='getItem',
        )
        made = proxy.call(
            json.dumps({{"name": "cup", "price": 2, "X-Api-Key": "{API_KEY}", "session": "{SESSION}"}}),
            tool_name='addItem',
        )
        print(json.dumps({{"tools": proxy.tool_names, "got": got, "made": made}}))
        """,
        TOOL_MANAGER_SERVICE_URL=manager.url,
    )
    assert {"getItem", "addItem"} <= set(result["tools"])
    assert result["got"] == {"id": 5, "detail": "short", "name": "item 5"}
    assert result["made"]["created"] == {"name": "cup", "price": 2}
