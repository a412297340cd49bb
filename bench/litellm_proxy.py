"""The LiteLLM proxy in front of the scripted upstream, from its own virtualenv (bench/.venv-litellm), so
the comparison runs in one benchmark without LiteLLM becoming a dependency of this project."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

from msagent_srv.store.embedded import free_port

from .common import wait_http

VENV = Path(__file__).resolve().parent / ".venv-litellm"


def ensure_litellm() -> Path:
    """The venv's `litellm` executable, creating the venv from PyPI the first time."""
    executable = VENV / "bin" / "litellm"
    if not executable.exists():
        print("installing the LiteLLM proxy into bench/.venv-litellm (first run only)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return executable


MASTER_KEY = "sk-" + secrets.token_hex(24)  # LiteLLM refuses to start without one


async def start_litellm(upstream_port: int, workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    executable = await asyncio.to_thread(ensure_litellm)
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: m\n"
        "    litellm_params:\n"
        "      model: openai/m\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MASTER_KEY": MASTER_KEY,
    }
    process = await asyncio.to_thread(
        subprocess.Popen,
        [str(executable), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    await asyncio.sleep(1)
    return f"http://127.0.0.1:{port}/v1/chat/completions", process
