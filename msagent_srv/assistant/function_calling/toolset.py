"""The offered tools of a request, with their parser and prompts made once and reused: agents send the
same tool list on every turn, and building the prompt costs more than parsing the reply."""

from __future__ import annotations

from collections import OrderedDict

from pydantic_core import to_json

from ..protocol import ToolDefinition
from .parser import ToolCallParser
from .prompt import tool_prompt


class ToolSet:
    def __init__(self, tools: list[ToolDefinition]) -> None:
        self.tools = tools
        self.parser = ToolCallParser(tools)
        self._prompts: dict[tuple[bool, str, bool, str | None], str] = {}

    def prompt(self, *, parallel: bool, language: str, required: bool, named: str | None) -> str:
        key = (parallel, language, required, named)
        prompt = self._prompts.get(key)
        if prompt is None:
            prompt = self._prompts[key] = tool_prompt(
                self.tools, parallel=parallel, language=language, required=required, named=named
            )
        return prompt


class ToolSetCache:
    """Least recently used tool sets, keyed by their exact JSON."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._sets: OrderedDict[bytes, ToolSet] = OrderedDict()

    def get(self, tools: list[ToolDefinition]) -> ToolSet:
        key = to_json(tools)
        found = self._sets.get(key)
        if found is not None:
            self._sets.move_to_end(key)
            return found
        found = self._sets[key] = ToolSet(tools)
        if len(self._sets) > self.size:
            self._sets.popitem(last=False)
        return found
