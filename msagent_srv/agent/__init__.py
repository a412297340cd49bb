"""The agent loop, written once for the server's /v1/assistants/lite and the client's Agent."""

from .loop import AgentLoop, Call
from .transcript import action_text, observation_text

__all__ = ["AgentLoop", "Call", "action_text", "observation_text"]
