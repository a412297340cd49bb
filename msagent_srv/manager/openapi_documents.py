"""A saved OpenAPI 3 document read safely: validated (sizes, versions, servers, `$ref`s bounded), its
operations as tool schemas, and the operation a URL names found in it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from yarl import URL

from .. import netguard
from ..web.errors import ApiError
from .schemas import (
    OpenApiTool,
    OpenApiToolParameter,
)

MAX_DOCUMENT_BYTES = 1 << 20  # a saved document, as JSON
MAX_OPERATIONS = 256  # operations in one document
MAX_SERVERS = 32
MAX_DOCUMENTS_PER_TENANT = 100
MAX_REF_DEPTH = 16
METHODS = ("get", "post", "put", "patch", "delete")
PARAMETER_PLACES = frozenset({"path", "query", "header", "cookie"})
# never taken from the caller: framing, routing and connection handling are the client's, cookies come in
# `cookies`
_VERSION = re.compile(r"^3\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?$")
_TEMPLATE = re.compile(r"\{[^{}/]+\}")


def invalid(message: str) -> ApiError:
    return ApiError(
        400, f"not a usable OpenAPI 3 document: {message}", code="invalid_openapi", param="schema"
    )


# -- the document ----------------------------------------------------------------------------------------
def resolve(document: dict[str, Any], value: Any, depth: int = 0) -> Any:
    """`value` with a local `$ref` (`#/components/...`) followed; other references are refused."""
    while isinstance(value, dict) and isinstance(value.get("$ref"), str):
        if depth >= MAX_REF_DEPTH:
            raise invalid("$ref chain too long or circular")
        ref = value["$ref"]
        if not ref.startswith("#/"):
            raise invalid(f"only local references (#/...) are supported, not {ref[:100]!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise invalid(f"$ref {ref[:100]!r} points at nothing")
        value, depth = target, depth + 1
    return value


def _server_urls(servers: Any, where: str) -> list[str]:
    """The servers' URLs with their variables at their defaults: absolute http(s) URLs."""
    if not isinstance(servers, list) or not servers:
        raise invalid(f"{where}servers must be a non-empty list")
    if len(servers) > MAX_SERVERS:
        raise invalid(f"{where}servers: at most {MAX_SERVERS}")
    urls = []
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            raise invalid(f"{where}servers: each needs a url")
        url = server["url"]
        variables = server.get("variables") or {}
        if not isinstance(variables, dict):
            raise invalid(f"{where}servers: variables must be an object")
        for name in _TEMPLATE.findall(url):
            variable = variables.get(name[1:-1])
            if not isinstance(variable, dict) or not isinstance(variable.get("default"), str):
                raise invalid(f"server variable {name} has no default")
            url = url.replace(name, variable["default"])
        try:
            netguard.origin(url)
            parsed = URL(url)
        except (netguard.InvalidUrl, ValueError) as exc:
            raise invalid(f"server URL {url[:200]!r} is not an absolute http(s) URL: {exc}") from None
        if parsed.query_string or parsed.fragment:
            raise invalid(f"server URL {url[:200]!r} has a query or fragment")
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
            raise invalid(f"path {path[:100]!r} is not an object")
        path_servers = _server_urls(item["servers"], f"{path[:100]}: ") if "servers" in item else servers
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            if not isinstance(operation, dict):
                raise invalid(f"{method} {path[:100]} is not an object")
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
        raise invalid("must be a JSON object")
    version = document.get("openapi")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise invalid("`openapi` must be a 3.x version string (Swagger 2.0 is not supported)")
    if "info" in document and not isinstance(document["info"], dict):
        raise invalid("`info` must be an object")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise invalid("`paths` must be a non-empty object")
    for path in paths:
        if not path.startswith("/"):
            raise invalid(f"path {path[:100]!r} does not start with /")
    tools = tool_schemas(document)
    if not tools:
        raise invalid("no operation (get, post, put, patch, delete) in `paths`")
    if len(tools) > MAX_OPERATIONS:
        raise invalid(f"more than {MAX_OPERATIONS} operations")
    return document


def _parameters(document: dict[str, Any], item: dict[str, Any], operation: dict[str, Any]) -> list[Any]:
    """The operation's parameters and its path item's, the operation's winning (same name and place)."""
    found: dict[tuple[str, str], OpenApiToolParameter] = {}
    for where in (item.get("parameters", []), operation.get("parameters", [])):
        if not isinstance(where, list):
            raise invalid("`parameters` must be a list")
        for raw in where:
            parameter = resolve(document, raw)
            if (
                not isinstance(parameter, dict)
                or not isinstance(parameter.get("name"), str)
                or parameter.get("in") not in PARAMETER_PLACES
            ):
                raise invalid("each parameter needs a name and `in` (path, query, header, cookie)")
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
