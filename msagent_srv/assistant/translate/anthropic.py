"""An Anthropic Messages request as the engine's chat request: `system` a system message, `tool_use`
blocks assistant tool calls, `tool_result` blocks tool messages, tools and tool_choice their chat forms."""

from __future__ import annotations

import json
from typing import Any

from ..protocol import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
    NamedToolChoice,
    NamedToolChoiceFunction,
    ToolCall,
    ToolDefinition,
)
from ..protocol_anthropic import Message, MessagesRequest, TextBlock, ToolResultBlock, ToolUseBlock


def chat_messages(message: Message) -> list[ChatMessage]:
    """One Anthropic message as chat messages: a user turn's tool results first (each its own tool
    message), then its text; an assistant turn's text and tool calls as one message."""
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    text = "".join(block.text for block in message.content if isinstance(block, TextBlock))
    if message.role == "assistant":
        calls = [
            ToolCall(
                id=b.id, function=FunctionCall(name=b.name, arguments=json.dumps(b.input, ensure_ascii=False))
            )
            for b in message.content
            if isinstance(b, ToolUseBlock)
        ]
        return [ChatMessage(role="assistant", content=text or None, tool_calls=calls or None)]
    out = [
        ChatMessage(
            role="tool", tool_call_id=b.tool_use_id, content=("Error: " if b.is_error else "") + b.text()
        )
        for b in message.content
        if isinstance(b, ToolResultBlock)
    ]
    if text or not out:
        out.append(ChatMessage(role="user", content=text))
    return out


def chat_request(request: MessagesRequest) -> ChatCompletionRequest:
    system = request.system_text()
    messages = [ChatMessage(role="system", content=system)] if system else []
    for message in request.messages:
        messages += chat_messages(message)
    tools = [
        ToolDefinition(
            function=FunctionDefinition(name=t.name, description=t.description, parameters=t.input_schema)
        )
        for t in request.tools or []
    ]
    choice: Any = None
    parallel = True
    if tools and request.tool_choice is not None:
        kind = request.tool_choice.type
        parallel = not request.tool_choice.disable_parallel_tool_use
        if kind == "tool":
            choice = NamedToolChoice(function=NamedToolChoiceFunction(name=request.tool_choice.name or ""))
        else:
            choice = {"auto": "auto", "any": "required", "none": "none"}[kind]
    return ChatCompletionRequest(
        model=request.model, messages=messages, tools=tools or None, tool_choice=choice,
        parallel_tool_calls=parallel, max_tokens=request.max_tokens, temperature=request.temperature,
        top_p=request.top_p, stop=request.stop_sequences or None,
        user=request.metadata.user_id if request.metadata else None,
    )  # fmt: skip
