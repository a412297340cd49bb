"""Built-in tools, the tool contract and the entry-point registry, in-process."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from msagent_srv.tools import ToolError, UnknownTool, available_tools, load_tool, parameters_to_json_schema


def test_builtins_are_found_through_entry_points() -> None:
    assert {"RenewInstance", "code_interpreter", "calculator", "amap_weather"} <= set(available_tools())
    with pytest.raises(UnknownTool, match="unknown tool 'nope'"):
        load_tool("nope")


def test_renew_instance_accepts_json_string_or_dict() -> None:
    tool = load_tool("RenewInstance")
    assert tool.call('{"instance_id": 123, "period": "mon"}') == "已完成ECS实例ID为123的续费,续费时长mon月"
    assert tool.call({"instance_id": 9, "period": 2}) == "已完成ECS实例ID为9的续费,续费时长2月"
    with pytest.raises(ToolError, match="period"):
        tool.call('{"instance_id": 1}')
    with pytest.raises(ToolError, match="not valid JSON"):
        tool.call("{oops")


def test_legacy_parameters_become_json_schema() -> None:
    schema = load_tool("RenewInstance").json_schema()
    assert schema == {
        "type": "object",
        "properties": {
            "instance_id": {"type": "string", "description": "ECS实例ID"},
            "period": {"type": "string", "description": "续费时长以月为单位"},
        },
        "required": ["instance_id", "period"],
    }
    already = {"type": "object", "properties": {}}
    assert parameters_to_json_schema(already) is already


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(3 + 4) * 2", "14"),
        ("2^10", "1024"),
        ("sqrt(16) / 8", "0.5"),
        ("round(pi, 3)", "3.142"),
        ("-5 % 3", "1"),
    ],
)
def test_calculator(expression: str, value: str) -> None:
    assert load_tool("calculator").call({"expression": expression}) == value


@pytest.mark.parametrize(
    "expression", ["__import__('os')", "().__class__", "9**99999999", "1/0", "open('x')"]
)
def test_calculator_refuses_what_is_not_arithmetic(expression: str) -> None:
    with pytest.raises(ToolError):
        load_tool("calculator").call({"expression": expression})


def test_code_interpreter_output_result_and_errors() -> None:
    tool = load_tool("code_interpreter", {"timeout": 2})
    try:
        assert asyncio.run(tool.call({"code": "print('hi')\n6 * 7"})) == "hi\n\n42"
        err = asyncio.run(tool.call({"code": "raise ValueError('bad')"}))
        assert err.startswith("Traceback (most recent call last):") and err.endswith("ValueError: bad")
        slow = asyncio.run(tool.call({"code": "import time\ntime.sleep(10)"}))
        assert "Timeout: Code execution exceeded the time limit." in slow and "restarted" in slow
    finally:
        asyncio.run(tool.close())


def test_code_interpreter_memory_limit_stops_a_bomb() -> None:
    tool = load_tool("code_interpreter", {"timeout": 10, "memory_limit_mb": 256})
    try:
        out = asyncio.run(tool.call({"code": "x = bytearray(1024 * 1024 * 1024)"}))
        assert out.endswith("MemoryError")  # raised in the session, which goes on
        assert asyncio.run(tool.call({"code": "1 + 1"})) == "2"
    finally:
        asyncio.run(tool.close())


def test_amap_weather_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMAP_TOKEN", raising=False)
    with pytest.raises(ToolError, match="AMAP_TOKEN"):
        asyncio.run(load_tool("amap_weather").call({"location": "杭州"}))


@pytest.mark.parametrize(
    "expression",
    ["(10**10000)**1000", "10**5000", "(2**9000)*(2**9000)", "factorial(10**6)", "-" * 100_000 + "1"],
)
def test_calculator_bounds_every_intermediate_result(expression: str) -> None:
    """These froze the caller for seconds (a held GIL) or ended in a 500: now each is a quick ToolError."""
    with pytest.raises(ToolError):
        load_tool("calculator").call({"expression": expression})
    assert load_tool("calculator").call({"expression": "2**10000 % 1000"}) == "376"


def test_code_interpreter_kills_what_the_code_forked() -> None:
    tool = load_tool("code_interpreter", {"timeout": 20})
    code = "import subprocess\nprint(subprocess.Popen(['sleep', '300']).pid)"
    try:
        out = asyncio.run(tool.call({"code": code}))
        assert "Timeout" not in out  # the grandchild held the output pipe, not the call
        state = ""
        with contextlib.suppress(OSError):
            state = open(f"/proc/{int(out)}/stat").read().rsplit(")", 1)[1].split()[0]
        assert state in ("", "Z", "X")
    finally:
        asyncio.run(tool.close())
