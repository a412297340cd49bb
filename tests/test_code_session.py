"""The code interpreter's persistent session, with real processes: in-process, and through the manager with
a Docker node."""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from msagent_srv.tools import load_tool
from msagent_srv.tools.base import Tool
from msagent_srv.tools.code_interpreter import RESTART_TEXT, SUCCESS_TEXT, TIMEOUT_TEXT, extract_code

from .helpers import ServiceProcess, wait_for
from .service_calls import create_running, post


@pytest.fixture
def tool() -> Iterator[Tool]:
    tool = load_tool("code_interpreter", {"timeout": 3})
    try:
        yield tool
    finally:
        asyncio.run(tool.close())


def run(tool: Tool, params: object) -> str:
    out = asyncio.run(tool.call(params))  # a new event loop each time: the session outlives them
    assert isinstance(out, str)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_state_is_kept_between_calls(tool: Tool) -> None:
    assert run(tool, {"code": "x = 5"}) == SUCCESS_TEXT
    assert run(tool, {"code": "print(x * 2)"}) == "10\n"
    assert run(tool, {"code": "def double(v):\n    return 2 * v\nimport math"}) == SUCCESS_TEXT
    assert run(tool, {"code": "double(math.floor(x + 0.5))"}) == "10"


def test_the_three_input_forms(tool: Tool) -> None:
    assert run(tool, {"code": "a = 1"}) == SUCCESS_TEXT
    assert run(tool, '{"code": "a += 1"}') == SUCCESS_TEXT  # a JSON string
    assert run(tool, "{'code': 'a += 1',}") == SUCCESS_TEXT  # JSON5, as the original's clients send
    assert run(tool, "a += 1\nprint(a)") == "4\n"  # raw code
    chatter = "Let me compute it.\n```python\nb = a * 10\nb\n```\nThat should do."
    assert run(tool, chatter) == "40"
    assert run(tool, "Now:\n```py\nprint(b + 1)\n```") == "41\n"
    assert run(tool, {"code": "```python\nb - 1\n```"}) == "39"  # a fenced argument
    assert run(tool, {"code": "s = '```'\ns"}) == "'```'"  # a fence inside real code is code
    assert run(tool, {"code": "   "}) == ""
    assert extract_code('{"code": "1"}') == "1" and extract_code("{1: 2}") == "{1: 2}"


def test_output_format_stdout_then_value_then_error(tool: Tool) -> None:
    assert run(tool, {"code": "print('hi')\n6 * 7"}) == "hi\n\n42"
    assert (
        run(tool, {"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\n'v'"})
        == "out\nerr\n\n'v'"
    )
    assert run(tool, {"code": "None"}) == SUCCESS_TEXT
    sub = run(tool, {"code": "import subprocess\nsubprocess.run(['echo', 'from a child'])\nprint('after')"})
    assert sub == "from a child\nafter\n"
    big = run(tool, {"code": "print('x' * 200_000)"})
    assert big.endswith("...[truncated]") and len(big) < 70_000


def test_errors_are_formatted_as_tracebacks_of_the_cells(tool: Tool) -> None:
    assert run(tool, {"code": "def f():\n    return 1 / 0"}) == SUCCESS_TEXT
    out = run(tool, {"code": "print('before')\nf()"})
    assert out.startswith("before\n\nTraceback (most recent call last):\n")
    assert '  File "<cell-2>", line 2, in <module>\n    f()' in out
    assert '  File "<cell-1>", line 2, in f\n    return 1 / 0' in out  # source of an earlier cell
    assert out.endswith("ZeroDivisionError: division by zero")
    syntax = run(tool, {"code": "print(1"})
    assert syntax.startswith('  File "<cell-3>", line 1') and "SyntaxError" in syntax
    assert "ast.py" not in syntax and "<string>" not in out
    assert run(tool, {"code": "input()"}).endswith(
        "NotImplementedError: Python input() function is disabled."
    )
    assert run(tool, {"code": "exit(3)"}).endswith("SystemExit: 3")  # the session does not exit
    assert run(tool, {"code": "bytearray(1024 ** 4)"}).endswith("MemoryError")  # the memory limit
    assert run(tool, {"code": "f"}).startswith("<function f")  # and the state survived all of it


