"""`POST /v1/embeddings`: OpenAI's request and reply, served by the knowledge base's embedding model (the
local model in-process, or the configured embeddings API)."""

from __future__ import annotations

import base64
import struct

from aiohttp import web

from ..web.bodies import read_model
from ..web.envelopes import json_body
from ..web.errors import ApiError
from .keys import KNOWLEDGE
from .knowledge.embeddings import EmbeddingError
from .protocol import Embedding, EmbeddingList, EmbeddingsRequest, EmbeddingUsage
from .tokens import count_text


def as_base64(vector: list[float]) -> str:
    """As OpenAI sends `encoding_format: base64`: the float32 values, little-endian."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def create_embeddings(request: web.Request) -> web.Response:
    body = await read_model(request, EmbeddingsRequest)
    embedder = request.app[KNOWLEDGE].required().embedder
    if body.model and body.model != embedder.model_id:
        raise ApiError(
            404, f"model '{body.model}' is not served for embeddings here; '{embedder.model_id}' is",
            param="model", code="model_not_found",
        )  # fmt: skip
    try:
        if body.dimensions is not None and body.dimensions != (size := await embedder.dimension()):
            raise ApiError(
                400, f"model '{embedder.model_id}' makes vectors of {size} dimensions and cannot shorten them",
                param="dimensions", code="invalid_value",
            )  # fmt: skip
        vectors = await embedder.embed(body.texts)
    except EmbeddingError as exc:
        raise ApiError(502, str(exc), code="upstream_error") from None
    encode = as_base64 if body.encoding_format == "base64" else list
    tokens = sum(count_text(text) for text in body.texts)
    reply = EmbeddingList(
        data=[Embedding(index=i, embedding=encode(v)) for i, v in enumerate(vectors)],
        model=embedder.model_id,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
    return json_body(reply.model_dump())
