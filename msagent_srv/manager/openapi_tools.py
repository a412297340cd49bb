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

import json
from typing import Any

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
from .openapi_calls import call_operation, query_pairs
from .openapi_documents import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENTS_PER_TENANT,
    METHODS,
    find_operation,
    invalid,
    tool_schemas,
    validate_document,
)  # fmt: skip
from .schemas import (
    ExecuteOpenApiRequest,
    ListOpenApiQuery,
    OpenApiListOutput,
    OpenApiRef,
    OpenApiRemovedOutput,
    OpenApiSchemaRequest,
    OpenApiToolsOutput,
    SaveOpenApiRequest,
)


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
            raise invalid("schema is text but not JSON") from None
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
