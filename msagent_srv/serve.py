"""Run one or more aiohttp apps in one event loop until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop where it is installed (Linux/macOS), else on asyncio's
    loop. uvloop is a faster event loop for the same asyncio code."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


class StartupError(RuntimeError):
    """A service cannot start; the message says why and what to change (no traceback is shown)."""


async def serve(
    sites: Sequence[tuple[web.Application, str, int]], on_ready: Callable[[], None] | None = None
) -> None:
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for app, host, port in sites:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port, reuse_address=True).start()
        if on_ready:
            on_ready()
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
