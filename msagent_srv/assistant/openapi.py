"""The assistant's routes and its OpenAPI document, from one table: OpenAI's chat completions and models,
the agent and the file API (every error under /v1 in OpenAI's `{"error": {...}}` envelope), health and
metrics."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..web import openapi
from ..web.openapi import Operation
from . import anthropic_routes, embeddings_routes, files_routes, lite_routes, responses_routes, routes
from .keys import METRICS, STORE
from .protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    EmbeddingList,
    EmbeddingsRequest,
    ErrorResponse,
    FileRef,
    LiteAgentRequest,
    ModelCard,
    ModelList,
)
from .protocol_anthropic import MessageReply, MessagesRequest
from .protocol_responses import InputItemList, InputItemsQuery, Response, ResponseDeleted, ResponsesRequest

UPLOAD_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["uuid_str", "files"],
    "properties": {
        "uuid_str": {"type": "string", "minLength": 1, "maxLength": 256},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
}
UPSTREAM_ERRORS = (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)


async def health(request: web.Request) -> web.Response:
    await request.app[STORE].ping()
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return await request.app[METRICS].handle(request)


OPERATIONS = [
    Operation("post", "/v1/chat/completions", "OpenAI-compatible chat completion, with function calling",
              routes.chat_completions, body=ChatCompletionRequest, reply=ChatCompletion, streams=True,
              errors=UPSTREAM_ERRORS),
    Operation("get", "/v1/models", "Models this server serves", routes.list_models, reply=ModelList,
              errors=(401, 403)),
    Operation("get", "/v1/models/{model:.+}", "One served model", routes.retrieve_model, reply=ModelCard,
              errors=(401, 403, 404)),
    Operation("post", "/v1/embeddings", "OpenAI-compatible embeddings from the server's embedding model",
              embeddings_routes.create_embeddings, body=EmbeddingsRequest, reply=EmbeddingList,
              errors=(400, 401, 404, 501, 502)),
    Operation("post", "/v1/responses", "OpenAI Responses API, with function calling for any model",
              responses_routes.create_response, body=ResponsesRequest, reply=Response, streams=True,
              errors=(*UPSTREAM_ERRORS, 503)),
    Operation("get", "/v1/responses/{response_id}", "A stored response", responses_routes.get_response,
              reply=Response, errors=(401, 404, 503)),
    Operation("delete", "/v1/responses/{response_id}", "Delete a stored response",
              responses_routes.delete_response, reply=ResponseDeleted, errors=(401, 404, 503)),
    Operation("post", "/v1/responses/{response_id}/cancel", "Cancel a background response (none run here)",
              responses_routes.cancel_response, errors=(400, 401, 404, 503)),
    Operation("get", "/v1/responses/{response_id}/input_items", "A stored response's input items",
              responses_routes.list_input_items, query=InputItemsQuery, reply=InputItemList,
              errors=(400, 401, 404, 503)),
    Operation("post", "/v1/messages", "Anthropic Messages API, with tool use for any model",
              anthropic_routes.create_message, body=MessagesRequest, reply=MessageReply, streams=True,
              errors=UPSTREAM_ERRORS),
    Operation("post", "/v1/assistants/lite", "Run an agent: tools, knowledge and session history",
              lite_routes.assistants_lite, body=LiteAgentRequest, streams=True, errors=(*UPSTREAM_ERRORS, 501)),
    Operation("post", "/v1/files", "Upload files for retrieval (multipart)", files_routes.upload,
              form=UPLOAD_FORM, errors=(400, 401, 403, 413, 501, 503)),
    Operation("get", "/v1/files", "Files of a uuid_str", files_routes.list_files, query=FileRef,
              errors=(400, 401, 403, 503)),
    Operation("delete", "/v1/files", "Delete a file", files_routes.delete_file, query=FileRef,
              errors=(400, 401, 403, 404, 501, 503)),
    Operation("get", "/health", "Liveness: 200 while the state store answers", health, errors=(503,)),
    Operation("get", "/metrics", "Prometheus metrics", metrics, text=True, errors=()),
]  # fmt: skip


def add_routes(app: web.Application) -> None:
    openapi.mount(
        app, "msagent-srv assistant", OPERATIONS, ErrorResponse,
        "Errors under /v1 use OpenAI's <code>{error}</code> envelope.",
    )  # fmt: skip
