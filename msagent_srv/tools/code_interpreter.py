"""The code interpreter, as the original's: one Python session per tool instance that keeps its state
between calls; code as `{"code": ...}`, raw, or fenced with chatter around; the answer is one string
(the output, then the last expression's value, then the error, then the figures as Markdown images).

The session is a child process (see python_session) with a time and memory limit, in its own session, with
a clean environment and no capabilities; what a call's code forks is killed when the call ends. Meant to run
inside a node container, which adds the real isolation."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
from typing import Any

from ..jsonrepair import repair_json
from .base import Tool, ToolError
from .python_session import Outcome, PythonSession, Ticket

TIMEOUT_TEXT = "Timeout: Code execution exceeded the time limit."
RESTART_TEXT = "the session was restarted: state was lost"
SUCCESS_TEXT = "The code executed successfully."
_FENCE = re.compile(r"```[^\n]*\n(.+?)```", re.S)
_DEFAULT_STATIC_URL = "http://127.0.0.1:7866/static"


def _fenced(text: str) -> str | None:
    match = _FENCE.search(text)
    return match.group(1) if match else None


def _compiles(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code(params: str | dict[str, Any] | None) -> str:
    """The code of a call: `{"code": ...}` (a JSON object, JSON5 too, or a dict), else the first fenced block
    of the text, else the text itself. A `code` value that is not Python but holds a fenced block gives
    that block (models fence their arguments too)."""
    if params is None:
        return ""
    data: Any = params
    if isinstance(params, str):
        data = None
        stripped = params.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except ValueError:
                data = repair_json(stripped)
        if not (isinstance(data, dict) and "code" in data):
            return _fenced(params) or params
    if not isinstance(data, dict):
        raise ToolError("params must be a JSON object or code")
    code = data.get("code")
    if not isinstance(code, str):
        raise ToolError("missing required parameter(s): code" if code is None else "code must be a string")
    if "```" in code and not _compiles(code):
        return _fenced(code) or code
    return code


class CodeInterpreter(Tool):
    """tool_cfg: `timeout` (s per call, default 10), `memory_limit_mb` (address space of the session, 0 =
    the container's limit only; default 512), `image_server` (figures as `static_url`/<file> instead of
    their path; `static_url` defaults to CODE_INTERPRETER_STATIC_URL, else http://127.0.0.1:7866/static).

    State lives in one session process per instance, started on the first call. A timeout, a crash or a
    cancelled call ends that process and everything it forked; the answer says the session was restarted,
    and the next call starts a fresh one."""

    name = "code_interpreter"
    description = (
        "Run Python 3 code in a persistent session (variables, imports and functions are kept between "
        "calls) and return its output, the value of the last expression and any error; matplotlib "
        "figures come back as Markdown images."
    )
    parameters = [
        {"name": "code", "type": "string", "description": "Python source code to run", "required": True},
    ]
    trusted = False
    executes_code = True

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        super().__init__(cfg)
        try:
            self.timeout = float(self.cfg.get("timeout", 10))
            memory_mb = int(self.cfg.get("memory_limit_mb", 512))
        except (TypeError, ValueError):
            raise ToolError("tool_cfg.timeout and tool_cfg.memory_limit_mb must be numbers") from None
        self.session = PythonSession(memory_mb)

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        code = extract_code(params)
        if not code.strip():
            return ""
        ticket = Ticket()
        try:
            outcome = await asyncio.to_thread(self.session.run, code, self.timeout, ticket)
        except asyncio.CancelledError:
            ticket.cancel()  # the code stops now, not at its timeout; the thread then returns
            raise
        except TimeoutError as exc:
            raise ToolError(str(exc)) from None
        return self.format(outcome)

    def _image_link(self, path: str) -> str:
        if self.cfg.get("image_server"):
            base = str(self.cfg.get("static_url") or os.environ.get("CODE_INTERPRETER_STATIC_URL", ""))
            return f"{(base or _DEFAULT_STATIC_URL).rstrip('/')}/{os.path.basename(path)}"
        return path

    def format(self, outcome: Outcome) -> str:
        """As the original joins a cell's messages: each text on its own line(s), each image after a blank
        line, "The code executed successfully." when there is nothing to say."""
        texts = [outcome.output, outcome.value, outcome.error]
        if outcome.timed_out:
            texts.append(TIMEOUT_TEXT)
        if outcome.crashed:
            texts.append(f"The code interpreter crashed: {outcome.crashed}.")
        if outcome.restarted:
            texts.append(f"Note: {RESTART_TEXT}.")
        result = "".join(f"\n{text}" for text in texts if text)
        result += "".join(f"\n\n![IMAGEGEN]({self._image_link(path)})" for path in outcome.images)
        return result.lstrip("\n") or SUCCESS_TEXT

    async def close(self) -> None:
        """Ends the session and everything it runs (the node is shutting down)."""
        await asyncio.to_thread(self.session.close)
