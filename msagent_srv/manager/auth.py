"""Who is calling the manager: the admin (any tenant) or a tenant (its own tools only, whatever the
request body says). Off only by explicit configuration, or when the manager listens on loopback only."""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from ..web.errors import ApiError
from .keys import API_KEYS

OPEN_PATHS = frozenset({"/health", "/docs", "/openapi.json"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
ADMIN = object()  # request["caller"] for the admin key

M = TypeVar("M")


def auth_required(mode: str, host: str) -> bool:
    return mode == "on" or (mode == "auto" and host not in LOOPBACK)


def auth_middleware(admin_key: str | None) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise ApiError(
                401,
                "this manager requires an API key: send Authorization: Bearer KEY",
                code="missing_api_key",
            )
        if admin_key and hmac.compare_digest(token, admin_key):
            request["caller"] = ADMIN
        else:
            tenant = await request.app[API_KEYS].tenant_of(token)
            if tenant is None:
                raise ApiError(401, "unknown or revoked API key", code="invalid_api_key")
            request["caller"] = tenant
        return await handler(request)

    return middleware


def scope(request: web.Request, body: M) -> M:
    """The request with its tenant taken from the caller's key: a tenant key may name only its own tenant."""
    caller = request.get("caller")
    if caller is None or caller is ADMIN:
        return body
    named = getattr(body, "tenant_id", None)
    if "tenant_id" in getattr(body, "model_fields_set", set()) and named != caller:
        raise ApiError(403, f"this key belongs to tenant {caller!r}, not {named!r}", code="wrong_tenant")
    return body.model_copy(update={"tenant_id": caller})  # type: ignore[attr-defined]
