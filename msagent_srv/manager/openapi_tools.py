"""OpenAPI tools: a tenant saves an OpenAPI 3 document under a name; its operations are tools, and one
operation is called for the caller through the URL guard (netguard).

- `POST /openapi_schema/save` `{openapi_name, tenant_id, schema}` validates and stores the document;
- `POST /openapi_schema` `{openapi_name}` answers the document itself in `output` (what the original's
  OpenapiServiceProxy converts into tools), or with `format: "tools"` its operations as tool schemas;
- `POST /execute_openapi` `{openapi_name, url, method, params, data, headers, cookies}` calls one operation of
  the saved document: the URL must be one of its operations under one of its servers, the connection goes
  through the guard (public addresses only unless the rule allows private ones, redirects not followed),
  with MSAGENT_OPENAPI_TIMEOUT and a reply of MAX_REPLY_BYTES at most; `output` is the upstream's JSON (or
  text). Headers and cookies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from pydantic_core import to_json
from yarl import URL

from .. import netguard
from ..store import NotFound
from ..store.openapi_docs import OpenApiDocument
from ..web.auth import private_urls_allowed, scope
from ..web.bodies import read_model, validation_error
from ..web.envelopes import envelope
from ..web.errors import ApiError
from .keys import NODES, SETTINGS
from .schemas import (
    ExecuteOpenApiRequest,
    ListOpenApiQuery,
    OpenApiListOutput,
    OpenApiRef,
    OpenApiRemovedOutput,
    OpenApiSchemaRequest,
    OpenApiTool,
    OpenApiToolParameter,
    OpenApiToolsOutput,
    SaveOpenApiRequest,
)

log = logging.getLogger("msagent_srv.manager.openapi_tools")

MAX_DOCUMENT_BYTES = 1 << 20  # a saved document, as JSON
MAX_OPERATIONS = 256  # operations in one document
MAX_SERVERS = 32
MAX_DOCUMENTS_PER_TENANT = 100
MAX_REPLY_BYTES = 4 << 20  # an upstream's reply; larger ones are refused with 502
MAX_HEADERS = 64
MAX_REF_DEPTH = 16
METHODS = ("get", "post", "put", "patch", "delete")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PARAMETER_PLACES = frozenset({"path", "query", "header", "cookie"})
# never taken from the caller: framing, routing and connection handling are the client's, cookies come in
# `cookies`
DROPPED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
        "upgrade", "expect", "proxy-authorization", "proxy-connection", "cookie", "x-forwarded-for",
        "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "forwarded",
    }
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an HTTP header or cookie name
_BAD_VALUE = re.compile(r"[\r\n\0]")
_COOKIE_VALUE = re.compile(r"^[^\x00-\x1f\x7f;,\s\"\\]{0,4096}$")
_VERSION = re.compile(r"^3\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?$")
_TEMPLATE = re.compile(r"\{[^{}/]+\}")


def _invalid(message: str) -> ApiError:
    return ApiError(
        400, f"not a usable OpenAPI 3 document: {message}", code="invalid_openapi", param="schema"
    )


# -- the document ----------------------------------------------------------------------------------------
def resolve(document: dict[str, Any], value: Any, depth: int = 0) -> Any:
    """`value` with a local `$ref` (`#/components/...`) followed; other references are refused."""
    while isinstance(value, dict) and isinstance(value.get("$ref"), str):
        if depth >= MAX_REF_DEPTH:
            raise _invalid("$ref chain too long or circular")
        ref = value["$ref"]
        if not ref.startswith("#/"):
            raise _invalid(f"only local references (#/...) are supported, not {ref[:100]!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise _invalid(f"$ref {ref[:100]!r} points at nothing")
        value, depth = target, depth + 1
    return value


def _server_urls(servers: Any, where: str) -> list[str]:
    """The servers' URLs with their variables at their defaults: absolute http(s) URLs."""
    if not isinstance(servers, list) or not servers:
        raise _invalid(f"{where}servers must be a non-empty list")
    if len(servers) > MAX_SERVERS:
        raise _invalid(f"{where}servers: at most {MAX_SERVERS}")
    urls = []
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            raise _invalid(f"{where}servers: each needs a url")
        url = server["url"]
        variables = server.get("variables") or {}
        if not isinstance(variables, dict):
            raise _invalid(f"{where}servers: variables must be an object")
        for name in _TEMPLATE.findall(url):
            variable = variables.get(name[1:-1])
            if not isinstance(variable, dict) or not isinstance(variable.get("default"), str):
                raise _invalid(f"server variable {name} has no default")
            url = url.replace(name, variable["default"])
        try:
            netguard.origin(url)
            parsed = URL(url)
        except (netguard.InvalidUrl, ValueError) as exc:
            raise _invalid(f"server URL {url[:200]!r} is not an absolute http(s) URL: {exc}") from None
        if parsed.query_string or parsed.fragment:
            raise _invalid(f"server URL {url[:200]!r} has a query or fragment")
        urls.append(url.rstrip("/"))
    return urls


