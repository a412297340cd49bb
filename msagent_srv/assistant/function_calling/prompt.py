"""The ReAct tool prompt, and the rendering of earlier tool calls and results back into the transcript."""

from __future__ import annotations

import json
import re
from typing import Any

from ..protocol import ChatMessage, ToolDefinition

ACTION = "Action"
ACTION_INPUT = "Action Input"
OBSERVATION = "Observation"
STOP_WORDS = [f"{OBSERVATION}:", f"{OBSERVATION}："]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_TEXT = {
    "en": {
        "header": "# Tools\n\nYou have access to the following tools:",
        "params": "Parameters: {schema} Format the arguments as a JSON object.",
        "format": (
            "To call a tool, write exactly:\n\n"
            "Action: the tool to use, one of [{names}]\n"
            "Action Input: the arguments of the tool, a JSON object\n"
            "Observation: the result of the tool (written by the system, never by you)\n\n"
            "Stop after Action Input and wait for the Observation. "
            "If no tool is needed, answer the user directly without writing Action."
        ),
        "parallel": "To call several tools at once, write one Action and Action Input pair per call, one after another, then stop.",
        "single": "Call at most one tool at a time.",
        "required": "You must call at least one tool now.",
        "named": "You must call the tool {name} now.",
    },
    "zh": {
        "header": "# 工具\n\n你可以使用以下工具：",
        "params": "输入参数：{schema} 参数请以JSON对象格式给出。",
        "format": (
            "调用工具时，请严格按以下格式书写：\n\n"
            "Action: 要使用的工具，必须是 [{names}] 之一\n"
            "Action Input: 工具的参数，一个JSON对象\n"
            "Observation: 工具返回的结果（由系统填写，不要自己写）\n\n"
            "写完 Action Input 后停止，等待 Observation。如果不需要工具，请直接回答用户，不要写 Action。"
        ),
        "parallel": "如需同时调用多个工具，请依次为每次调用写一组 Action 和 Action Input，然后停止。",
        "single": "每次最多调用一个工具。",
        "required": "你现在必须调用至少一个工具。",
        "named": "你现在必须调用工具 {name}。",
    },
}


def language_of(messages: list[ChatMessage]) -> str:
    """'zh' when the conversation's user and system text is largely Chinese, else 'en'."""
    text = "".join(m.text() for m in messages if m.role in ("user", "system", "developer"))[-2000:]
    if not text:
        return "en"
    return "zh" if len(_CJK.findall(text)) * 5 >= len(text.strip()) else "en"


def tool_prompt(
    tools: list[ToolDefinition],
    *,
    parallel: bool,
    language: str,
    required: bool = False,
    named: str | None = None,
) -> str:
    text = _TEXT[language]
    lines = [text["header"], ""]
    for tool in tools:
        fn = tool.function
        schema = json.dumps(fn.json_schema(), ensure_ascii=False)
        lines.append(f"### {fn.name}\n\n{fn.name}: {fn.description} {text['params'].format(schema=schema)}\n")
    names = ", ".join(t.function.name for t in tools)
    lines.append(text["format"].format(names=names))
    lines.append(text["parallel"] if parallel else text["single"])
    if named:
        lines.append(text["named"].format(name=named))
    elif required:
        lines.append(text["required"])
    return "\n".join(lines)


def render_call(name: str, arguments: str) -> str:
    return f"{ACTION}: {name}\n{ACTION_INPUT}: {arguments}"


def render_messages(messages: list[ChatMessage], system_prompt: str | None) -> list[dict[str, Any]]:
    """Plain role/content messages for a text-only model: the tool prompt joins the system message,
    assistant tool calls become Action lines and tool results become Observation lines."""
    rendered: list[dict[str, Any]] = []
    system_parts = [m.text() for m in messages if m.role in ("system", "developer")]
    if system_prompt:
        system_parts.append(system_prompt)
    if system_parts:
        rendered.append({"role": "system", "content": "\n\n".join(p for p in system_parts if p)})
    pending_observations: list[str] = []

    def flush() -> None:
        if pending_observations:
            rendered.append({"role": "user", "content": "\n".join(pending_observations)})
            pending_observations.clear()

    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role in ("tool", "function"):
            pending_observations.append(f"{OBSERVATION}: {message.text()}")
            continue
        flush()
        if message.role == "assistant":
            parts = [message.text()] if message.text() else []
            parts += [
                render_call(c.function.name, c.function.arguments or "{}") for c in message.tool_calls or []
            ]
            rendered.append({"role": "assistant", "content": "\n".join(parts)})
        else:
            rendered.append({"role": "user", "content": message.text()})
    flush()
    return rendered
