"""Requests of the other wire formats (Responses API, Anthropic Messages) as the engine's chat request."""