def operations(
    document: dict[str, Any],
) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any], list[str]]]:
    """(path, method, path item, operation, server URLs) of each operation, in document order."""
    servers = _server_urls(document.get("servers"), "")
    for path, item in document["paths"].items():
        item = resolve(document, item)
        if not isinstance(item, dict):
            raise _invalid(f"path {path[:100]!r} is not an object")
        path_servers = _server_urls(item["servers"], f"{path[:100]}: ") if "servers" in item else servers
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            if not isinstance(operation, dict):
                raise _invalid(f"{method} {path[:100]} is not an object")
            op_servers = (
                _server_urls(operation["servers"], f"{method} {path[:100]}: ")
                if "servers" in operation
                else path_servers
            )
            yield path, method, item, operation, op_servers


def validate_document(document: Any) -> dict[str, Any]:
    """The document, checked: `openapi` 3.x, `servers` with absolute http(s) URLs, `paths` with at least one
    operation (get, post, put, patch, delete), parameters with a name and a place, local references that
    resolve; and the tools it makes (400 naming what is wrong)."""
    if not isinstance(document, dict):
        raise _invalid("must be a JSON object")
    version = document.get("openapi")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise _invalid("`openapi` must be a 3.x version string (Swagger 2.0 is not supported)")
    if "info" in document and not isinstance(document["info"], dict):
        raise _invalid("`info` must be an object")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise _invalid("`paths` must be a non-empty object")
    for path in paths:
        if not path.startswith("/"):
            raise _invalid(f"path {path[:100]!r} does not start with /")
    tools = tool_schemas(document)
    if not tools:
        raise _invalid("no operation (get, post, put, patch, delete) in `paths`")
    if len(tools) > MAX_OPERATIONS:
        raise _invalid(f"more than {MAX_OPERATIONS} operations")
    return document


def _parameters(document: dict[str, Any], item: dict[str, Any], operation: dict[str, Any]) -> list[Any]:
    """The operation's parameters and its path item's, the operation's winning (same name and place)."""
    found: dict[tuple[str, str], OpenApiToolParameter] = {}
    for where in (item.get("parameters", []), operation.get("parameters", [])):
        if not isinstance(where, list):
            raise _invalid("`parameters` must be a list")
        for raw in where:
            parameter = resolve(document, raw)
            if (
                not isinstance(parameter, dict)
                or not isinstance(parameter.get("name"), str)
                or parameter.get("in") not in PARAMETER_PLACES
            ):
                raise _invalid("each parameter needs a name and `in` (path, query, header, cookie)")
            schema = resolve(document, parameter.get("schema") or {})
            found[(parameter["name"], parameter["in"])] = _parameter(
                parameter["name"],
                parameter["in"],
                schema if isinstance(schema, dict) else {},
                parameter.get("description"),
                bool(parameter.get("required")) or parameter["in"] == "path",
            )
    return list(found.values())


def _parameter(name: str, place: str, schema: dict[str, Any], description: Any, required: bool) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):  # 3.1: ["string", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    enum = schema.get("enum")
    return OpenApiToolParameter(
        name=name,
        type=kind if isinstance(kind, str) else "string",
        description=str(description or schema.get("description") or ""),
        required=required,
        location=place,  # type: ignore[arg-type]
        enum=enum if isinstance(enum, list) else None,
    )


def _body_parameters(document: dict[str, Any], operation: dict[str, Any]) -> list[OpenApiToolParameter]:
    """The top-level properties of a JSON request body's object schema, as `in: body` parameters."""
    body = resolve(document, operation.get("requestBody"))
    if not isinstance(body, dict):
        return []
    content = body.get("content")
    if not isinstance(content, dict) or not content:
        return []
    media = next((c for t, c in content.items() if "json" in t), next(iter(content.values())))
    schema = resolve(document, media.get("schema") if isinstance(media, dict) else None)
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    parameters = []
    for name, prop in schema["properties"].items():
        prop = resolve(document, prop)
        prop = prop if isinstance(prop, dict) else {}
        parameters.append(_parameter(name, "body", prop, prop.get("description"), name in required))
    return parameters


def _tool_name(path: str, method: str, operation: dict[str, Any], taken: set[str]) -> str:
    wanted = operation.get("operationId")
    if not isinstance(wanted, str) or not wanted.strip():
        wanted = re.sub(r"[^A-Za-z0-9_-]", "", path.replace("/", "_")).strip("_") + f"_{method}"
    name, n = wanted[:64], 2
    while name in taken:
        name, n = f"{wanted[:60]}_{n}", n + 1
    taken.add(name)
    return name


def tool_schemas(document: dict[str, Any]) -> list[OpenApiTool]:
    """Each operation as a tool: name (operationId, else path and method), description, the URL (first
    server + path) and method, and its parameters with their place (`in`: path, query, header, cookie, body)."""
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    fallback = str(info.get("description") or info.get("title") or "")
    taken: set[str] = set()
    tools = []
    for path, method, item, operation, servers in operations(document):
        description = operation.get("description") or operation.get("summary") or fallback
        tools.append(
            OpenApiTool(
                name=_tool_name(path, method, operation, taken),
                description=str(description),
                url=servers[0] + path,
                method=method.upper(),
                parameters=_parameters(document, item, operation) + _body_parameters(document, operation),
            )
        )
    return tools


