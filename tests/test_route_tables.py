"""Every route a service serves is in its OpenAPI document, and the document names nothing it does not
serve: both come from one table."""

from __future__ import annotations

import asyncio
import importlib
import json
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from msagent_srv.settings import Settings

SELF_DESCRIBING = {("GET", "/openapi.json"), ("GET", "/docs")}


def served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "OPTIONS") and route.resource is not None
    }


@pytest.mark.parametrize("service", ["assistant", "manager"])
def test_served_routes_are_the_documented_ones(service: str) -> None:
    app = importlib.import_module(f"msagent_srv.{service}.app").create_app(Settings.load({}))
    table = importlib.import_module(f"msagent_srv.{service}.openapi").OPERATIONS
    document = {(m.upper(), p) for p, ops in _document(app)["paths"].items() for m in ops}
    assert (
        served(app) - SELF_DESCRIBING
        == document
        == {(op.method.upper(), re.sub(r"\{(\w+):[^{}]+\}", r"{\1}", p)) for op in table for p in op.paths}
    )


def _document(app: web.Application) -> dict:
    """The document the service serves at /openapi.json (its own handler, called directly)."""
    route = next(r for r in app.router.routes() if r.resource and r.resource.canonical == "/openapi.json")
    reply = asyncio.run(route.handler(make_mocked_request("GET", "/openapi.json", app=app)))
    return json.loads(reply.body)
