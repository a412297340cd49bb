"""Chat completions: translate the request for the backend (natively, or with the ReAct emulation of
function calling), and the backend's answer into OpenAI's reply or stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from ..ids import random_hex
from ..settings import Settings
from .backends.base import (
    Backend,
    Generation,
    GenerationChunk,
    GenerationRequest,
    ToolsRejected,
    UpstreamError,
)
from .backends.router import BackendRouter
from .function_calling.parser import ParsedCall, ParsedReply, new_call_id
from .function_calling.prompt import STOP_WORDS, language_of, render_messages
from .function_calling.stream import StreamEvent, ToolCallStream
from .function_calling.toolset import ToolSetCache
from .metrics import AssistantMetrics
from .protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
    ToolCallDeltaFunction,
    Usage,
)
from .tokens import count_messages, count_text

REASK = {
    "en": "You did not call a tool. Call the tool now, writing Action and Action Input as described.",
    "zh": "你没有调用工具。请现在按照说明的格式写出 Action 和 Action Input 来调用工具。",
}


def completion_id() -> str:
    return "chatcmpl-" + random_hex(12)


class ChatPlan:
    """How one request is served: which backend, which messages, emulated or native tools."""

    def __init__(
        self,
        request: ChatCompletionRequest,
        backend: Backend,
        mode: str,
        api_key: str | None,
        model: str,
        toolsets: ToolSetCache,
    ) -> None:
        self.request, self.backend, self.model = request, backend, model
        choice = request.tool_choice
        self.named = choice.function.name if isinstance(choice, NamedToolChoice) else None
        self.required = choice == "required" or self.named is not None
        self.use_tools = bool(request.tools) and choice != "none"
        self.native = self.use_tools and mode in ("native", "auto") and backend.native_tools
        self.fallback = mode == "auto"
        tools = request.tools or []
        if self.named:
            tools = [t for t in tools if t.function.name == self.named]
        self.toolset = toolsets.get(tools)
        self.tools, self.parser = tools, self.toolset.parser
        self.language = language_of(request.messages)
        self.api_key = api_key

    def generation_request(self, *, emulate: bool) -> GenerationRequest:
        r = self.request
        base = GenerationRequest(
            model=self.model, messages=[], api_key=self.api_key, temperature=r.temperature, top_p=r.top_p,
            max_tokens=r.token_limit, stop=list(r.stop or []) or None, seed=r.seed,
            presence_penalty=r.presence_penalty, frequency_penalty=r.frequency_penalty,
            response_format=r.response_format.model_dump(exclude_none=True) if r.response_format else None,
            user=r.user,
        )  # fmt: skip
        if not emulate:
            base.messages = [m.model_dump(exclude_none=True) for m in r.messages]
            if self.use_tools:
                base.tools = [t.model_dump(exclude_none=True) for t in self.tools]
                for tool in base.tools:
                    tool["function"]["parameters"] = next(
                        t.function.json_schema()
                        for t in self.tools
                        if t.function.name == tool["function"]["name"]
                    )
                base.tool_choice = (
                    r.tool_choice.model_dump()
                    if isinstance(r.tool_choice, NamedToolChoice)
                    else r.tool_choice
                )
                base.parallel_tool_calls = r.parallel_tool_calls
            return base
        prompt = None
        if self.use_tools:
            prompt = self.toolset.prompt(
                parallel=r.parallel_tool_calls,
                language=self.language,
                required=self.required,
                named=self.named,
            )
            base.stop = (base.stop or []) + STOP_WORDS
        base.messages = render_messages(r.messages, prompt)
        return base


class ChatService:
    def __init__(
        self, settings: Settings, router: BackendRouter, metrics: AssistantMetrics | None = None
    ) -> None:
        self.metrics = metrics
        self.settings, self.router = settings, router
        self.toolsets = ToolSetCache()

    def plan(
        self, request: ChatCompletionRequest, api_key: str | None, backend: Backend | None = None
    ) -> ChatPlan:
        model = (
            request.model
            or self.settings.default_model
            or (self.settings.served_model_name if self.settings.model_path else "")
        )
        backend = backend or self.router.backend_for(model)
        mode = self.settings.function_calling_mode(backend.name)
        return ChatPlan(request, backend, mode, api_key, model, self.toolsets)

    # -- whole replies -------------------------------------------------------------------------------------
    async def complete(self, plan: ChatPlan) -> ChatCompletion:
        if plan.native:
            try:
                generation = await self._generate(plan, plan.generation_request(emulate=False))
                return self._native_reply(plan, generation)
            except ToolsRejected:
                if not plan.fallback:
                    raise
                plan.native = False
        upstream = plan.generation_request(emulate=True)
        generation = await self._generate(plan, upstream)
        usage = self._usage(generation, upstream.messages)
        if not plan.use_tools:
            return self._reply(plan, generation.text, [], generation.finish_reason, usage)
        parsed = self._parse(plan, generation.text)
        if plan.required and not parsed.calls:
            upstream.messages = [
                *upstream.messages,
                {"role": "assistant", "content": generation.text},
                {"role": "user", "content": REASK[plan.language]},
            ]
            generation = await self._generate(plan, upstream)
            usage = _add(usage, self._usage(generation, upstream.messages))
            parsed = self._parse(plan, generation.text)
        legacy = self.settings.legacy_transcript_content
        content = generation.text if legacy else parsed.content
        finish = (
            "tool_calls" if parsed.calls else ("length" if generation.finish_reason == "length" else "stop")
        )
        return self._reply(plan, content, parsed.calls, finish, usage, None if legacy else parsed.reasoning)

    async def _generate(self, plan: ChatPlan, request: GenerationRequest) -> Generation:
        """One upstream call, measured."""
        started = time.perf_counter()
        try:
            generation = await plan.backend.generate(request)
        except UpstreamError as exc:
            if self.metrics:
                self.metrics.upstream_errors.labels(plan.backend.name, exc.code).inc()
            raise
        self._observe(plan, "false", time.perf_counter() - started, generation.usage)
        return generation

    async def _stream_upstream(
        self, plan: ChatPlan, request: GenerationRequest
    ) -> AsyncIterator[GenerationChunk]:
        """An upstream stream, measured from the request to its last piece."""
        started, usage = time.perf_counter(), None
        try:
            async for piece in plan.backend.stream(request):
                usage = piece.usage or usage
                yield piece
        except UpstreamError as exc:
            if self.metrics:
                self.metrics.upstream_errors.labels(plan.backend.name, exc.code).inc()
            raise
        self._observe(plan, "true", time.perf_counter() - started, usage)

    def _observe(self, plan: ChatPlan, stream: str, seconds: float, usage: Usage | None) -> None:
        if self.metrics is None:
            return
        self.metrics.upstream_seconds.labels(plan.backend.name, stream).observe(seconds)
        if usage is not None:
            self.metrics.upstream_tokens.labels(plan.backend.name, "prompt").inc(usage.prompt_tokens)
            self.metrics.upstream_tokens.labels(plan.backend.name, "completion").inc(usage.completion_tokens)

    @staticmethod
    def _parse(plan: ChatPlan, text: str) -> ParsedReply:
        parsed = plan.parser.parse(text, parallel=plan.request.parallel_tool_calls)
        if not parsed.calls and plan.named:
            named = plan.parser.parse_named(plan.named, text)
            if named is not None:
                return ParsedReply(content=None, calls=[named])
        return parsed

    def _usage(self, generation: Generation, messages: list[dict[str, Any]]) -> Usage:
        if generation.usage and generation.usage.total_tokens:
            return generation.usage
        prompt, completion = count_messages(messages), count_text(generation.text)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def _reply(
        self,
        plan: ChatPlan,
        content: str | None,
        calls: list[ParsedCall],
        finish: str,
        usage: Usage,
        reasoning: str | None = None,
    ) -> ChatCompletion:
        # built from values this server made itself: construct, skip validation (a hot path)
        tool_calls = [
            ToolCall.model_construct(
                id=c.id,
                type="function",
                function=FunctionCall.model_construct(name=c.name, arguments=c.arguments),
            )
            for c in calls
        ]
        text = content if (content or not calls) else None
        message = AssistantMessage.model_construct(
            role="assistant", content="" if text is None and not calls else text, reasoning_content=reasoning,
            refusal=None, tool_calls=tool_calls or None,
        )  # fmt: skip
        return ChatCompletion.model_construct(
            id=completion_id(),
            object="chat.completion",
            created=int(time.time()),
            model=plan.model,
            choices=[Choice.model_construct(index=0, message=message, logprobs=None, finish_reason=finish)],
            usage=usage,
            system_fingerprint=None,
        )

    def _native_reply(self, plan: ChatPlan, generation: Generation) -> ChatCompletion:
        calls = [
            ParsedCall(
                name=c["function"]["name"],
                arguments=c["function"].get("arguments") or "{}",
                id=c.get("id") or new_call_id(),
            )
            for c in generation.tool_calls or []
        ]
        finish = "tool_calls" if calls else generation.finish_reason
        usage = self._usage(generation, plan.generation_request(emulate=False).messages)
        return self._reply(plan, generation.text or None, calls, finish, usage)

    # -- streams -------------------------------------------------------------------------------------------
    async def stream(self, plan: ChatPlan) -> AsyncIterator[list[ChatCompletionChunk]]:
        """Batches of chunks, one batch per upstream piece, so each batch goes out in one write. The first
        batch waits for the upstream's first piece: an upstream that refuses still gets its HTTP status."""
        chunk_id, created = completion_id(), int(time.time())

        def chunk(delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=chunk_id,
                created=created,
                model=plan.model,
                choices=[ChunkChoice(delta=delta, finish_reason=finish)],
            )  # type: ignore[arg-type]

        def usage_chunk(usage: Usage) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=chunk_id, created=created, model=plan.model, choices=[], usage=usage
            )

        opening: list[ChatCompletionChunk] = [chunk(Delta(role="assistant", content=""))]
        source = self._native_stream(plan, chunk, usage_chunk) if plan.native else None
        if source is not None:
            try:
                first = await anext(source)
            except ToolsRejected:
                if not plan.fallback:
                    raise
                plan.native, source = False, None
            else:
                yield opening + first
                async for batch in source:
                    yield batch
                return
        async for batch in self._emulated_stream(plan, chunk, usage_chunk):
            if opening:
                batch, opening = opening + batch, []
            if batch:
                yield batch

    async def _emulated_stream(
        self, plan: ChatPlan, chunk: Any, usage_chunk: Any
    ) -> AsyncIterator[list[ChatCompletionChunk]]:
        upstream = plan.generation_request(emulate=True)
        parser = (
            ToolCallStream(plan.parser, parallel=plan.request.parallel_tool_calls) if plan.use_tools else None
        )
        # while a call is required nothing goes out before the first call: a re-ask may replace it all
        holding = plan.required
        held: list[StreamEvent] = []
        text, finish, usage = [], "stop", None
        call_index = 0

        def chunks_of(events: list[StreamEvent]) -> list[ChatCompletionChunk]:
            nonlocal call_index
            chunks: list[ChatCompletionChunk] = []
            for event in events:
                if event.reasoning is not None:
                    chunks.append(chunk(Delta(reasoning_content=event.reasoning)))
                if event.content is not None:
                    chunks.append(chunk(Delta(content=event.content)))
                if event.call is not None:
                    chunks.extend(chunk(d) for d in _call_deltas(event.call, call_index))
                    call_index += 1
            return chunks

        def translate(events: list[StreamEvent]) -> list[ChatCompletionChunk]:
            nonlocal holding
            if not holding:
                return chunks_of(events)
            held.extend(events)
            if not any(event.call is not None for event in events):
                return []
            holding = False
            return chunks_of(held)

        async for piece in self._stream_upstream(plan, upstream):
            text.append(piece.text)
            usage = piece.usage or usage
            if piece.finish_reason:
                finish = piece.finish_reason
            if parser is None:
                yield [chunk(Delta(content=piece.text))] if piece.text else []
                continue
            yield translate(parser.feed(piece.text))
            if parser.done:
                break  # leaving the loop closes the upstream request: generation stops here
        closing: list[ChatCompletionChunk] = []
        retry_usage: Usage | None = None
        if parser is not None:
            closing += translate(parser.finish())
            if plan.required and call_index == 0:
                # as the whole reply has it: the first answer is dropped, the model is asked again
                parsed = self._parse(plan, "".join(text))
                if not parsed.calls:
                    upstream.messages = [
                        *upstream.messages,
                        {"role": "assistant", "content": "".join(text)},
                        {"role": "user", "content": REASK[plan.language]},
                    ]
                    retry = await self._generate(plan, upstream)
                    retry_usage = self._usage(retry, upstream.messages)
                    parsed = self._parse(plan, retry.text)
                closing += chunks_of(
                    [StreamEvent(reasoning=parsed.reasoning), StreamEvent(content=parsed.content or None)]
                    + [StreamEvent(call=call) for call in parsed.calls]
                )
        closing.append(
            chunk(Delta(), "tool_calls" if call_index else ("length" if finish == "length" else "stop"))
        )
        if plan.request.stream_options and plan.request.stream_options.include_usage:
            streamed = self._usage(Generation(text="".join(text), usage=usage), upstream.messages)
            closing.append(usage_chunk(_add(streamed, retry_usage) if retry_usage else streamed))
        yield closing

    async def _native_stream(
        self, plan: ChatPlan, chunk: Any, usage_chunk: Any
    ) -> AsyncIterator[list[ChatCompletionChunk]]:
        upstream = plan.generation_request(emulate=False)
        finish, text, usage, called = "stop", [], None, False
        async for piece in self._stream_upstream(plan, upstream):
            usage = piece.usage or usage
            batch = []
            if piece.text:
                text.append(piece.text)
                batch.append(chunk(Delta(content=piece.text)))
            if piece.tool_calls:
                called = True
                batch.append(
                    chunk(Delta(tool_calls=[ToolCallDelta.model_validate(c) for c in piece.tool_calls]))
                )
            if piece.finish_reason:
                finish = piece.finish_reason
            yield batch
        closing = [chunk(Delta(), "tool_calls" if called else finish)]
        if plan.request.stream_options and plan.request.stream_options.include_usage:
            closing.append(
                usage_chunk(self._usage(Generation(text="".join(text), usage=usage), upstream.messages))
            )
        yield closing


def _call_deltas(call: ParsedCall, index: int) -> list[Delta]:
    """A call as OpenAI streams it: id, type and name first, then argument fragments."""
    arguments = call.arguments
    cut = max(1, len(arguments) // 2)
    deltas = [
        Delta(
            tool_calls=[
                ToolCallDelta(
                    index=index,
                    id=call.id,
                    type="function",
                    function=ToolCallDeltaFunction(name=call.name, arguments=""),
                )
            ]
        )
    ]
    for fragment in (arguments[:cut], arguments[cut:]):
        if fragment:
            deltas.append(
                Delta(
                    tool_calls=[
                        ToolCallDelta(index=index, function=ToolCallDeltaFunction(arguments=fragment))
                    ]
                )
            )
    return deltas


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )
