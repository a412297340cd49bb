"""Entry point of a node process: `python -m msagent_srv.node` reads its tool from the environment.

Environment (set by the manager's runtime): MSAGENT_TOOL_NAME, MSAGENT_TOOL_CFG (JSON object),
MSAGENT_NODE_TOKEN, MSAGENT_NODE_HOST, MSAGENT_NODE_PORT, MSAGENT_NODE_CALL_TIMEOUT.
"""

from __future__ import annotations

import json
import os
import sys

from aiohttp import web

from .. import logs
from ..tools import UnknownTool, load_tool
from .app import create_app


def run(
    tool_name: str,
    tool_cfg: dict[str, object],
    host: str,
    port: int,
    token: str,
    call_timeout: float,
    socket_path: str | None = None,
) -> None:
    try:
        tool = load_tool(tool_name, tool_cfg)
    except UnknownTool as exc:
        print(f"msagent-srv node: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(tool, token=token, call_timeout=call_timeout)
    if socket_path:  # a node without a network listens on a Unix socket its manager can reach
        web.run_app(app, path=socket_path, print=None)
    else:
        web.run_app(app, host=host, port=port, print=None)


def main() -> None:
    logs.configure(os.environ.get("MSAGENT_LOG_LEVEL", "INFO"), os.environ.get("MSAGENT_LOG_FORMAT", "json"))
    cfg = json.loads(os.environ.get("MSAGENT_TOOL_CFG") or "{}")
    run(
        os.environ["MSAGENT_TOOL_NAME"],
        cfg,
        os.environ.get("MSAGENT_NODE_HOST", "0.0.0.0"),
        int(os.environ.get("MSAGENT_NODE_PORT", "31513")),
        os.environ.get("MSAGENT_NODE_TOKEN", ""),
        float(os.environ.get("MSAGENT_NODE_CALL_TIMEOUT", "60")),
        os.environ.get("MSAGENT_NODE_SOCKET") or None,
    )
