"""msagent-srv: a serving stack for LLM agents."""

__version__ = "0.1.0"
