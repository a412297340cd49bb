"""Runs Python code in a child process with a time and memory limit; returns stdout, stderr and the value
of a trailing expression. Meant to run inside a node container, which adds the real isolation."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from typing import Any

from .base import Tool, ToolError

# Executed by the child: runs the code, then evaluates a trailing expression and records its repr.
_RUNNER = r"""
import ast, json, sys
source = sys.stdin.read()
result_path = sys.argv[1]
namespace = {"__name__": "__main__"}
tree = ast.parse(source, "<code>", "exec")
tail = None
if tree.body and isinstance(tree.body[-1], ast.Expr):
    tail = ast.Expression(tree.body.pop().value)
exec(compile(tree, "<code>", "exec"), namespace)
if tail is not None:
    value = eval(compile(tail, "<code>", "eval"), namespace)
    if value is not None:
        with open(result_path, "w") as f:
            json.dump(repr(value), f)
"""

_MAX_OUTPUT = 64 * 1024


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _truncate(data: bytes) -> str:
    text = data[:_MAX_OUTPUT].decode(errors="replace")
    return text + ("\n...[truncated]" if len(data) > _MAX_OUTPUT else "")


def _read_result(path: str) -> str | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class CodeInterpreter(Tool):
    """tool_cfg: `timeout` (s, default 10), `memory_limit_mb` (address space of the child, 0 = the
    container's limit only; default 512)."""

    name = "code_interpreter"
    description = (
        "Run Python 3 code and return its stdout, stderr and the value of the last expression. "
        "State is not kept between calls."
    )
    parameters = [
        {"name": "code", "type": "string", "description": "Python source code to run", "required": True},
    ]
    trusted = False

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        code = self.parse_params(params)["code"]
        if not isinstance(code, str):
            raise ToolError("code must be a string")
        timeout = float(self.cfg.get("timeout", 10))
        memory_mb = int(self.cfg.get("memory_limit_mb", 512))
        with tempfile.TemporaryDirectory(prefix="code-") as workdir:
            result_path = os.path.join(workdir, "result.json")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-c", _RUNNER, result_path,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"},
                preexec_fn=(lambda: _limit_memory(memory_mb)) if memory_mb > 0 else None,
                start_new_session=True,
            )  # fmt: skip
            timed_out = False
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(code.encode()), timeout)
            except asyncio.TimeoutError:
                timed_out = True
                process.kill()
                stdout, stderr = await process.communicate()
            result = await asyncio.to_thread(_read_result, result_path)
        return {
            "stdout": _truncate(stdout),
            "stderr": _truncate(stderr)
            + (f"\nTimeoutError: code ran longer than {timeout:g}s" if timed_out else ""),
            "result": result,
            "exit_code": process.returncode,
            "timed_out": timed_out,
        }
