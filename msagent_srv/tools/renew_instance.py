"""The classic demo tool of ModelScope agents: renew an ECS instance."""

from __future__ import annotations

from typing import Any

from .base import Tool


class RenewInstance(Tool):
    name = "RenewInstance"
    trusted = True
    description = "续费一台包年包月ECS实例"
    parameters = [
        {"name": "instance_id", "type": "string", "description": "ECS实例ID", "required": True},
        {"name": "period", "type": "string", "description": "续费时长以月为单位", "required": True},
    ]

    def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        args = self.parse_params(params)
        return f"已完成ECS实例ID为{args['instance_id']}的续费,续费时长{args['period']}月"
