"""Entry point of a node process: `python -m msagent_srv.node` reads its tool from the environment.

Environment (set by the manager's runtime): MSAGENT_TOOL_NAME, MSAGENT_NODE_HOST, MSAGENT_NODE_PORT,
MSAGENT_NODE_CALL_TIMEOUT, MSAGENT_NODE_SOCKET. The secrets (node token, tool_cfg) are not in the
environment, where the tool's code could read them from /proc: they come as one JSON object
`{"token": ..., "tool_cfg": {...}}` on stdin (MSAGENT_NODE_SECRETS=stdin, the process runtime) or in a
file the node reads and deletes (MSAGENT_NODE_SECRETS=<path>, the Docker runtime). MSAGENT_NODE_TOKEN and
MSAGENT_TOOL_CFG still work for a node started by hand, and are dropped from the environment once read.
The node makes itself non-dumpable, so processes of its user cannot read its memory or environment.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import logs
from ..tools import UnknownTool, load_tool
from .app import create_app
from .hardening import become_subreaper, set_non_dumpable

SECRETS_ENV = "MSAGENT_NODE_SECRETS"


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


def read_secrets(environ: dict[str, str] | os._Environ[str]) -> tuple[str, dict[str, Any]]:
    """The node token and tool_cfg, from where the runtime put them; nothing of them is left behind."""
    source = environ.pop(SECRETS_ENV, "")
    token = environ.pop("MSAGENT_NODE_TOKEN", "")
    cfg: Any = json.loads(environ.pop("MSAGENT_TOOL_CFG", "") or "{}")
    if source == "stdin":
        data = json.loads(sys.stdin.readline() or "{}")
        sys.stdin.close()
        token, cfg = data.get("token", token), data.get("tool_cfg", cfg)
    elif source:
        path = Path(source)
        data = json.loads(path.read_text())
        path.unlink(missing_ok=True)
        token, cfg = data.get("token", token), data.get("tool_cfg", cfg)
    if not isinstance(cfg, dict):
        raise SystemExit("msagent-srv node: tool_cfg must be a JSON object")
    return str(token), cfg


def main() -> None:
    set_non_dumpable()  # first: before any secret is in memory
    become_subreaper()  # what a tool's processes orphan comes back to the node, to be ended
    logs.configure(os.environ.get("MSAGENT_LOG_LEVEL", "INFO"), os.environ.get("MSAGENT_LOG_FORMAT", "json"))
    token, cfg = read_secrets(os.environ)
    run(
        os.environ["MSAGENT_TOOL_NAME"],
        cfg,
        os.environ.get("MSAGENT_NODE_HOST", "0.0.0.0"),
        int(os.environ.get("MSAGENT_NODE_PORT", "31513")),
        token,
        float(os.environ.get("MSAGENT_NODE_CALL_TIMEOUT", "60")),
        os.environ.get("MSAGENT_NODE_SOCKET") or None,
    )
