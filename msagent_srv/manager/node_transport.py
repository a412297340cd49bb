"""How the manager reaches its nodes over HTTP: the shared keep-alive TCP session, or one session per node
for nodes without a network (their Unix socket)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..store import ToolInstance

# Connections kept to one node at most, over TCP or its Unix socket: what the manager holds for a node.
CONNECTIONS_PER_NODE = 64


class NodeTransport:
    def __init__(self, session: aiohttp.ClientSession, connect_host: str) -> None:
        self.session, self.connect_host = session, connect_host
        self._unix_sessions: dict[str, aiohttp.ClientSession] = {}

    def endpoint_of(self, record: ToolInstance) -> str:
        """`http://host:port`, or `unix:/path` for a node without a network."""
        return record.endpoint or f"http://{self.connect_host}:{record.port}"

    def request(self, endpoint: str, method: str, path: str, **kwargs: Any) -> Any:
        """An HTTP request to a node: over the shared TCP session, or over the node's Unix socket."""
        if endpoint.startswith("unix:"):
            socket_path = endpoint.removeprefix("unix:")
            session = self._unix_sessions.get(socket_path)
            if session is None or session.closed:
                session = self._unix_sessions[socket_path] = aiohttp.ClientSession(
                    connector=aiohttp.UnixConnector(
                        path=socket_path, limit=CONNECTIONS_PER_NODE, keepalive_timeout=30
                    ),
                    timeout=self.session.timeout,
                )
            return session.request(method, f"http://node{path}", **kwargs)
        return self.session.request(method, endpoint + path, **kwargs)

    async def forget(self, endpoint: str) -> None:
        """The node is gone: close the session its Unix socket had."""
        unix = self._unix_sessions.pop(endpoint.removeprefix("unix:"), None)
        if unix is not None:
            await unix.close()

    async def close(self) -> None:
        for session in self._unix_sessions.values():
            await session.close()
        self._unix_sessions.clear()
