"""The chat engine: one request in, batches of typed events out, from emulated (ReAct) and native
function calling alike. Renderers turn the events into OpenAI chat chunks or replies, agent transcripts,
and whatever wire comes next; nothing downstream parses JSON the engine produced.

A batch holds the events of one upstream piece, so a renderer writes it in one go. A whole (non-stream)
reply is one batch."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from ...settings import Settings
from ..backends.base import (
    Backend,
    Generation,
    GenerationChunk,
    GenerationRequest,
    ToolsRejected,
    UpstreamError,
)
from ..backends.router import BackendRouter
from ..function_calling.parser import ParsedCall, ParsedReply, new_call_id
from ..function_calling.stream import StreamEvent, ToolCallStream
from ..function_calling.toolset import ToolSetCache
from ..metrics import AssistantMetrics
from ..protocol import ChatCompletionRequest, Usage
from ..tokens import count_messages, count_text
from .events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgs,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
)
from .plan import ChatPlan

Batch = list[Event]


def call_events(call: ParsedCall, index: int) -> Batch:
    """A whole call as the engine announces it: start, its arguments, end."""
    return [
        ToolCallStart(index, call.id, call.name),
        ToolCallArgs(index, call.arguments),
        ToolCallEnd(index, call),
    ]


def add_usage(a: Usage, b: Usage | None) -> Usage:
    if b is None:
        return a
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )


def measured_usage(usage: Usage | None, text: str, messages: list[dict]) -> Usage:
    """The upstream's count, or ours where it sent none."""
    if usage and usage.total_tokens:
        return usage
    prompt, completion = count_messages(messages), count_text(text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class ChatEngine:
    def __init__(
        self, settings: Settings, router: BackendRouter, metrics: AssistantMetrics | None = None
    ) -> None:
        self.settings, self.router, self.metrics = settings, router, metrics
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

    async def events(self, plan: ChatPlan, *, stream: bool) -> AsyncIterator[Batch]:
        """The reply as batches of events. The first batch comes with the upstream's first answer, so an
        upstream refusal still reaches the caller as an HTTP status."""
        if plan.native:
            native = self._native(plan, stream)
            try:
                first = await anext(native)
            except ToolsRejected:
                if not plan.fallback:
                    raise
                plan = plan.emulated()  # the backend has no tool parser here: emulate instead
            else:
                yield first
                async for batch in native:
                    yield batch
                return
        # a structured answer is checked whole before any of it goes out: streamed, it comes in one batch
        whole = not stream or plan.structured is not None
        async for batch in self._emulated_whole(plan) if whole else self._emulated_stream(plan):
            yield batch

    async def collect(self, plan: ChatPlan) -> Batch:
        """The whole reply's events."""
        return [event async for batch in self.events(plan, stream=False) for event in batch]

    # -- upstream calls, measured ------------------------------------------------------------------------
    async def _generate(self, plan: ChatPlan, request: GenerationRequest) -> Generation:
        started = time.perf_counter()
        try:
            generation = await plan.backend.generate(request)
        except UpstreamError as exc:
            self._count_error(plan, exc)
            raise
        self._observe(plan, "false", time.perf_counter() - started, generation.usage)
        return generation

    async def _stream_upstream(
        self, plan: ChatPlan, request: GenerationRequest
    ) -> AsyncIterator[GenerationChunk]:
        started, usage = time.perf_counter(), None
        try:
            async for piece in plan.backend.stream(request):
                usage = piece.usage or usage
                yield piece
        except UpstreamError as exc:
            self._count_error(plan, exc)
            raise
        self._observe(plan, "true", time.perf_counter() - started, usage)

    def _count_error(self, plan: ChatPlan, exc: UpstreamError) -> None:
        if self.metrics:
            self.metrics.upstream_errors.labels(plan.backend.name, exc.code).inc()

    def _observe(self, plan: ChatPlan, stream: str, seconds: float, usage: Usage | None) -> None:
        if self.metrics is None:
            return
        self.metrics.upstream_seconds.labels(plan.backend.name, stream).observe(seconds)
        if usage is not None:
            self.metrics.upstream_tokens.labels(plan.backend.name, "prompt").inc(usage.prompt_tokens)
            self.metrics.upstream_tokens.labels(plan.backend.name, "completion").inc(usage.completion_tokens)

    # -- emulated function calling ----------------------------------------------------------------------
    @staticmethod
    def _parse(plan: ChatPlan, text: str) -> ParsedReply:
        parsed = plan.parser.parse(text, parallel=plan.parallel)
        if not parsed.calls and plan.named:
            named = plan.parser.parse_named(plan.named, text)
            if named is not None:
                return ParsedReply(content=None, calls=[named])
        return parsed

    async def _reask(
        self, plan: ChatPlan, upstream: GenerationRequest, text: str
    ) -> tuple[ParsedReply, Generation | None]:
        """The answer parsed, and when a call was required but none came, the model asked once more (its
        reply replaces the first: the caller sees only the second)."""
        parsed = self._parse(plan, text)
        if not (plan.required and not parsed.calls):
            return parsed, None
        upstream.messages = [
            *upstream.messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": plan.reask()},
        ]
        retry = await self._generate(plan, upstream)
        return self._parse(plan, retry.text), retry

    def _finish(self, plan: ChatPlan, calls: int, upstream_finish: str) -> Finish:
        if calls:
            return Finish("tool_calls")
        return Finish("length" if upstream_finish == "length" else "stop")

    async def _conform(
        self, plan: ChatPlan, upstream: GenerationRequest, text: str
    ) -> tuple[str, Generation | None]:
        """The answer as the JSON object its schema asks for; asked once more when it is not. A strict
        schema still unmet after that fails the request (502) rather than answer what it forbids."""
        schema = plan.structured
        assert schema is not None
        found, error = schema.check(text)
        if error is None:
            return found or text, None
        upstream.messages = [
            *upstream.messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": schema.reask(plan.language, error)},
        ]
        retry = await self._generate(plan, upstream)
        again, error = schema.check(retry.text)
        if error is not None and schema.strict:
            raise UpstreamError(
                502, f"the model's answer does not match schema '{schema.name}' after a retry: {error}",
                "invalid_structured_output",
            )  # fmt: skip
        return again or found or retry.text, retry

    async def _emulated_whole(self, plan: ChatPlan) -> AsyncIterator[Batch]:
        upstream = plan.generation_request()
        generation = await self._generate(plan, upstream)
        usage = measured_usage(generation.usage, generation.text, upstream.messages)
        if not plan.use_tools:
            text = generation.text
            if plan.structured is not None:
                text, retry = await self._conform(plan, upstream, text)
                if retry is not None:
                    usage = add_usage(usage, measured_usage(retry.usage, retry.text, upstream.messages))
                    generation = retry
            deltas = [TextDelta(text)] if text else []
            yield [*deltas, Finish(generation.finish_reason), UsageReport(usage)]
            return
        parsed, retry = await self._reask(plan, upstream, generation.text)
        if retry is not None:
            usage = add_usage(usage, measured_usage(retry.usage, retry.text, upstream.messages))
            generation = retry
        if plan.structured is not None and not parsed.calls:
            content, retry = await self._conform(plan, upstream, parsed.content or "")
            parsed = ParsedReply(content=content, calls=[], reasoning=parsed.reasoning)
            if retry is not None:
                usage = add_usage(usage, measured_usage(retry.usage, retry.text, upstream.messages))
                generation = retry
        batch: Batch = []
        if (
            self.settings.legacy_transcript_content and plan.structured is None
        ):  # the raw transcript, as older servers gave
            batch += [TextDelta(generation.text)] if generation.text else []
        else:
            batch += [ReasoningDelta(parsed.reasoning)] if parsed.reasoning else []
            batch += [TextDelta(parsed.content)] if parsed.content else []
        for index, call in enumerate(parsed.calls):
            batch += call_events(call, index)
        yield [*batch, self._finish(plan, len(parsed.calls), generation.finish_reason), UsageReport(usage)]

    async def _emulated_stream(self, plan: ChatPlan) -> AsyncIterator[Batch]:
        upstream = plan.generation_request()
        parser = ToolCallStream(plan.parser, parallel=plan.parallel) if plan.use_tools else None
        # while a call is required nothing goes out before the first call: a re-ask may replace it all
        holding, held = plan.required, []
        text: list[str] = []
        finish, usage, calls = "stop", None, 0

        def translate(events: list[StreamEvent]) -> Batch:
            nonlocal holding, calls
            if holding:
                held.extend(events)
                if not any(event.call is not None for event in events):
                    return []
                holding, events = False, list(held)
            batch: Batch = []
            for event in events:
                if event.reasoning is not None:
                    batch.append(ReasoningDelta(event.reasoning))
                if event.content is not None:
                    batch.append(TextDelta(event.content))
                if event.call is not None:
                    batch += call_events(event.call, calls)
                    calls += 1
            return batch

        async for piece in self._stream_upstream(plan, upstream):
            text.append(piece.text)
            usage = piece.usage or usage
            finish = piece.finish_reason or finish
            if parser is None:
                yield [TextDelta(piece.text)] if piece.text else []
                continue
            yield translate(parser.feed(piece.text))
            if parser.done:
                break  # leaving the loop closes the upstream request: generation stops here
        whole = "".join(text)
        total = measured_usage(usage, whole, upstream.messages)
        closing: Batch = []
        if parser is not None:
            closing += translate(parser.finish())
            if plan.required and calls == 0:  # as the whole reply has it: asked again, the second answer
                parsed, retry = await self._reask(plan, upstream, whole)
                if retry is not None:
                    total = add_usage(total, measured_usage(retry.usage, retry.text, upstream.messages))
                closing += [ReasoningDelta(parsed.reasoning)] if parsed.reasoning else []
                closing += [TextDelta(parsed.content)] if parsed.content else []
                for call in parsed.calls:
                    closing += call_events(call, calls)
                    calls += 1
        yield [*closing, self._finish(plan, calls, finish), UsageReport(total)]

    # -- native function calling ------------------------------------------------------------------------
    async def _native(self, plan: ChatPlan, stream: bool) -> AsyncIterator[Batch]:
        upstream = plan.generation_request()
        if not stream:
            generation = await self._generate(plan, upstream)
            calls = [
                ParsedCall(
                    name=c["function"]["name"],
                    arguments=c["function"].get("arguments") or "{}",
                    id=c.get("id") or new_call_id(),
                )
                for c in generation.tool_calls or []
            ]
            batch: Batch = [TextDelta(generation.text)] if generation.text else []
            for index, call in enumerate(calls):
                batch += call_events(call, index)
            finish = Finish("tool_calls") if calls else Finish(generation.finish_reason)
            usage = measured_usage(generation.usage, generation.text, upstream.messages)
            yield [*batch, finish, UsageReport(usage)]
            return
        finish_reason, text, usage = "stop", [], None
        started: dict[int, ToolCallStart] = {}  # the upstream's calls by index, their fragments joined
        arguments: dict[int, list[str]] = {}
        async for piece in self._stream_upstream(plan, upstream):
            usage = piece.usage or usage
            finish_reason = piece.finish_reason or finish_reason
            batch = []
            if piece.text:
                text.append(piece.text)
                batch.append(TextDelta(piece.text))
            for delta in piece.tool_calls or []:
                index, function = int(delta.get("index") or 0), delta.get("function") or {}
                if index not in started:
                    started[index] = ToolCallStart(
                        index, delta.get("id") or new_call_id(), function.get("name") or ""
                    )
                    arguments[index] = []
                    batch.append(started[index])
                if function.get("name") and not started[index].name:  # a name after the first fragment
                    started[index].name = function["name"]
                if function.get("arguments"):
                    arguments[index].append(function["arguments"])
                    batch.append(ToolCallArgs(index, function["arguments"]))
            yield batch
        closing: Batch = [
            ToolCallEnd(i, ParsedCall(name=s.name, arguments="".join(arguments[i]) or "{}", id=s.id))
            for i, s in sorted(started.items())
        ]
        finish = Finish("tool_calls") if started else Finish(finish_reason)
        yield [*closing, finish, UsageReport(measured_usage(usage, "".join(text), upstream.messages))]
