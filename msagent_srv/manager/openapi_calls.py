"""One call of a saved document's operation for a caller: its query, headers and cookies checked, the
connection through the URL guard (netguard), a timeout and a bounded reply. Headers and cookies are never
logged."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp
from pydantic_core import to_json
from yarl import URL

from .. import netguard
from ..web.bounded import read_bounded
from ..web.errors import ApiError
from .schemas import (
    ExecuteOpenApiRequest,
)

log = logging.getLogger("msagent_srv.manager.openapi_tools")

MAX_REPLY_BYTES = 4 << 20  # an upstream's reply; larger ones are refused with 502
MAX_HEADERS = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an HTTP header or cookie name
_BAD_VALUE = re.compile(r"[\r\n\0]")
_COOKIE_VALUE = re.compile(r"^[^\x00-\x1f\x7f;,\s\"\\]{0,4096}$")
DROPPED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
        "upgrade", "expect", "proxy-authorization", "proxy-connection", "cookie", "x-forwarded-for",
        "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "forwarded",
    }
)  # fmt: skip


# -- one call ----------------------------------------------------------------------------------------------
def _scalar(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    raise ApiError(400, f"{what}: unsupported value", code="invalid_value", param=what)


def query_pairs(params: str | dict[str, Any]) -> list[tuple[str, str]]:
    if isinstance(params, str):
        if not params.strip():
            return []
        try:
            params = json.loads(params)
        except ValueError:
            raise ApiError(
                400, "params must be a JSON object", code="invalid_value", param="params"
            ) from None
        if not isinstance(params, dict):
            raise ApiError(400, "params must be a JSON object", code="invalid_value", param="params")
    pairs = []
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(name, _scalar(v, f"params.{name}")) for v in values if v is not None]
    return pairs


def outbound_headers(headers: dict[str, Any], cookies: dict[str, Any]) -> dict[str, str]:
    """The caller's headers fit to send: valid names and values only, framing and routing ones dropped,
    empty ones left out; cookies as one Cookie header."""
    if len(headers) > MAX_HEADERS or len(cookies) > MAX_HEADERS:
        raise ApiError(400, f"at most {MAX_HEADERS} headers and {MAX_HEADERS} cookies", code="invalid_value")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise ApiError(400, "a header name is not valid", code="invalid_value", param="headers")
        if value is None or name.lower() in DROPPED_HEADERS:
            continue
        text = _scalar(value, "headers")
        if _BAD_VALUE.search(text) or len(text) > 8192:
            raise ApiError(400, f"header {name} has an invalid value", code="invalid_value", param="headers")
        if text:
            out[name] = text
    crumbs = []
    for name, value in cookies.items():
        text = _scalar(value, "cookies") if value is not None else ""
        if not _TOKEN.match(name) or not _COOKIE_VALUE.match(text):
            raise ApiError(400, "a cookie name or value is not valid", code="invalid_value", param="cookies")
        crumbs.append(f"{name}={text}")
    if crumbs:
        out["Cookie"] = "; ".join(crumbs)
    return out


def _guard_refusal(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, (netguard.PrivateAddressRefused, netguard.InvalidUrl)):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


def _decode(raw: bytes, response: aiohttp.ClientResponse) -> Any:
    """The reply as JSON when it is JSON, else as text."""
    text = raw.decode(response.get_encoding() if response.charset else "utf-8", errors="replace")
    if raw.strip():
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


async def call_operation(
    guard: netguard.NetGuard, timeout: float, body: ExecuteOpenApiRequest, url: URL, method: str
) -> Any:
    headers = outbound_headers(body.headers, body.cookies)
    kwargs: dict[str, Any] = {}
    if method in BODY_METHODS and (method != "DELETE" or body.data):
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if content_type.startswith("application/x-www-form-urlencoded") and isinstance(body.data, dict):
            kwargs["data"] = [(k, _scalar(v, f"data.{k}")) for k, v in body.data.items() if v is not None]
        else:
            kwargs["data"] = to_json(body.data if body.data is not None else {})
            if not content_type:
                headers["Content-Type"] = "application/json"
    try:
        await guard.check_url(str(url))
    except asyncio.TimeoutError:
        raise ApiError(504, "looking up the API's host timed out", code="upstream_timeout") from None
    except (netguard.PrivateAddressRefused, netguard.InvalidUrl) as exc:
        raise ApiError(400, f"url refused: {exc}", code="url_refused", param="url") from None
    except OSError as exc:
        raise ApiError(502, f"the API's host does not resolve: {exc}", code="upstream_unreachable") from None
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
    try:
        async with guard.session(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
            async with session.request(method, url, headers=headers, **kwargs) as response:
                too_large = ApiError(
                    502, f"the API's reply is larger than {MAX_REPLY_BYTES / (1 << 20):g} MB",
                    code="upstream_reply_too_large",
                )  # fmt: skip
                raw = await read_bounded(response, MAX_REPLY_BYTES, too_large)
                output = _decode(raw, response)
                status = response.status
    except asyncio.TimeoutError:
        raise ApiError(504, f"the API did not answer within {timeout:g} s", code="upstream_timeout") from None
    except netguard.RedirectRefused as exc:
        raise ApiError(502, f"the API {exc}", code="upstream_redirect") from None
    except (aiohttp.ClientError, OSError) as exc:
        refusal = _guard_refusal(exc)
        if refusal is not None:
            raise ApiError(400, f"url refused: {refusal}", code="url_refused", param="url") from None
        raise ApiError(
            502, f"the API is unreachable ({exc.__class__.__name__})", code="upstream_unreachable"
        ) from None
    log.info(
        "openapi call",
        extra={"openapi_name": body.openapi_name, "method": method, "url": str(url.with_query(None)),
               "status": status},
    )  # fmt: skip
    if not 200 <= status < 300:
        detail = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        raise ApiError(502, f"the API answered {status}: {detail[:500]}", code="upstream_error")
    return output
