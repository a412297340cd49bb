"""Every route a service serves is in its OpenAPI document, and the document names nothing it does not
serve: both come from one table."""

from __future__ import annotations

import pytest
from aiohttp import web

from msagent_srv.settings import Settings

SELF_DESCRIBING = {("GET", "/openapi.json"), ("GET", "/docs")}


def served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "OPTIONS") and route.resource is not None
    }


def documented(app: web.Application) -> set[tuple[str, str]]:
    from msagent_srv.assistant.openapi import OPERATIONS

    return {(op.method.upper(), op.path) for op in OPERATIONS}


@pytest.mark.parametrize("service", ["assistant"])
def test_served_routes_are_the_documented_ones(service: str) -> None:
    from msagent_srv.assistant.app import create_app

    app = create_app(Settings.load({}))
    assert served(app) - SELF_DESCRIBING == documented(app)