def test_a_timeout_restarts_the_session_and_says_so(tool: Tool) -> None:
    assert run(tool, {"code": "kept = 'yes'"}) == SUCCESS_TEXT
    out = run(tool, {"code": "print('started', flush=True)\nimport time\ntime.sleep(60)"})
    assert out == f"started\n\n{TIMEOUT_TEXT}\nNote: {RESTART_TEXT}."
    assert "NameError: name 'kept' is not defined" in run(tool, {"code": "kept"})  # state lost
    assert run(tool, {"code": "kept = 1\nkept"}) == "1"  # and the fresh session works


def test_a_crash_restarts_the_session_and_says_so(tool: Tool) -> None:
    assert run(tool, {"code": "kept = 'yes'\nimport os"}) == SUCCESS_TEXT
    out = run(tool, {"code": "print('bye')\nos._exit(3)"})
    assert out == (
        f"bye\n\nThe code interpreter crashed: the session process exited with code 3.\nNote: {RESTART_TEXT}."
    )
    killed = run(tool, {"code": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"})
    assert "killed by SIGKILL" in killed and RESTART_TEXT in killed
    assert "NameError" in run(tool, {"code": "kept"})
    assert run(tool, {"code": "2 + 2"}) == "4"


def test_forked_children_end_with_the_call_and_the_session_survives(tool: Tool) -> None:
    session_pid = int(run(tool, {"code": "import os, subprocess\nos.getpid()"}))
    popen = run(tool, {"code": "p = subprocess.Popen(['sleep', '300'])\np.pid"})
    forked = run(tool, {"code": "pid = os.fork()\nif pid == 0:\n    import time\n    time.sleep(300)\npid"})
    escaper = "q = subprocess.Popen(['sleep', '300'], start_new_session=True)\nq.pid"
    escaped = run(tool, {"code": escaper})
    for pid in (int(popen), int(forked), int(escaped)):
        wait_for(lambda pid=pid: not alive(pid), 30, what=f"process {pid} to end")
    assert int(run(tool, {"code": "os.getpid()"})) == session_pid and alive(session_pid)
    assert run(tool, {"code": "p.pid"}) == popen  # its state too


def test_a_cancelled_call_ends_its_code_now(tool: Tool) -> None:
    async def cancel_midway() -> None:
        call = asyncio.ensure_future(tool.call({"code": "import time\ntime.sleep(60)"}))
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(asyncio.wait_for(cancel_midway(), 30))
    assert run(tool, {"code": "1 + 1"}) == "2"


def test_close_ends_the_session() -> None:
    tool = load_tool("code_interpreter", {"timeout": 5})
    pid = int(run(tool, {"code": "import os\nos.getpid()"}))
    asyncio.run(tool.close())
    wait_for(lambda: not alive(pid), 30, what="the session to end")


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed here: the figure path (savefig + Markdown image) is not exercised",
)
def test_matplotlib_figures_come_back_as_markdown_images(tool: Tool) -> None:
    out = run(
        tool, {"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nprint('drawn')"}
    )
    match = re.fullmatch(r"drawn\n\n\n!\[IMAGEGEN\]\((\S+\.png)\)", out)
    assert match, out
    assert open(match.group(1), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert run(tool, {"code": "len(plt.get_fignums())"}) == "0"  # each figure is shown once


def test_two_calls_through_the_manager_share_a_session(manager: ServiceProcess) -> None:
    create_running(manager, "code_interpreter", "stateful")

    def call(code: str) -> object:
        reply = post(manager, "/execute_tool", tool_name="code_interpreter", tenant_id="stateful",
                     params={"code": code})  # fmt: skip
        assert reply.status_code == 200, reply.text
        return reply.json()["output"]

    assert call("x = 5\nimport os") == SUCCESS_TEXT
    assert call("print(x * 2)") == "10\n"
    pid = call("os.getpid()")
    assert call("os._exit(1)") == (
        f"The code interpreter crashed: the session process exited with code 1.\nNote: {RESTART_TEXT}."
    )
    assert "NameError" in str(call("x")) and call("import os\nos.getpid()") != pid
