"""DashScope (通义千问) through the official SDK's async client, on the app's aiohttp session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from aiohttp.http_exceptions import LineTooLong

from ...netguard import InvalidUrl, origin
from ..protocol import Usage
from .base import (
    Generation,
    GenerationChunk,
    GenerationRequest,
    ToolsRejected,
    UpstreamError,
    transport_errors,
    upstream_status,
)

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if not usage:
        return None
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("total_tokens") or prompt + completion),
    )


def _choice(response: Any) -> dict[str, Any]:
    output = getattr(response, "output", None) or {}
    choices = output.get("choices") or []
    if choices:
        return choices[0]
    # text result format
    return {"message": {"content": output.get("text") or ""}, "finish_reason": output.get("finish_reason")}


class DashScopeBackend:
    name = "dashscope"
    needs_key = True
    native_tools = True

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        """Raises InvalidUrl (a ValueError) when base_url is not a usable http(s) URL."""
        self.session, self.base_url, self.api_key, self.timeout = (
            session,
            base_url or DEFAULT_BASE_URL,
            api_key,
            timeout,
        )
        try:
            origin(self.base_url)
        except InvalidUrl as exc:
            raise InvalidUrl(f"base URL (api_base) refused: {exc}") from None

    def _arguments(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "api_key": self.api_key or request.api_key,
            "result_format": "message",
            "stream": stream,
            "base_address": self.base_url,
            "request_timeout": self.timeout,
            "session": self.session,
        }
        if stream:
            arguments["incremental_output"] = True
        for key in (
            "temperature",
            "top_p",
            "max_tokens",
            "seed",
            "stop",
            "presence_penalty",
            "response_format",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
        ):
            value = getattr(request, key)
            if value is not None:
                arguments[key] = value
        return arguments

    def _check(self, response: Any, request: GenerationRequest) -> None:
        status = getattr(response, "status_code", 200)
        if status == 200:
            return
        message = f"upstream dashscope answered {status}: {getattr(response, 'code', '')} {getattr(response, 'message', '')}"
        if request.tools and status == 400 and "tool" in message.lower():
            raise ToolsRejected(400, message, "tools_not_supported")
        raise UpstreamError(upstream_status(status), message.strip())

    def _translate(self, response: Any, request: GenerationRequest, *, final: bool) -> GenerationChunk:
        """One SDK response as a chunk (the whole reply when not streaming)."""
        self._check(response, request)
        choice = _choice(response)
        message = choice.get("message") or {}
        finish = choice.get("finish_reason")
        finish = finish if finish and finish != "null" else ("stop" if final else None)
        return GenerationChunk(
            text=message.get("content") or "",
            finish_reason=finish,
            tool_calls=message.get("tool_calls") or None,
            usage=_usage(response),
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        from dashscope import AioGeneration

        with transport_errors(self.name):
            response = await AioGeneration.call(**self._arguments(request, False))
        piece = self._translate(response, request, final=True)
        return Generation(
            text=piece.text,
            finish_reason=piece.finish_reason or "stop",
            tool_calls=piece.tool_calls,
            usage=piece.usage,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        from dashscope import AioGeneration

        with transport_errors(self.name), _line_limit(self.name):
            responses = await AioGeneration.call(**self._arguments(request, True))
            async for response in responses:
                yield self._translate(response, request, final=False)

    async def close(self) -> None:
        """The session belongs to the app."""


@contextlib.contextmanager
def _line_limit(backend: str) -> Iterator[None]:
    """aiohttp refuses a stream line beyond twice its read buffer (the sessions' `read_bufsize`)."""
    try:
        yield
    except LineTooLong:
        raise UpstreamError(
            502, f"upstream {backend} refused: it sent an over-long event line", "upstream_bad_reply"
        ) from None
