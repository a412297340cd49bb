"""The assistant's OpenAPI document: OpenAI's chat completions and models, the agent and the file API;
every error under /v1 in OpenAI's `{"error": {...}}` envelope."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..web import openapi
from ..web.openapi import Operation
from .protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ErrorResponse,
    FileRef,
    LiteAgentRequest,
    ModelList,
)

UPLOAD_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["uuid_str", "files"],
    "properties": {
        "uuid_str": {"type": "string", "minLength": 1, "maxLength": 256},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
}
UPSTREAM_ERRORS = (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)
OPERATIONS = [
    Operation("post", "/v1/chat/completions", "OpenAI-compatible chat completion, with function calling",
              body=ChatCompletionRequest, reply=ChatCompletion, streams=True, errors=UPSTREAM_ERRORS),
    Operation("get", "/v1/models", "Models this server routes", reply=ModelList, errors=(401, 403)),
    Operation("post", "/v1/assistants/lite", "Run an agent: tools, knowledge and session history",
              body=LiteAgentRequest, streams=True, errors=(*UPSTREAM_ERRORS, 501)),
    Operation("post", "/v1/files", "Upload files for retrieval (multipart)", form=UPLOAD_FORM,
              errors=(400, 401, 403, 413, 415, 501, 503)),
    Operation("get", "/v1/files", "Files of a uuid_str", query=FileRef, errors=(400, 401, 403, 503)),
    Operation("delete", "/v1/files", "Delete a file", query=FileRef, errors=(400, 401, 403, 404, 501, 503)),
]  # fmt: skip


def add_routes(app: web.Application) -> None:
    document = openapi.build_document("msagent-srv assistant", OPERATIONS, ErrorResponse)
    openapi.add_routes(app, document, "Errors under /v1 use OpenAI's <code>{error}</code> envelope.")
