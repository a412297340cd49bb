"""The OpenAI Agents SDK, unmodified and with its default model settings (the Responses API), runs an
agent with a `@function_tool` to completion against the assistant; function calling is emulated for a
model that only writes text (the scripted upstream)."""

from __future__ import annotations

import asyncio

import agents
import openai

from .helpers import ServiceProcess
from .upstreams import ScriptedUpstream


def test_agent_with_a_function_tool_runs_to_completion(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(['Action: get_weather\nAction Input: {"city": "Paris"}', "It is 24 C and sunny in Paris."])
    asked: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        asked.append(city)
        return f"{city}: 24 C, sunny"

    async def run() -> agents.RunResult:
        client = openai.AsyncOpenAI(base_url=module_assistant.url + "/v1", api_key="sk-user", max_retries=0)
        model = agents.OpenAIResponsesModel("scripted-model", client)
        agent = agents.Agent(
            name="weather", instructions="Answer weather questions.", tools=[get_weather], model=model
        )
        try:
            return await agents.Runner.run(agent, "What's the weather in Paris?")
        finally:
            await client.close()

    agents.set_tracing_disabled(True)  # no export to OpenAI's servers
    result = asyncio.run(run())
    assert result.final_output == "It is 24 C and sunny in Paris."
    assert asked == ["Paris"]  # the SDK ran our parsed call
    first, second = (r["messages"] for r in upstream.requests)
    system = first[0]["content"]  # the agent's instructions, then the emulated tool prompt
    assert first[0]["role"] == "system" and system.startswith("Answer weather questions.")
    assert "### get_weather" in system and '"city"' in system and "tools" not in upstream.requests[0]
    transcript = "\n".join(m["content"] or "" for m in second)
    assert "Paris: 24 C, sunny" in transcript  # the tool's output went up in the second turn