def _path_pattern(base: str, template: str) -> re.Pattern[str]:
    literal = [re.escape(part) for part in _TEMPLATE.split(template)]
    return re.compile("^" + re.escape(URL(base).path.rstrip("/")) + "[^/]+".join(literal) + "/?$")


def find_operation(document: dict[str, Any], method: str, url: URL) -> str:
    """The path template of the document's operation that `method url` calls; 403 when none does (the URL
    is outside the document's servers, or no operation has that path and method)."""
    if any(unquote(segment) in (".", "..") for segment in url.raw_path.split("/")):
        raise ApiError(400, "the URL's path has dot segments", code="invalid_url", param="url")
    _, host, port = netguard.origin(str(url))
    outside = True
    for path, op_method, _item, _operation, servers in operations(document):
        for base in servers:
            scheme, base_host, base_port = netguard.origin(base)
            if (scheme, base_host, base_port) != (url.scheme, host, port):
                continue
            if not url.path.startswith(URL(base).path.rstrip("/") + "/"):
                continue
            outside = False
            if op_method.upper() == method and _path_pattern(base, path).match(url.path):
                return path
    if outside:
        raise ApiError(
            403, "the URL is not under any of the document's servers", code="url_not_in_document", param="url"
        )
    raise ApiError(
        403, f"the document has no {method} operation at {url.path[:200]}", code="operation_not_in_document"
    )


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


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    too_large = ApiError(
        502, f"the API's reply is larger than {limit / (1 << 20):g} MB", code="upstream_reply_too_large"
    )
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


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
                raw = await _read_bounded(response, MAX_REPLY_BYTES)
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


# -- handlers ----------------------------------------------------------------------------------------------
async def _saved(request: web.Request, tenant_id: str, name: str) -> OpenApiDocument:
    return await request.app[NODES].store.openapi_docs.get(tenant_id, name)


async def save_openapi(request: web.Request) -> web.Response:
    body = scope(request, await read_model(request, SaveOpenApiRequest))
    document: Any = body.document
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise _invalid("schema is text but not JSON") from None
    size = len(to_json(document))
    if size > MAX_DOCUMENT_BYTES:
        raise ApiError(
            413,
            f"the document is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit",
            code="body_too_large",
        )
    validate_document(document)
    record = OpenApiDocument(name=body.openapi_name, tenant_id=body.tenant_id, document=document)
    await request.app[NODES].store.openapi_docs.put(record, MAX_DOCUMENTS_PER_TENANT)
    output = OpenApiToolsOutput(openapi_name=body.openapi_name, tools=tool_schemas(document))
    return envelope(request, output.model_dump(mode="json", by_alias=True, exclude_none=True))


async def openapi_schema(request: web.Request) -> web.Response:
    body = scope(request, await read_model(request, OpenApiSchemaRequest, merge_query=True))
    record = await _saved(request, body.tenant_id, body.openapi_name)
    if body.format == "openapi":
        return envelope(request, record.document)
    output = OpenApiToolsOutput(openapi_name=body.openapi_name, tools=tool_schemas(record.document))
    return envelope(request, output.model_dump(mode="json", by_alias=True, exclude_none=True))


async def list_openapi(request: web.Request) -> web.Response:
    try:
        query = scope(request, ListOpenApiQuery.model_validate(dict(request.query)))
    except ValueError as exc:
        raise validation_error(exc) from None  # type: ignore[arg-type]
    names = await request.app[NODES].store.openapi_docs.names(query.tenant_id)
    return envelope(request, OpenApiListOutput(openapi_names=names).model_dump(mode="json"))


async def remove_openapi(request: web.Request) -> web.Response:
    body = scope(request, await read_model(request, OpenApiRef, merge_query=True))
    removed = await request.app[NODES].store.openapi_docs.delete(body.tenant_id, body.openapi_name)
    return envelope(
        request, OpenApiRemovedOutput(openapi_name=body.openapi_name, removed=removed).model_dump()
    )


async def execute_openapi(request: web.Request) -> web.Response:
    body = scope(request, await read_model(request, ExecuteOpenApiRequest))
    method = body.method.upper()
    if method.lower() not in METHODS:
        raise ApiError(400, f"method must be one of {', '.join(m.upper() for m in METHODS)}", param="method")
    try:
        netguard.origin(body.url)
        url = URL(body.url.strip()).with_fragment(None)
    except (netguard.InvalidUrl, ValueError) as exc:
        raise ApiError(400, f"url: {exc}", code="invalid_url", param="url") from None
    try:
        record = await _saved(request, body.tenant_id, body.openapi_name)
    except NotFound:
        raise ApiError(404, f"no OpenAPI document named {body.openapi_name!r}", code="not_found") from None
    find_operation(record.document, method, url)
    url = url.extend_query(query_pairs(body.params)) if body.params else url
    settings = request.app[SETTINGS]
    guard = netguard.NetGuard(allow_private=private_urls_allowed(settings))
    output = await call_operation(guard, settings.openapi_timeout, body, url, method)
    return envelope(request, output)
