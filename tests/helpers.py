"""Starting our services as real processes, and waiting on them, for the tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from msagent_srv.store.embedded import free_port


class ServiceProcess:
    """`msagent-srv <command>` in a child process, on its own port, logging to a file."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.command, self.env, self.port, self.log_path = command, env, port, log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, ready_path: str = "/health", timeout: float = 120.0, expect_ok: bool = True
    ) -> ServiceProcess:
        """Starts the process and waits until `ready_path` answers; a failed start-up stops it again."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "msagent_srv.cli", *self.command],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: what it starts can be found and stopped
        )
        log.close()
        try:
            self._wait_ready(ready_path, timeout, expect_ok)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, ready_path: str, timeout: float, expect_ok: bool) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.command[0]} exited early:\n{self.log()}")
            try:  # a busy machine may take seconds to answer: that is not a failure to start
                response = requests.get(self.url + ready_path, timeout=5)
                if response.status_code == 200 or not expect_ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.command[0]} did not become ready in {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signals the process and waits; past `timeout` its whole process group is killed."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


def manager_env(redis_url: str, namespace: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "MSAGENT_NAMESPACE": namespace,
        "MSAGENT_LOG_LEVEL": "INFO",
        "MSAGENT_MONITOR_INTERVAL": "0.5",
        **extra,
    }


# the manager's reply envelope (the original servers' keys and their hosted API's status_code)
ENVELOPE_KEYS = {"status_code", "request_id", "message", "output"}
ADMIN = "admin-key-for-tests-0123456789"  # the admin key of services started with keys on


def keys_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`msagent-srv keys ...` against `redis_url`."""
    return subprocess.run(
        [sys.executable, "-m", "msagent_srv.cli", "keys", "--redis-url", redis_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_key(redis_url: str, tenant: str) -> str:
    """A new API key of `tenant`."""
    made = keys_cli(redis_url, "create", "--tenant", tenant, "--name", "ci")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def run_seed(python: str, code: str, timeout: float = 300, **env: str) -> dict:
    """Runs `code` with the original's client; the code prints one JSON line last, which is returned."""
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": "", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/tmp",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# the tool most chat tests offer the model
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LoopbackServer:
    """An aiohttp server on loopback in the test's own loop, answering every path with `handler` (a
    misbehaving model server, a redirecting API...); `async with` gives its URL."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.hits = handler, 0
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        async def every(request: web.Request) -> web.StreamResponse:
            self.hits += 1
            return await self.handler(request)

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", every)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


__all__ = [
    "ADMIN",
    "ENVELOPE_KEYS",
    "ServiceProcess",
    "free_port",
    "keys_cli",
    "manager_env",
    "new_key",
    "wait_for",
]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    build_output: str
