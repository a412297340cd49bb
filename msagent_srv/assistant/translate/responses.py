"""A Responses API request as the engine's chat request: input items become chat messages (after the
stored conversation `previous_response_id` names), function tools and `text.format` their chat forms."""

from __future__ import annotations

from typing import Any

from ..protocol import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
    NamedToolChoice,
    NamedToolChoiceFunction,
    ResponseFormat,
    ToolCall,
    ToolDefinition,
)
from ..protocol_responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    ResponsesRequest,
)
from ..render.responses import item_id


def input_messages(request: ResponsesRequest) -> list[ChatMessage]:
    """This turn's input as chat messages. Consecutive function calls (and the assistant text before
    them) make one assistant message, as chat completions carry them."""
    out: list[ChatMessage] = []
    for item in request.input:
        if isinstance(item, MessageItem):
            out.append(ChatMessage(role=item.role, content=item.text()))
        elif isinstance(item, FunctionCallItem):
            function = FunctionCall(name=item.name, arguments=item.arguments)
            call = ToolCall(id=item.call_id, type="function", function=function)
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                out.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif isinstance(item, FunctionCallOutputItem):
            out.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=item.text()))
    return out


def input_items(request: ResponsesRequest) -> list[dict[str, Any]]:
    """This turn's input items as `GET /v1/responses/{id}/input_items` lists them, each with an id."""
    if isinstance(request.input, str):
        part = {"type": "input_text", "text": request.input}
        return [
            {
                "id": item_id("msg"),
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [part],
            }
        ]
    prefixes = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}
    items = []
    for item in request.input:
        data = item.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.setdefault("id", item_id(prefixes[item.type]))
        if isinstance(item, MessageItem) and isinstance(item.content, str):  # as OpenAI lists them: parts
            kind = "output_text" if item.role == "assistant" else "input_text"
            data["content"] = [{"type": kind, "text": item.content}]
        items.append(data)
    return items


def chat_request(
    request: ResponsesRequest, earlier: list[ChatMessage], current: list[ChatMessage]
) -> ChatCompletionRequest:
    """`earlier`: the stored conversation before this turn; `current`: this turn's input messages."""
    system = [ChatMessage(role="system", content=request.instructions)] if request.instructions else []
    tools = [
        ToolDefinition(type="function", function=FunctionDefinition(
            name=t.name, description=t.description or "",
            parameters=t.parameters or {"type": "object", "properties": {}}, strict=t.strict,
        ))
        for t in request.tools or []
    ]  # fmt: skip
    choice: Any = request.tool_choice
    if not isinstance(choice, str):
        choice = NamedToolChoice(function=NamedToolChoiceFunction(name=choice.name))
    response_format = None
    text_format = request.text.format if request.text else None
    if text_format is not None and text_format.type != "text":
        schema = None
        if text_format.type == "json_schema":
            schema = {"name": text_format.name or "response", "schema": text_format.schema_ or {}}
            schema |= {"strict": text_format.strict} if text_format.strict is not None else {}
        response_format = ResponseFormat(type=text_format.type, json_schema=schema)
    return ChatCompletionRequest(
        model=request.model, messages=[*system, *earlier, *current], tools=tools or None,
        tool_choice=choice if tools else None, parallel_tool_calls=request.parallel_tool_calls,
        max_tokens=request.max_output_tokens, temperature=request.temperature, top_p=request.top_p,
        response_format=response_format, user=request.user,
    )  # fmt: skip
