"""Any OpenAI-compatible server (OpenAI, vLLM, LM Studio, Ollama's /v1): JSON over the app's lean
keep-alive HTTP/1.1 client, which costs far less per request than an SDK or a general HTTP client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import from_json, to_json

from ...netguard import InvalidUrl
from .base import (
    Generation,
    GenerationChunk,
    GenerationRequest,
    ToolsRejected,
    UpstreamError,
    transport_errors,
    upstream_status,
    usage_of,
)
from .http1 import Http1Client, Http1Response

_OPTIONAL = ("temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty", "frequency_penalty",
             "response_format", "user", "tools", "tool_choice", "parallel_tool_calls")  # fmt: skip


class OpenAICompatibleBackend:
    native_tools = True

    def __init__(
        self,
        client: Http1Client,
        base_url: str,
        api_key: str | None = None,
        *,
        name: str = "openai",
        timeout: float = 120.0,
        needs_key: bool = True,
    ) -> None:
        self.name = name
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        try:
            self.pool, path = client.endpoint(self.base_url + "/chat/completions")
        except InvalidUrl as exc:
            raise InvalidUrl(f"base URL (api_base) refused: {exc}") from None
        self.path = path
        self.needs_key = needs_key
        self.timeout = timeout

    def _payload(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": request.model, "messages": request.messages, "stream": stream}
        for key in _OPTIONAL:
            value = getattr(request, key)
            if value is not None:
                payload[key] = value
        if not request.tools:
            payload.pop("tool_choice", None)
            payload.pop("parallel_tool_calls", None)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def _headers(self, request: GenerationRequest) -> dict[str, str]:
        key = self.api_key or request.api_key
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _error(self, response: Http1Response, request: GenerationRequest) -> UpstreamError:
        raw = (await response.read()).decode("utf-8", "replace")
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw[:300]
        text = f"upstream {self.name} answered {response.status}: {message}"
        if request.tools and response.status in (400, 422, 500) and "tool" in str(message).lower():
            return ToolsRejected(response.status, text, "tools_not_supported")
        return UpstreamError(upstream_status(response.status), text)

    def _post(self, request: GenerationRequest, stream: bool) -> Any:
        return self.pool.post(
            self.path, to_json(self._payload(request, stream)), self._headers(request), self.timeout
        )

    def _bad_reply(self, what: str) -> UpstreamError:
        return UpstreamError(502, f"upstream {self.name} {what}", "upstream_bad_reply")

    async def generate(self, request: GenerationRequest) -> Generation:
        with transport_errors(self.name):
            async with self._post(request, False) as response:
                if response.status != 200:
                    raise await self._error(response, request)
                raw = await response.read()
        try:
            data = from_json(raw)
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._bad_reply("sent a malformed reply") from None
        return Generation(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            tool_calls=message.get("tool_calls") or None,
            usage=usage_of(data.get("usage")),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        with transport_errors(self.name):
            async with self._post(request, True) as response:
                if response.status != 200:
                    raise await self._error(response, request)
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    raise self._bad_reply("sent no event stream")
                done = False
                async for raw_line in response.iter_lines():
                    line = raw_line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    try:
                        event = from_json(data)
                    except ValueError:
                        continue
                    chunk = GenerationChunk(usage=usage_of(event.get("usage")))
                    for choice in event.get("choices") or []:
                        delta = choice.get("delta") or {}
                        chunk.text += delta.get("content") or ""
                        chunk.tool_calls = delta.get("tool_calls") or chunk.tool_calls
                        chunk.finish_reason = choice.get("finish_reason") or chunk.finish_reason
                    yield chunk
                if not done:
                    raise self._bad_reply("ended its stream without [DONE]")

    async def close(self) -> None:
        """The client belongs to the app."""
