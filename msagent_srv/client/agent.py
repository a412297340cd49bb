"""An agent in the style of ModelScope's RolePlay: a model with tools, streaming its work as text.

The model is any OpenAI-compatible chat endpoint, by default this stack's assistant server, which gives
function calling to models that lack it. Tools run in this process (`use_tool_api=False`) or in their
own containers through the tool manager (`use_tool_api=True`); nothing else differs for the caller.

    agent = Agent(function_list=["code_interpreter"], llm={"model": "qwen-max", "api_key": "..."},
                  instruction="You are a helpful assistant.", use_tool_api=True)
    for text in agent.run("What is 2**100?"):
        print(text, end="")

The stream shows each call as `Action:` / `Action Input:`, its result as `Observation: <result>...</result>`
and the reply that follows tool use after `Answer:`, as ModelScope's RolePlay does. The loop itself is
`msagent_srv.agent.AgentLoop`, the same one the assistant server's /v1/assistants/lite runs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Iterator
from typing import Any

import openai

from ..agent import AgentLoop, Call, action_text, observation_text
from ..tools import Tool, ToolError, load_tool
from .errors import ToolServiceError
from .tool_calls import ToolCallAssembler
from .tool_proxy import ToolServiceProxy

DEFAULT_ASSISTANT_URL = "http://localhost:31512/v1"


class Agent:
    def __init__(
        self,
        function_list: list[str | Tool],
        llm: dict[str, Any],
        instruction: str = "",
        *,
        use_tool_api: bool = False,
        tool_cfg: dict[str, dict[str, Any]] | None = None,
        tenant_id: str = "default",
        manager_url: str | None = None,
        token: str | None = None,
        max_turns: int = 8,
    ) -> None:
        self.llm, self.instruction, self.use_tool_api = dict(llm), instruction, use_tool_api
        self.max_turns = max_turns
        tool_cfg = tool_cfg or {}
        # this agent's own instances: two agents never share or overwrite each other's tools
        self.tools: dict[str, Tool | ToolServiceProxy] = {}
        for entry in function_list:
            if isinstance(entry, Tool):
                self.tools[entry.name] = entry
            elif use_tool_api:
                self.tools[entry] = ToolServiceProxy(
                    entry, tool_cfg.get(entry, {}), tenant_id, manager_url, token
                )
            else:
                self.tools[entry] = load_tool(entry, tool_cfg.get(entry))
        self.client = openai.OpenAI(
            base_url=self.llm.get("api_base")
            or self.llm.get("base_url")
            or os.environ.get("MSAGENT_ASSISTANT_URL", DEFAULT_ASSISTANT_URL),
            api_key=self.llm.get("api_key") or os.environ.get("OPENAI_API_KEY") or "none",
            timeout=float(self.llm.get("timeout", 120)),
        )
        self.history: list[dict[str, Any]] = []

    def tool_definitions(self) -> list[dict[str, Any]]:
        from ..tools import parameters_to_json_schema

        return [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": tool.description,
                    "parameters": parameters_to_json_schema(tool.parameters),
                },
            }
            for name, tool in self.tools.items()
        ]

    def _execute(self, name: str, arguments: str) -> str:
        tool = self.tools.get(name)
        if tool is None:
            return f"error: no tool named {name}"
        try:
            result = tool.call(arguments)
            if inspect.isawaitable(result):
                result = asyncio.run(result)  # an async local tool, run to completion here
        except (ToolError, ToolServiceError) as exc:
            return f"error: {exc}"
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)

    def run(self, query: str, **kwargs: Any) -> Iterator[str]:
        """Stream the agent's work on `query`; the conversation continues across calls."""
        messages = (
            [{"role": "system", "content": self.instruction}] if self.instruction else []
        ) + self.history
        messages.append({"role": "user", "content": query})
        tools = self.tool_definitions() or openai.NOT_GIVEN
        generation = {k: v for k, v in (self.llm.get("generate_config") or {}).items()}
        loop = AgentLoop(None, self.max_turns)  # every call is answered here, unknown tools with an error
        while loop.next_turn():
            stream = self.client.chat.completions.create(
                model=self.llm.get("model", ""),
                messages=messages,
                tools=tools,
                stream=True,
                **generation,
                **kwargs,
            )
            content, assembler = [], ToolCallAssembler()
            for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    content.append(delta.content)
                    yield delta.content
                assembler.add(delta.tool_calls or [])
            calls = [Call(c["id"], c["name"], c["arguments"]) for c in assembler.calls]
            loop.model_replied("".join(content), calls)
            messages.append(loop.produced[-1])
            for call in calls:
                yield action_text(call)
                observation = self._execute(call.name, call.arguments)
                yield observation_text(observation)
                loop.observed(call, observation)
                messages.append(loop.produced[-1])
        self.history = [m for m in messages if m["role"] != "system"]

    def close(self) -> None:
        for tool in self.tools.values():
            if isinstance(tool, ToolServiceProxy):
                tool.close()
        self.client.close()
