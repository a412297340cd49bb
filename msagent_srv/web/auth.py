"""Who is calling a service: the admin (every tenant) or a tenant (its own tools, files and sessions only,
whatever the request body says). One tenant key works on the manager and the assistant alike. Off only by
explicit configuration, or when the service listens on loopback only."""

from __future__ import annotations

import hmac
import time
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from ..identity import Space
from ..settings import Settings
from ..store.api_keys import ApiKeys
from .errors import ApiError

API_KEYS = web.AppKey("api_keys", ApiKeys)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
ADMIN = "\0admin"  # request["caller"] for the admin key; no tenant name can contain NUL

M = TypeVar("M")


def auth_required(mode: str, host: str) -> bool:
    return mode == "on" or (mode == "auto" and host not in LOOPBACK)


def private_urls_allowed(settings: Settings) -> bool:
    """Callers' URLs may reach private addresses: by the operator's choice, or when the service listens on
    loopback only (the rule that also leaves API keys off) and the operator did not ask for public only."""
    return settings.allow_private_urls or (settings.host in LOOPBACK and not settings.public_urls_only)


class KeyChecker:
    """Resolves a presented key to its caller. Known keys are remembered for `cache_seconds` so the hot
    path skips Redis; a revoked key therefore stops working within that time (0: at once)."""

    def __init__(self, admin_key: str | None, cache_seconds: float, cache_size: int = 10_000) -> None:
        self.admin_key, self.cache_seconds, self.cache_size = admin_key, cache_seconds, cache_size
        self._known: dict[str, tuple[str, float]] = {}

    async def caller(self, token: str, api_keys: ApiKeys) -> str | None:
        if self.admin_key and hmac.compare_digest(token, self.admin_key):
            return ADMIN
        now = time.monotonic()
        known = self._known.get(token)
        if known is not None and known[1] > now:
            return known[0]
        tenant = await api_keys.tenant_of(token)
        if tenant is not None and self.cache_seconds > 0:
            if len(self._known) >= self.cache_size:
                self._known.clear()  # rare; a bounded map matters more than a perfect one
            self._known[token] = (tenant, now + self.cache_seconds)
        return tenant


def bearer_token(request: web.Request) -> str | None:
    """The key in `Authorization: Bearer KEY`, or a bare `Authorization: KEY` as the original servers'
    clients send it (TOOL_MANAGER_AUTH); an empty header is no key."""
    value = request.headers.get("Authorization", "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    return value if value and not token else None


def presented_key(request: web.Request) -> str | None:
    """The caller's key: the Authorization header, else `x-api-key` (as Anthropic's clients send it)."""
    return bearer_token(request) or request.headers.get("x-api-key", "").strip() or None


def auth_middleware(checker: KeyChecker, open_paths: frozenset[str], service: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        token = presented_key(request)
        if not token:
            raise ApiError(
                401,
                f"this {service} requires an API key: send Authorization: Bearer KEY (or x-api-key: KEY)",
                code="missing_api_key",
            )
        caller = await checker.caller(token, request.app[API_KEYS])
        if caller is None:
            raise ApiError(401, "unknown or revoked API key", code="invalid_api_key")
        request["caller"] = caller
        return await handler(request)

    return middleware


def tenant_of_caller(request: web.Request) -> str | None:
    """The tenant whose key made the request; None for the admin key or when keys are off."""
    caller = request.get("caller")
    return None if caller is None or caller == ADMIN else caller


def keys_checked(request: web.Request) -> bool:
    """Whether the service checks API keys (so the Authorization header is ours, not an upstream's)."""
    return "caller" in request


def checked_key(request: web.Request) -> str | None:
    """The caller's key when this service checked it (it opens the same doors on the other service)."""
    return presented_key(request) if keys_checked(request) else None


def scope(request: web.Request, body: M) -> M:
    """The request with its tenant taken from the caller's key: a tenant key may name only its own tenant."""
    tenant = tenant_of_caller(request)
    if tenant is None:
        return body
    named = getattr(body, "tenant_id", None)
    if "tenant_id" in getattr(body, "model_fields_set", set()) and named != tenant:
        raise ApiError(403, f"this key belongs to tenant {tenant!r}, not {named!r}", code="wrong_tenant")
    return body.model_copy(update={"tenant_id": tenant})  # type: ignore[attr-defined]


def space_of(request: web.Request, uuid_str: str) -> Space:
    """Where the files, session history and knowledge a caller names `uuid_str` live: under its tenant
    when a tenant key calls, so two tenants using the same uuid_str never meet."""
    return Space(tenant_of_caller(request), uuid_str)
