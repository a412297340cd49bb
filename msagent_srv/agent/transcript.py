"""An agent's work as text, framed as the original ModelScope servers framed it: each call as `Action` /
`Action Input`, each result as `Observation: <result>...</result>` followed by `Answer:`."""

from __future__ import annotations

from .loop import Call


def action_text(call: Call) -> str:
    return f"\nAction: {call.name}\nAction Input: {call.arguments}\n"


def observation_text(observation: str) -> str:
    return f"Observation: <result>{observation}</result>\nAnswer: "
