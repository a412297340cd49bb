"""Stored Responses API responses, per tenant, each kept `ttl` seconds. A record holds the response as
answered, its input items and its turn as chat messages; a conversation is rebuilt by following
`previous_response_id` back."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from pydantic_core import to_json

from . import keys
from .connection import translate_errors
from .errors import NotFound

MAX_CHAIN = 1000  # previous_response_id links followed at most (a cycle cannot be made, but be sure)


class StoredResponse(BaseModel):
    response: dict[str, Any]  # the Response object as it was answered
    input_items: list[dict[str, Any]] = Field(default_factory=list)  # this turn's input, with item ids
    messages: list[dict[str, Any]] = Field(default_factory=list)  # this turn as chat messages: input, output
    previous_response_id: str | None = None


def encode_record(
    response: bytes, input_items: list[dict[str, Any]], messages: list[Any], previous_response_id: str | None
) -> bytes:
    """A StoredResponse as JSON, the response spliced in as it is serialised already (for its reply)."""
    return (
        b'{"response":' + response + b',"input_items":' + to_json(input_items)
        + b',"messages":' + to_json(messages, exclude_none=True)
        + b',"previous_response_id":' + to_json(previous_response_id) + b"}"
    )  # fmt: skip


class ResponseStore:
    def __init__(self, redis: aioredis.Redis, ttl: int) -> None:
        self._redis, self.ttl = redis, ttl

    @translate_errors
    async def put(self, tenant: str | None, response_id: str, record: bytes) -> None:
        """`record`: a StoredResponse's JSON (`encode_record`)."""
        await self._redis.set(keys.response(tenant, response_id), record, ex=self.ttl)

    @translate_errors
    async def get(self, tenant: str | None, response_id: str) -> StoredResponse:
        """Raises NotFound for an unknown id, an expired one, or another tenant's."""
        raw = await self._redis.get(keys.response(tenant, response_id))
        if raw is None:
            raise NotFound(f"no response with id '{response_id}'")
        return StoredResponse.model_validate_json(raw)

    @translate_errors
    async def delete(self, tenant: str | None, response_id: str) -> None:
        if not await self._redis.delete(keys.response(tenant, response_id)):
            raise NotFound(f"no response with id '{response_id}'")

    async def conversation(self, tenant: str | None, response_id: str) -> list[dict[str, Any]]:
        """The chat messages of every turn up to and including `response_id`, oldest first."""
        turns: list[list[dict[str, Any]]] = []
        current: str | None = response_id
        while current is not None and len(turns) < MAX_CHAIN:
            record = await self.get(tenant, current)
            turns.append(record.messages)
            current = record.previous_response_id
        return [message for turn in reversed(turns) for message in turn]
