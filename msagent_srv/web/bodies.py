"""Parsing request bodies into pydantic models with errors that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)


def validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    message = f"invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
    return ApiError(400, message, param=param, code="invalid_value")


async def read_body(request: web.Request) -> bytes:
    """The body, refused with a 413 before a byte is read when its declared length is over the limit."""
    if not request.can_read_body:
        return b""
    length, limit = request.content_length, request.client_max_size
    if length is not None and limit and length > limit:
        raise ApiError(
            413, f"request body of {length} bytes is over the {limit}-byte limit", code="body_too_large"
        )
    return await request.read()


async def read_json(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        return from_json(raw)
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None


async def read_model(request: web.Request, model: type[M], *, merge_query: bool = False) -> M:
    """The JSON body as `model`; with `merge_query`, query parameters fill fields the body leaves out."""
    if not merge_query:  # straight from the bytes: no intermediate dict
        raw = await read_body(request)
        try:
            return model.model_validate_json(raw if raw.strip() else b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":
                raise ApiError(
                    400, f"request body is not valid JSON: {first['msg']}", code="invalid_json"
                ) from None
            if first["type"] == "model_type" and not first.get("loc"):
                raise ApiError(400, "request body must be a JSON object", code="invalid_json") from None
            raise validation_error(exc) from None
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    if merge_query:
        data = {**request.query, **data}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
