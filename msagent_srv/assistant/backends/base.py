"""What every model backend offers: a whole generation, or a stream of pieces."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from ...netguard import InvalidUrl, PrivateAddressRefused, RedirectRefused
from ..protocol import Usage
from .http1 import HttpError, HttpRefused, HttpReplyTooLarge


class UpstreamError(Exception):
    """The upstream model server failed; `status` is what our client gets."""

    def __init__(self, status: int, message: str, code: str = "upstream_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class ToolsRejected(UpstreamError):
    """The upstream does not accept `tools` for this model (so `auto` falls back to emulation)."""


def upstream_status(status: int) -> int:
    """Map an upstream HTTP status to ours: the client's faults stay theirs, upstream faults are 502."""
    if status in (400, 401, 403, 404, 413, 422, 429):
        return status
    return 502


def _refusal(exc: BaseException) -> BaseException | None:
    """The guard's refusal behind a client error (aiohttp wraps it as the connection error's cause)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, (PrivateAddressRefused, InvalidUrl, HttpRefused)):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


@contextlib.contextmanager
def transport_errors(backend: str) -> Iterator[None]:
    """Timeouts and connection failures of an upstream call as UpstreamError (504 / 502); the guard's
    refusal of a caller's URL as 400, a redirect (never followed) or an over-long reply as 502."""
    try:
        yield
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        raise UpstreamError(504, f"upstream {backend} timed out", "upstream_timeout") from None
    except RedirectRefused as exc:
        raise UpstreamError(502, f"upstream {backend} {exc}", "upstream_redirect") from None
    except HttpReplyTooLarge as exc:
        raise UpstreamError(502, f"upstream {backend} refused: {exc}", "upstream_bad_reply") from None
    except (aiohttp.ClientError, HttpError, OSError) as exc:
        refusal = _refusal(exc)
        if refusal is not None:
            raise UpstreamError(400, f"api_base refused: {refusal}", "invalid_api_base") from None
        detail = exc.__class__.__name__ if isinstance(exc, aiohttp.ClientError) else str(exc)
        raise UpstreamError(
            502, f"upstream {backend} unreachable: {detail}", "upstream_unreachable"
        ) from None


def usage_of(data: object) -> Usage | None:
    """OpenAI-shaped usage from a reply's `usage` object."""
    if not isinstance(data, dict):
        return None
    return Usage(**{k: int(data.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")})


@dataclass
class GenerationRequest:
    model: str
    messages: list[dict[str, Any]]
    api_key: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    # native function calling only
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None


@dataclass
class Generation:
    text: str
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] | None = None
    usage: Usage | None = None


@dataclass
class GenerationChunk:
    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = field(default=None)  # native deltas, OpenAI's shape
    usage: Usage | None = None


class Backend(Protocol):
    name: str
    needs_key: bool
    native_tools: bool  # the upstream can take `tools` itself

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]: ...

    async def close(self) -> None: ...
