"""Model backends: OpenAI-compatible servers, DashScope, a local model file; and the router between them."""
