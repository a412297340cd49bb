"""The tool contract: a name, a description, parameters, and `call(params, **kwargs)` (sync or async)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel

from ..jsonrepair import repair_json


class ToolError(Exception):
    """A tool could not do what was asked; the message is shown to the caller (and the model)."""


class ToolParameter(BaseModel):
    """One parameter in the legacy list form that ModelScope agents use."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object"}


def parameters_to_json_schema(parameters: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """JSON Schema for either parameter form (a schema passes through unchanged)."""
    if isinstance(parameters, dict):
        return parameters
    properties: dict[str, Any] = {}
    required: list[str] = []
    for raw in parameters:
        param = ToolParameter.model_validate(raw)
        prop: dict[str, Any] = {"type": _JSON_TYPES.get(param.type, param.type)}
        if param.description:
            prop["description"] = param.description
        properties[param.name] = prop
        if param.required:
            required.append(param.name)
    return {"type": "object", "properties": properties, "required": required}


# Where built-in tools send their calls, when the operator points them elsewhere (a mirror, a stand-in).
# The manager passes these on to every node; they name endpoints, never credentials.
TOOL_ENDPOINTS = ("DASHSCOPE_HTTP_BASE_URL", "AMAP_BASE_URL")


class Tool:
    """Subclass, set the class attributes and implement `call`. `cfg` is the instance's `tool_cfg`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[list[dict[str, Any]] | dict[str, Any]] = []
    # May run in-process in the assistant (built-ins whose effects stay inside their process say so);
    # every other tool, a plugin's included, runs only in its own node.
    trusted: ClassVar[bool] = False
    # Runs code its callers write (the process runtime refuses such tools unless the operator opts in).
    executes_code: ClassVar[bool] = False
    # Needs outbound network (nodes get none unless their tool says so and the operator allows it).
    needs_network: ClassVar[bool] = False

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        self.cfg: dict[str, Any] = dict(cfg or {})

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def json_schema(self) -> dict[str, Any]:
        return parameters_to_json_schema(self.parameters)

    def parse_params(self, params: str | dict[str, Any] | None) -> dict[str, Any]:
        """Arguments as a dict, from a JSON string or a dict; required ones must be present."""
        if params is None or params == "":
            data: Any = {}
        elif isinstance(params, str):
            try:
                data = json.loads(params)
            except json.JSONDecodeError as exc:
                # the original servers' clients send JSON5 too: "{'instance_id': 123, 'period': 'mon',}"
                data = repair_json(params)
                if data is None:
                    raise ToolError(f"params is not valid JSON: {exc}") from None
        else:
            data = params
        if not isinstance(data, dict):
            raise ToolError("params must be a JSON object")
        schema = self.json_schema()
        missing = [name for name in schema.get("required", []) if name not in data]
        if missing:
            raise ToolError(f"missing required parameter(s): {', '.join(missing)}")
        return data

    def call(self, params: str | dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        """Called when the node shuts down: end whatever the tool still runs."""
