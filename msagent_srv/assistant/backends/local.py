"""A GGUF model file served in-process with llama-cpp-python (the `[local]` extra).

llama.cpp is not thread-safe: one generation at a time runs in a worker thread, behind a lock; its tokens
cross to the event loop through a queue, and a consumer that goes away (a client disconnect) stops the
generation at the next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..protocol import Usage
from .base import Generation, GenerationChunk, GenerationRequest, UpstreamError, usage_of

_DONE = object()


class LocalModelBackend:
    name = "local"
    needs_key = False
    native_tools = False

    def __init__(self, model_path: str, *, n_ctx: int = 4096, threads: int | None = None) -> None:
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"model file not found: {model_path}")
        self.model_path, self.n_ctx, self.threads = model_path, n_ctx, threads
        self._llm: Any = None
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        def load() -> Any:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise RuntimeError(
                    "serving a local model needs the [local] extra: pip install 'msagent-srv[local]'"
                ) from exc
            return Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.threads, verbose=False)

        self._llm = await asyncio.to_thread(load)

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {"messages": request.messages}
        for key in (
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        ):
            value = getattr(request, key)
            if value is not None:
                arguments[key] = value
        if request.response_format and request.response_format.get("type") == "json_object":
            arguments["response_format"] = {"type": "json_object"}
        return arguments

    async def generate(self, request: GenerationRequest) -> Generation:
        if self._llm is None:
            raise UpstreamError(503, "local model is not loaded", "model_not_loaded")
        async with self._lock:
            try:
                result = await asyncio.to_thread(self._llm.create_chat_completion, **self._arguments(request))
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise UpstreamError(400, f"local model: {exc}", "context_length_exceeded") from None
        choice = result["choices"][0]
        return Generation(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            usage=usage_of(result.get("usage")),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        if self._llm is None:
            raise UpstreamError(503, "local model is not loaded", "model_not_loaded")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        arguments = self._arguments(request)

        def produce() -> None:
            try:
                for part in self._llm.create_chat_completion(stream=True, **arguments):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, part)
            except Exception as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        async with self._lock:
            worker = loop.run_in_executor(None, produce)
            completion_tokens = 0
            try:
                while (part := await queue.get()) is not _DONE:
                    if isinstance(part, Exception):
                        raise UpstreamError(502, f"local model failed: {part}", "local_model_error")
                    choice = part["choices"][0]
                    text = choice["delta"].get("content") or ""
                    completion_tokens += bool(text)
                    yield GenerationChunk(text=text, finish_reason=choice.get("finish_reason"))
            finally:
                stop.set()  # a consumer that leaves early ends the generation at the next token
                await asyncio.shield(worker)
        prompt_tokens = len(self._llm.tokenize(str(arguments["messages"]).encode(), add_bos=False))
        yield GenerationChunk(
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
        )

    async def close(self) -> None:
        llm, self._llm = self._llm, None
        close = getattr(llm, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
