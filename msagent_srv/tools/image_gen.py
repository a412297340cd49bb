"""Text to image on DashScope (通义万相 wanx-v1), the `image_gen` tool of the original ModelScope agents.

DashScope's ImageSynthesis wire, as its SDK speaks it: POST `{base}/services/aigc/text2image/image-synthesis`
with `X-DashScope-Async: enable` makes a task (`output.task_id`, `task_status` PENDING); GET
`{base}/tasks/{task_id}` until the status is SUCCEEDED (`output.results[0].url`) or FAILED/CANCELED/UNKNOWN.
The answer is `![IMAGEGEN](<url>)`, as the original tool gives it.

tool_cfg: `dashscope_api_key` (or `api_key`), `model` (default wanx-v1), `base_url`, `timeout` (seconds the
whole call may take, default 50, under the node's 60 s call timeout), `poll_interval` (first wait between
polls, default 1 s, doubled every third poll up to 5 s as the SDK does). The key comes from the call's
kwargs (`dashscope_api_key`, how the original's agents pass it), else tool_cfg, else the environment
(DASHSCOPE_API_KEY). The base URL is DASHSCOPE_HTTP_BASE_URL (the operator's, always allowed) or DashScope's
public one; a tool_cfg `base_url` is a caller's choice and goes through the process's guard (netguard).
The key is sent only in the Authorization header and never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from typing import Any

import aiohttp

from .. import netguard
from .base import Tool, ToolError

log = logging.getLogger("msagent_srv.tools.image_gen")

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
DEFAULT_MODEL = "wanx-v1"
SIZES = ("1024*1024", "720*1280", "1280*720")
SUBMIT_PATH = "/services/aigc/text2image/image-synthesis"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")
RETRIED_STATUSES = (429, 500, 502, 503, 504)  # a poll answered with these is tried again
MAX_POLLS = 300
MAX_REPLY_BYTES = 1 << 20
MAX_PROMPT_CHARS = 2000
_TASK_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class ImageGen(Tool):
    name = "image_gen"
    description = "AI绘画（图像生成）服务，输入文本描述和图像分辨率，返回根据文本信息绘制的图片URL。"
    parameters = [
        {
            "name": "text",
            "description": "详细描述了希望生成的图像具有什么内容，例如人物、环境、动作等细节描述",
            "required": True,
            "type": "string",
        },
        {
            "name": "resolution",
            "description": "格式是 数字*数字，表示希望生成的图像的分辨率大小，选项有[1024*1024, 720*1280, 1280*720]",
            "required": True,
            "type": "string",
        },
        {
            "name": "lora_index",
            "description": "如果用户要求使用lora的情况下，则使用该参数，没有指定的情况下默认为wanx1.4.5_textlora_huiben2_20240518",
            "required": False,
            "type": "string",
        },
    ]
    trusted = True
    needs_network = True

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> str:
        args = self.parse_params(params)
        prompt = args["text"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ToolError("text must be a non-empty string describing the image")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ToolError(f"text is longer than {MAX_PROMPT_CHARS} characters")
        size = str(args["resolution"]).strip().replace("x", "*").replace("X", "*")
        if size not in SIZES:
            raise ToolError(
                f"resolution must be one of {', '.join(SIZES)}, not {str(args['resolution'])[:40]!r}"
            )
        key = self._key(kwargs)
        model = self._text_option("model", kwargs, DEFAULT_MODEL)
        body: dict[str, Any] = {
            "model": model,
            "input": {"prompt": prompt},
            "parameters": {"size": size, "n": 1, "steps": 10},
        }
        lora_index = args.get("lora_index")
        if lora_index not in (None, ""):
            body["input"]["lora_index"] = str(lora_index)
        seed = kwargs.get("seed", self.cfg.get("seed"))
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
                raise ToolError("seed must be an integer from 0 to 4294967295")
            body["parameters"]["seed"] = seed
        url = await self._synthesize(body, key)
        return f"![IMAGEGEN]({url})"

    # -- options ------------------------------------------------------------------------------------------
    def _key(self, kwargs: dict[str, Any]) -> str:
        # The operator's key goes to the operator's DashScope only: never to a base_url a caller chose.
        operators = os.environ.get("DASHSCOPE_API_KEY") if not self.cfg.get("base_url") else None
        for value in (
            kwargs.get("dashscope_api_key"),
            self.cfg.get("dashscope_api_key"),
            self.cfg.get("api_key"),
            operators,
        ):
            if value is None or value == "":
                continue
            if not isinstance(value, str) or not value.strip() or not value.strip().isprintable():
                raise ToolError("the DashScope API key must be a string of printable characters")
            return value.strip()
        raise ToolError(
            "no DashScope API key: pass dashscope_api_key, set tool_cfg.dashscope_api_key, or set the "
            "DASHSCOPE_API_KEY environment variable (used only with the operator's DashScope, not a "
            "tool_cfg.base_url)"
        )

    def _text_option(self, name: str, kwargs: dict[str, Any], default: str) -> str:
        value = kwargs.get(name) or self.cfg.get(name) or default
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value):
            raise ToolError(f"{name} must be a DashScope model name (letters, digits, '._-')")
        return value

    def _number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.cfg.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ToolError(f"tool_cfg.{name} must be a number from {low:g} to {high:g}")
        return float(value)

    # -- the wire -----------------------------------------------------------------------------------------
    async def _synthesize(self, body: dict[str, Any], key: str) -> str:
        budget = self._number("timeout", 50.0, 1.0, 600.0)
        interval = self._number("poll_interval", 1.0, 0.1, 5.0)
        deadline = time.monotonic() + budget
        configured = os.environ.get("DASHSCOPE_HTTP_BASE_URL") or DEFAULT_BASE_URL  # the operator's: trusted
        base = str(self.cfg.get("base_url") or configured).rstrip("/")
        guard = netguard.current().trusting(configured)
        try:
            await guard.check_url(base)
        except (
            OSError,
            asyncio.TimeoutError,
        ) as exc:  # InvalidUrl, PrivateAddressRefused, a name that does not resolve
            raise ToolError(f"DashScope base URL refused: {exc}") from None
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json; charset=utf-8"}
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(10.0, budget))
        async with guard.session(timeout=timeout, headers=headers) as session:
            status, created = await self._request(
                session,
                "POST",
                base + SUBMIT_PATH,
                deadline,
                json=body,
                headers={"X-DashScope-Async": "enable"},
            )
            if status != 200:
                raise ToolError(f"DashScope refused the task: {_error(status, created)}")
            task_id = str((created.get("output") or {}).get("task_id") or "")
            if not _TASK_ID.fullmatch(task_id):
                raise ToolError("DashScope answered without a usable task id")
            log.info("image_gen task %s submitted (model %s)", task_id, body["model"])
            for poll in range(1, MAX_POLLS + 1):
                if time.monotonic() + interval >= deadline:
                    break
                await asyncio.sleep(interval)
                if poll % 3 == 0:
                    interval = min(interval * 2, 5.0)
                status, task = await self._request(session, "GET", f"{base}/tasks/{task_id}", deadline)
                if status in RETRIED_STATUSES:
                    continue
                if status != 200:
                    raise ToolError(f"DashScope task {task_id} could not be read: {_error(status, task)}")
                output = task.get("output") or {}
                state = str(output.get("task_status") or "")
                if state == "SUCCEEDED":
                    return _result_url(task_id, output)
                if state in TERMINAL:
                    reason = _error(None, output) if output.get("code") or output.get("message") else state
                    raise ToolError(f"DashScope task {task_id} {state}: {reason}")
        raise ToolError(f"DashScope task {task_id} did not finish within {budget:g}s")

    @staticmethod
    async def _request(
        session: aiohttp.ClientSession, method: str, url: str, deadline: float, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON object) of one call, with what is left of the budget as its timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise ToolError("DashScope did not answer in time")
        try:
            async with session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=left, sock_connect=min(10.0, left)), **kwargs
            ) as response:
                raw = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    raw += chunk
                    if len(raw) > MAX_REPLY_BYTES:
                        raise ToolError("DashScope's reply is larger than 1 MB")
                status = response.status
        except netguard.RedirectRefused as exc:
            raise ToolError(f"DashScope refused: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise ToolError(f"DashScope unreachable: {exc.os_error}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ToolError(f"DashScope unreachable: {exc.__class__.__name__}") from None
        try:
            data = json.loads(bytes(raw).decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError):
            if status in RETRIED_STATUSES:
                return status, {}
            raise ToolError(f"DashScope answered HTTP {status} with a body that is not JSON") from None
        return status, data if isinstance(data, dict) else {}


def _error(status: int | None, data: dict[str, Any]) -> str:
    """`HTTP 401 InvalidApiKey: Invalid API-key provided.` from a DashScope error body (shortened)."""
    parts = [f"HTTP {status}"] if status is not None else []
    code, message = data.get("code"), data.get("message")
    if code:
        parts.append(f"{str(code)[:80]}:")
    parts.append(str(message)[:300] if message else "(no message)")
    return " ".join(parts)


def _result_url(task_id: str, output: dict[str, Any]) -> str:
    results = output.get("results") or []
    first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
    url = first.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    reason = (
        _error(None, first) if first.get("code") or first.get("message") else "no image URL in the result"
    )
    raise ToolError(f"DashScope task {task_id} succeeded without an image: {reason}")
