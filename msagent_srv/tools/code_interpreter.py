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
_DRAIN_GRACE = 2.0  # seconds to collect output once the child is gone


def _prepare_child(memory_mb: int) -> None:  # runs in the child before exec
    import resource

    from ..node.hardening import die_with_parent, drop_all_capabilities

    die_with_parent()
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    drop_all_capabilities()


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Says when the child exits. (Process.wait() also waits for its pipes to close, which a process the
    child forked may hold open for as long as it lives.)"""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


def _truncate(data: bytes, total: int) -> str:
    text = data.decode(errors="replace")
    return text + ("\n...[truncated]" if total > len(data) else "")


async def _read_bounded(stream: asyncio.StreamReader | None) -> tuple[bytes, int]:
    """The first _MAX_OUTPUT bytes of a stream and its total length; the rest is read and dropped."""
    kept, total = bytearray(), 0
    if stream is None:
        return b"", 0
    while chunk := await stream.read(65536):
        total += len(chunk)
        if len(kept) < _MAX_OUTPUT:
            kept += chunk[: _MAX_OUTPUT - len(kept)]
    return bytes(kept), total


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes) -> None:
    if stdin is None:
        return
    try:
        stdin.write(data)
        await stdin.drain()
        stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


def _read_result(path: str) -> str | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class CodeInterpreter(Tool):
    """tool_cfg: `timeout` (s, default 10), `memory_limit_mb` (address space of the child, 0 = the
    container's limit only; default 512).

    Each execution runs in its own session, with a clean environment and no capabilities; when it ends
    (or times out, or the call is cancelled) every process of that session is killed, so nothing it
    forked outlives the call."""

    name = "code_interpreter"
    description = (
        "Run Python 3 code and return its stdout, stderr and the value of the last expression. "
        "State is not kept between calls."
    )
    parameters = [
        {"name": "code", "type": "string", "description": "Python source code to run", "required": True},
    ]
    trusted = False
    executes_code = True

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        super().__init__(cfg)
        self._sessions: set[int] = set()
        self._spawning = asyncio.Lock()  # a child being started is not yet in _sessions: no sweep meanwhile

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        code = self.parse_params(params)["code"]
        if not isinstance(code, str):
            raise ToolError("code must be a string")
        try:
            timeout = float(self.cfg.get("timeout", 10))
            memory_mb = int(self.cfg.get("memory_limit_mb", 512))
        except (TypeError, ValueError):
            raise ToolError("tool_cfg.timeout and tool_cfg.memory_limit_mb must be numbers") from None
        with tempfile.TemporaryDirectory(prefix="code-") as workdir:
            result_path = os.path.join(workdir, "result.json")
            loop = asyncio.get_running_loop()
            await self._spawning.acquire()
            try:
                transport, protocol = await loop.subprocess_exec(
                    lambda: _ExitAwareProtocol(limit=1 << 16, loop=loop),
                    sys.executable, "-I", "-c", _RUNNER, result_path,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    cwd=workdir,
                    env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"},
                    preexec_fn=lambda: _prepare_child(memory_mb),
                    start_new_session=True,
                )  # fmt: skip
                process = asyncio.subprocess.Process(transport, protocol, loop)
                self._sessions.add(process.pid)
            finally:
                self._spawning.release()
            feeder = asyncio.create_task(_feed(process.stdin, code.encode()))
            readers = [
                asyncio.create_task(_read_bounded(process.stdout)),
                asyncio.create_task(_read_bounded(process.stderr)),
            ]
            timed_out = False
            try:
                try:
                    await asyncio.wait_for(protocol.exited.wait(), timeout)
                except asyncio.TimeoutError:
                    timed_out = True
            finally:
                # the child and everything it forked, whatever happened (also when the call is cancelled)
                await asyncio.shield(self._end_session(process, protocol))
            # a process that left the session may still hold the pipes: wait a little, not forever
            done, pending = await asyncio.wait([feeder, *readers], timeout=_DRAIN_GRACE)
            for task in pending:
                task.cancel()
            (stdout, out_total), (stderr, err_total) = (
                r.result() if r in done and not r.cancelled() else (b"", 0) for r in readers
            )
            result = await asyncio.to_thread(_read_result, result_path)
        return {
            "stdout": _truncate(stdout, out_total),
            "stderr": _truncate(stderr, err_total)
            + (f"\nTimeoutError: code ran longer than {timeout:g}s" if timed_out else ""),
            "result": result,
            "exit_code": process.returncode,
            "timed_out": timed_out,
        }

    async def _end_session(self, process: asyncio.subprocess.Process, protocol: _ExitAwareProtocol) -> None:
        from ..node.hardening import end_strays, kill_session

        await asyncio.to_thread(kill_session, process.pid)
        try:
            await asyncio.wait_for(protocol.exited.wait(), 5)  # reaped by asyncio, not by the sweep below
        except asyncio.TimeoutError:
            pass
        self._sessions.discard(process.pid)
        # what left the session (setsid) and was orphaned to the node (a subreaper) ends too
        async with self._spawning:
            await asyncio.to_thread(end_strays, set(self._sessions))

    async def close(self) -> None:
        """Kills every execution still running (the node is shutting down)."""
        from ..node.hardening import end_strays, kill_session

        for sid in list(self._sessions):
            await asyncio.to_thread(kill_session, sid)
        self._sessions.clear()
        await asyncio.to_thread(end_strays, set())
