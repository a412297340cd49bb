"""How one chat request is served: which backend and model, which messages, native or emulated tools."""

from __future__ import annotations

import copy

from ..backends.base import Backend, GenerationRequest
from ..function_calling.prompt import STOP_WORDS, language_of, render_messages
from ..function_calling.toolset import ToolSetCache
from ..protocol import ChatCompletionRequest, NamedToolChoice
from .structured import OutputSchema

REASK = {
    "en": "You did not call a tool. Call the tool now, writing Action and Action Input as described.",
    "zh": "你没有调用工具。请现在按照说明的格式写出 Action 和 Action Input 来调用工具。",
}


class ChatPlan:
    """Read-only once made; a backend that refuses native tools gets an emulated copy (`emulated()`).
    Raises structured.InvalidSchema when the response_format's schema does not compile."""

    def __init__(
        self,
        request: ChatCompletionRequest,
        backend: Backend,
        mode: str,
        api_key: str | None,
        model: str,
        toolsets: ToolSetCache,
    ) -> None:
        self.request, self.backend, self.model, self.api_key = request, backend, model, api_key
        choice = request.tool_choice
        self.named = choice.function.name if isinstance(choice, NamedToolChoice) else None
        self.required = choice == "required" or self.named is not None
        self.use_tools = bool(request.tools) and choice != "none"
        self.native = self.use_tools and mode in ("native", "auto") and backend.native_tools
        self.fallback = mode == "auto"  # native refused: emulate instead of failing
        tools = request.tools or []
        if self.named:
            tools = [t for t in tools if t.function.name == self.named]
        self.toolset = toolsets.get(tools)
        self.tools, self.parser = tools, self.toolset.parser
        self.language = language_of(request.messages)
        self.parallel = request.parallel_tool_calls
        self.include_usage = bool(request.stream_options and request.stream_options.include_usage)
        # a backend that calls tools natively takes response_format too; for the others it is emulated
        self.native_format = mode in ("native", "auto") and backend.native_tools
        self.structured = None if self.native_format else OutputSchema.of(request.response_format)

    def emulated(self) -> ChatPlan:
        """This plan with function calling emulated (after the backend refused native tools)."""
        other = copy.copy(self)
        other.native, other.native_format = False, False
        other.structured = OutputSchema.of(self.request.response_format)
        return other

    def reask(self) -> str:
        return REASK[self.language]

    def generation_request(self) -> GenerationRequest:
        """The upstream request: the conversation as it is (native), or rendered with the ReAct prompt."""
        r = self.request
        base = GenerationRequest(
            model=self.model, messages=[], api_key=self.api_key, temperature=r.temperature, top_p=r.top_p,
            max_tokens=r.token_limit, stop=list(r.stop or []) or None, seed=r.seed,
            presence_penalty=r.presence_penalty, frequency_penalty=r.frequency_penalty,
            response_format=(
                r.response_format.model_dump(exclude_none=True)
                if r.response_format and self.structured is None
                else None
            ),
            user=r.user,
        )  # fmt: skip
        if self.native:
            base.messages = [m.model_dump(exclude_none=True) for m in r.messages]
            base.tools = [
                {**t.model_dump(exclude_none=True), "function": {
                    **t.function.model_dump(exclude_none=True), "parameters": t.function.json_schema()}}
                for t in self.tools
            ]  # fmt: skip
            base.tool_choice = (
                r.tool_choice.model_dump() if isinstance(r.tool_choice, NamedToolChoice) else r.tool_choice
            )
            base.parallel_tool_calls = r.parallel_tool_calls
            return base
        prompts = []
        if self.use_tools:
            prompts.append(self.toolset.prompt(
                parallel=r.parallel_tool_calls, language=self.language, required=self.required, named=self.named,
            ))  # fmt: skip
            base.stop = (base.stop or []) + STOP_WORDS
        if self.structured is not None:
            prompts.append(self.structured.prompt(self.language, with_tools=self.use_tools))
        base.messages = render_messages(r.messages, "\n\n".join(prompts) or None)
        return base
