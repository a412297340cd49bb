"""Request ids, access logs and the translation of every failure into a clean error envelope."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from ..ids import random_hex
from .envelopes import REQUEST_ID_HEADER
from .errors import ApiError

log = logging.getLogger("msagent_srv.http")

Renderer = Callable[[web.Request, ApiError], web.Response]


KnownErrors = Mapping[type[BaseException], tuple[int, str]]


def _from_exception(exc: BaseException, known: KnownErrors) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    for kind in type(exc).__mro__:  # the components' errors, by the table the app was given
        if kind in known:
            status, code = known[kind]
            return ApiError(status, str(exc), code=code)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return ApiError(exc.status, exc.reason, code=f"http_{exc.status}")
    return None


class RequestObserver(Protocol):
    def request_started(self) -> None: ...

    def request_ended(self) -> None: ...

    def observe_request(self, request: web.Request, status: int, seconds: float) -> None: ...


def error_middleware(
    choose: Callable[[web.Request], Renderer],
    observer: RequestObserver | None = None,
    known: KnownErrors | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Every error leaves as the envelope `choose(request)` renders: ApiErrors as they say, the errors in
    `known` with their status; unexpected ones as a 500 without a traceback (logged here with one)."""
    known = known or {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if observer is None:
            return await _answer(request, handler, choose, None, known)
        observer.request_started()
        try:  # in flight until the handler is done, however it ends (a cancelled stream too)
            return await _answer(request, handler, choose, observer, known)
        finally:
            observer.request_ended()

    return middleware


async def _answer(
    request: web.Request,
    handler: Handler,
    choose: Callable[[web.Request], Renderer],
    observer: RequestObserver | None,
    known: KnownErrors,
) -> web.StreamResponse:
    request["request_id"] = request.headers.get(REQUEST_ID_HEADER) or random_hex(16)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except Exception as exc:
        error = _from_exception(exc, known)
        if error is None:
            log.exception("unhandled error", extra={"request_id": request["request_id"]})
            error = ApiError(500, "internal server error", code="internal_error")
        response = choose(request)(request, error)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request["request_id"]
    if observer is not None:
        observer.observe_request(request, response.status, time.perf_counter() - started)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={"request_id": request["request_id"], "ms": (time.perf_counter() - started) * 1e3},
        )
    return response
