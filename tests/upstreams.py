"""Scripted stand-ins for remote model APIs (OpenAI, DashScope), speaking their wire formats, on loopback.

Each reply comes from `script` (a list consumed in order, or a function of the request). Like a real
model, a reply is cut at the first stop sequence the request names. DashScope's image synthesis is an async
task, PENDING then RUNNING for `image_polls` polls, then SUCCEEDED with a result URL (or FAILED)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from msagent_srv.store.embedded import free_port

Script = list[str] | Callable[[dict[str, Any]], str]


class ScriptedUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.script: Script = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_status: int | None = None
        self.delay = 0.0
        self.chunks = 10
        self.chunk_delay = 0.0
        self.disconnects = 0
        # requests with `tools`: None = answer them natively from `native_calls`, else reject with this text
        self.reject_tools: str | None = None
        self.native_calls: list[dict[str, Any]] = []
        self.omit_usage = False  # as some OpenAI-compatible servers do
        self.finish_reason: str | None = None  # the finish of text replies (None: "stop")
        self.listed_models = ["upstream-model-a", "upstream-model-b"]  # what GET /v1/models lists
        self.model_lists: list[dict[str, str]] = []  # headers of every GET /v1/models
        self.break_after_chunks: int | None = None  # drop the connection mid-stream after this many
        self.garbage = False  # answer 200 with a body that is not JSON
        # while True, every stream pauses after its first content chunk until the test sets it False
        self.hold_streams = False
        # DashScope image synthesis (wanx): the key it accepts (None: any), how many polls a task stays
        # PENDING/RUNNING, and (code, message) to end tasks FAILED instead of SUCCEEDED
        self.image_key: str | None = None
        self.image_polls = 2
        self.image_failure: tuple[str, str] | None = None
        self.image_requests: list[dict[str, Any]] = []  # {method, path, headers, body} of every image call
        self.image_tasks: dict[str, dict[str, Any]] = {}
        self._epoch = 0  # bumped by reset(): requests admitted before it no longer consume the script
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    # -- control --------------------------------------------------------------------------------------
    def reset(self, script: Script | None = None) -> None:
        self._epoch += 1
        self.script, self.requests, self.headers = script or [], [], []
        self.fail_status, self.delay, self.chunks, self.chunk_delay = None, 0.0, 10, 0.0
        self.disconnects, self.reject_tools, self.native_calls = 0, None, []
        self.omit_usage, self.break_after_chunks, self.garbage = False, None, False
        self.hold_streams, self.finish_reason = False, None
        self.listed_models, self.model_lists = ["upstream-model-a", "upstream-model-b"], []
        self.image_key, self.image_polls, self.image_failure = None, 2, None
        self.image_requests, self.image_tasks = [], {}

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def dashscope_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> ScriptedUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:  # closes the connections clients keep alive (the SDKs' pools)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # -- server ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 << 20)  # as large as real model servers take
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/api/v1/services/aigc/text-generation/generation", self._dashscope)
        app.router.add_post("/api/v1/services/aigc/text2image/image-synthesis", self._image_synthesis)
        app.router.add_get("/api/v1/tasks/{task_id}", self._task)
        runner = self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def _next_text(self, body: dict[str, Any], stops: list[str]) -> str:
        text = self.script(body) if callable(self.script) else (self.script.pop(0) if self.script else "")
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        return text[:cut] if cut >= 0 else text

    def _pieces(self, text: str) -> list[str]:
        size = max(1, -(-len(text) // self.chunks))
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]

    async def _admit(self, request: web.Request) -> dict[str, Any]:
        epoch = self._epoch
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        if (
            epoch != self._epoch
        ):  # a test that has ended: its late request must not eat the next test's script
            raise web.HTTPServiceUnavailable(text="stale request")
        return body

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        if self.fail_status:
            error = {
                "error": {
                    "message": f"scripted failure {self.fail_status}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
            return web.json_response(error, status=self.fail_status)
        if self.garbage:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if body.get("tools") and self.reject_tools:  # as vLLM without a tool parser answers
            error = {
                "object": "error",
                "message": self.reject_tools,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
            return web.json_response({"error": error}, status=400)
        stop = body.get("stop") or []
        text = "" if body.get("tools") else self._next_text(body, [stop] if isinstance(stop, str) else stop)
        created, cid, model = int(time.time()), "chatcmpl-" + uuid.uuid4().hex[:24], body.get("model", "")
        usage = {
            "prompt_tokens": 11,
            "completion_tokens": max(1, len(text) // 4),
            "total_tokens": 11 + max(1, len(text) // 4),
        }
        calls = self.native_calls if body.get("tools") else []
        if not body.get("stream"):
            message = {"role": "assistant", "content": text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message,
                             "logprobs": None, "finish_reason": "tool_calls" if calls else self.finish_reason or "stop"}],
                "usage": None if self.omit_usage else usage, "system_fingerprint": None,
            })  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(payload: dict[str, Any]) -> None:
            await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

        base = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        await send(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
        )
        try:
            for sent, piece in enumerate(self._pieces(text) if text else []):
                if sent == self.break_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()  # a crashed model server: no last chunk, no [DONE]
                    return response
                if sent == 1 and not await self._held(request):
                    raise ConnectionResetError  # the caller went away while the stream was held
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await send(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}
                        ],
                    }
                )
        except ConnectionResetError:
            self.disconnects += 1  # the caller went away mid-stream
            return response
        for index, call in enumerate(calls):
            first = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            rest = {"index": index, "function": {"arguments": call["function"]["arguments"]}}
            for delta in (first, rest):
                await send(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"tool_calls": [delta]},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ],
                    }
                )
        finish = "tool_calls" if calls else self.finish_reason or "stop"
        await send(
            {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}
        )
        if (body.get("stream_options") or {}).get("include_usage") and not self.omit_usage:
            await send({**base, "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _held(self, request: web.Request) -> bool:
        """Waits while `hold_streams` is set; False if the caller hung up meanwhile."""
        while self.hold_streams:
            if request.transport is None or request.transport.is_closing():
                return False
            await asyncio.sleep(0.01)
        return True

    async def _models(self, request: web.Request) -> web.Response:
        """OpenAI's model list: the ids in `listed_models`."""
        self.model_lists.append(dict(request.headers))
        if self.fail_status:
            return web.json_response({"error": {"message": "scripted failure"}}, status=self.fail_status)
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in self.listed_models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's embeddings format; each vector a hashed bag of the text's words (similar texts, near vectors)."""
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(inputs):
            vector = [0.0] * 64
            for token in re.findall(r"\w+", text.lower()):
                vector[zlib.crc32(token.encode()) % 64] += 1.0
            norm = sum(v * v for v in vector) ** 0.5 or 1.0
            data.append({"object": "embedding", "index": index, "embedding": [v / norm for v in vector]})
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    async def _dashscope(self, request: web.Request) -> web.StreamResponse:
        body = await self._admit(request)
        request_id = str(uuid.uuid4())
        if self.fail_status:
            return web.json_response(
                {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": request_id},
                status=self.fail_status,
            )
        parameters = body.get("parameters") or {}
        stop = parameters.get("stop") or []
        text = self._next_text(body, [stop] if isinstance(stop, str) else stop)
        usage = {
            "input_tokens": 13,
            "output_tokens": max(1, len(text) // 4),
            "total_tokens": 13 + max(1, len(text) // 4),
        }

        def payload(content: str, finish: str) -> dict[str, Any]:
            return {
                "output": {
                    "choices": [
                        {"finish_reason": finish, "message": {"role": "assistant", "content": content}}
                    ]
                },
                "usage": usage,
                "request_id": request_id,
            }

        if request.headers.get("X-DashScope-SSE", "").lower() != "enable" and not parameters.get(
            "incremental_output"
        ):
            return web.json_response(payload(text, "stop"))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream;charset=UTF-8", "X-DashScope-Request-Id": request_id}
        )
        await response.prepare(request)
        pieces = self._pieces(text)
        incremental = bool(parameters.get("incremental_output"))
        for n, piece in enumerate(pieces, 1):
            content = piece if incremental else "".join(pieces[:n])  # else each event: the text so far
            event = payload(content, "stop" if n == len(pieces) else "null")
            await response.write(
                f"id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(event, ensure_ascii=False)}\n\n".encode()
            )
        await response.write_eof()
        return response

    # -- DashScope image synthesis: an async task, then polls of /tasks/{id} ------------------------------
    def _image_denied(self, request: web.Request) -> web.Response | None:
        """DashScope's 401 for a missing or wrong key (the key `image_key` names, else any)."""
        auth = request.headers.get("Authorization", "")
        key = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if key and (self.image_key is None or key == self.image_key):
            return None
        message = "Invalid API-key provided." if key else "No API-key provided."
        return web.json_response(
            {"code": "InvalidApiKey", "message": message, "request_id": str(uuid.uuid4())}, status=401
        )

    async def _image_synthesis(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.image_requests.append(
            {"method": "POST", "path": request.path, "headers": dict(request.headers), "body": body}
        )
        request_id = str(uuid.uuid4())
        denied = self._image_denied(request)
        if denied is not None:
            return denied
        if request.headers.get("X-DashScope-Async", "").lower() != "enable":
            return web.json_response(
                {
                    "code": "AccessDenied",
                    "message": "current user api does not support synchronous calls",
                    "request_id": request_id,
                },
                status=403,
            )
        prompt = ((body or {}).get("input") or {}).get("prompt") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not body.get("model") or not prompt:
            return web.json_response(
                {
                    "code": "InvalidParameter",
                    "message": "Field required: input.prompt",
                    "request_id": request_id,
                },
                status=400,
            )
        task_id = str(uuid.uuid4())
        self.image_tasks[task_id] = {"polls": 0, "submitted": time.strftime("%Y-%m-%d %H:%M:%S.000")}
        return web.json_response(
            {"output": {"task_id": task_id, "task_status": "PENDING"}, "request_id": request_id}
        )

    def image_url(self, task_id: str) -> str:
        """The result URL a task ends with (an OSS URL in DashScope's shape)."""
        return (
            f"https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/1d/standin/{task_id}-1.png"
            "?Expires=1700000000&OSSAccessKeyId=LTAIstandin&Signature=c3RhbmRpbg%3D%3D"
        )

    async def _task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        self.image_requests.append(
            {"method": "GET", "path": request.path, "headers": dict(request.headers), "body": None}
        )
        denied = self._image_denied(request)
        if denied is not None:
            return denied
        request_id = str(uuid.uuid4())
        task = self.image_tasks.get(task_id)
        if task is None:  # as DashScope answers for an id it does not know (or has forgotten)
            return web.json_response(
                {"request_id": request_id, "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            )
        task["polls"] += 1
        output: dict[str, Any] = {"task_id": task_id, "submit_time": task["submitted"]}
        if task["polls"] <= self.image_polls:
            output["task_status"] = "PENDING" if task["polls"] == 1 else "RUNNING"
            output["task_metrics"] = {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0}
            return web.json_response({"request_id": request_id, "output": output})
        ended = time.strftime("%Y-%m-%d %H:%M:%S.000")
        output.update(scheduled_time=task["submitted"], end_time=ended)
        if self.image_failure is not None:
            code, message = self.image_failure
            output.update(task_status="FAILED", code=code, message=message)
            output["task_metrics"] = {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 1}
            return web.json_response({"request_id": request_id, "output": output})
        output.update(task_status="SUCCEEDED", results=[{"url": self.image_url(task_id)}])
        output["task_metrics"] = {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
        return web.json_response({"request_id": request_id, "output": output, "usage": {"image_count": 1}})
