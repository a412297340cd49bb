"""Clients of the assistant server: chat through the official `openai` SDK, `assistants_lite`, and file
upload. `AssistantClient` (sync, requests) and `AsyncAssistantClient` (aiohttp) mirror each other."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import openai
import requests

DEFAULT_ASSISTANT_URL = "http://localhost:31512"
ASSISTANT_URL_ENV = "MSAGENT_ASSISTANT_URL"


class AssistantError(Exception):
    """The assistant server refused or failed a request; `code` and `param` come from its error envelope."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param


def assistant_url(explicit: str | None = None) -> str:
    url = (explicit or os.environ.get(ASSISTANT_URL_ENV) or DEFAULT_ASSISTANT_URL).rstrip("/")
    return url.removesuffix("/v1")


def _raise_for(status: int, raw: bytes) -> None:
    try:
        error = json.loads(raw).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    raise AssistantError(
        error.get("message") or f"HTTP {status}", status, error.get("code"), error.get("param")
    )


def _lite_body(
    messages: str | Sequence[dict[str, Any]], uuid_str: str, stream: bool, options: dict[str, Any]
) -> dict[str, Any]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {
        "messages": list(messages),
        "uuid_str": uuid_str,
        "stream": stream,
        **{k: v for k, v in options.items() if v is not None},
    }


class AssistantClient:
    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0
    ) -> None:
        self.base_url, self.timeout = assistant_url(base_url), timeout
        self.chat = openai.OpenAI(base_url=self.base_url + "/v1", api_key=api_key or "none", timeout=timeout)
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def _check(self, response: requests.Response) -> Any:
        if response.status_code != 200:
            _raise_for(response.status_code, response.content)
        return response.json().get("output")

    def assistants_lite(
        self,
        messages: str | Sequence[dict[str, Any]],
        *,
        uuid_str: str = "default",
        stream: bool = False,
        **options: Any,
    ) -> Any:
        """The agent's reply `{response, tool_calls, citations}`, or with `stream=True` an iterator of
        the streamed lines (model text, `Action:`, `Observation:`, `Answer:`)."""
        body = _lite_body(messages, uuid_str, stream, options)
        response = self._session.post(
            self.base_url + "/v1/assistants/lite", json=body, stream=stream, timeout=self.timeout
        )
        if not stream:
            return self._check(response)
        if response.status_code != 200:
            _raise_for(response.status_code, response.content)
        return self._lines(response)

    @staticmethod
    def _lines(response: requests.Response) -> Iterator[str]:
        with response:
            yield from response.iter_lines(decode_unicode=True)

    def upload_files(self, uuid_str: str, paths: Sequence[str | Path]) -> dict[str, Any]:
        handles = [open(p, "rb") for p in paths]
        try:
            files = [("files", (Path(p).name, h)) for p, h in zip(paths, handles, strict=True)]
            response = self._session.post(
                self.base_url + "/v1/files", data={"uuid_str": uuid_str}, files=files, timeout=self.timeout
            )
        finally:
            for handle in handles:
                handle.close()
        return self._check(response)

    def list_files(self, uuid_str: str) -> list[dict[str, Any]]:
        response = self._session.get(
            self.base_url + "/v1/files", params={"uuid_str": uuid_str}, timeout=self.timeout
        )
        return self._check(response)["files"]

    def delete_file(self, uuid_str: str, name: str) -> None:
        self._check(
            self._session.delete(
                self.base_url + "/v1/files", params={"uuid_str": uuid_str, "name": name}, timeout=self.timeout
            )
        )

    def close(self) -> None:
        self.chat.close()
        self._session.close()


class AsyncAssistantClient:
    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0
    ) -> None:
        self.base_url = assistant_url(base_url)
        self.chat = openai.AsyncOpenAI(
            base_url=self.base_url + "/v1", api_key=api_key or "none", timeout=timeout
        )
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def _output(self, response: aiohttp.ClientResponse) -> Any:
        raw = await response.read()
        if response.status != 200:
            _raise_for(response.status, raw)
        return json.loads(raw).get("output")

    async def assistants_lite(
        self,
        messages: str | Sequence[dict[str, Any]],
        *,
        uuid_str: str = "default",
        stream: bool = False,
        **options: Any,
    ) -> Any:
        body = _lite_body(messages, uuid_str, stream, options)
        if not stream:
            async with self.session.post(self.base_url + "/v1/assistants/lite", json=body) as response:
                return await self._output(response)
        return self._lines(body)

    async def _lines(self, body: dict[str, Any]) -> AsyncIterator[str]:
        async with self.session.post(self.base_url + "/v1/assistants/lite", json=body) as response:
            if response.status != 200:
                _raise_for(response.status, await response.read())
            async for line in response.content:
                yield line.decode().rstrip("\n")

    async def upload_files(self, uuid_str: str, paths: Sequence[str | Path]) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("uuid_str", uuid_str)
        for path in paths:
            data = await asyncio.to_thread(Path(path).read_bytes)
            form.add_field("files", data, filename=Path(path).name)
        async with self.session.post(self.base_url + "/v1/files", data=form) as response:
            return await self._output(response)

    async def list_files(self, uuid_str: str) -> list[dict[str, Any]]:
        async with self.session.get(self.base_url + "/v1/files", params={"uuid_str": uuid_str}) as response:
            return (await self._output(response))["files"]

    async def delete_file(self, uuid_str: str, name: str) -> None:
        async with self.session.delete(
            self.base_url + "/v1/files", params={"uuid_str": uuid_str, "name": name}
        ) as response:
            await self._output(response)

    async def close(self) -> None:
        await self.chat.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
