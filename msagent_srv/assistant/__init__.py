"""Assistant server: OpenAI-compatible chat with emulated function calling, agents, knowledge."""
