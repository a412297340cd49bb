"""The tool manager: the HTTP API that creates, checks and removes tool nodes and proxies calls to them."""
