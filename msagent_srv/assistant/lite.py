"""/v1/assistants/lite: an agent loop on top of chat completions, with tools, knowledge and history.

One run yields events (text as it arrives, tool calls, observations, citations, the end), which the
route writes as the legacy chunked text, as server-sent events, or gathers into one JSON reply.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import ValidationError

from .. import netguard
from ..agent import AgentLoop, Call
from ..identity import Space
from ..netguard import ensure_public_url
from ..settings import Settings
from ..store import ChatMessage as StoredMessage
from ..store import Store
from ..tools import Tool, ToolError, UnknownTool, load_tool, parameters_to_json_schema
from ..toolservice import AsyncToolServiceProxy, ToolServiceError
from ..web.errors import ApiError
from .backends.base import Backend
from .backends.dashscope_backend import DashScopeBackend
from .backends.http1 import Http1Client
from .backends.openai_compat import OpenAICompatibleBackend
from .backends.router import BackendRouter
from .engine import ChatEngine, TextDelta, ToolCallEnd
from .knowledge.base import KnowledgeBase
from .protocol import ChatCompletionRequest, ChatMessage, LiteAgentRequest, ToolDefinition
from .tokens import count_text

Executor = Callable[[str], Awaitable[str]]


@dataclass
class Event:
    kind: str  # delta | tool_call | observation | citations | done
    data: dict[str, Any] = field(default_factory=dict)


def _stored(message: ChatMessage) -> StoredMessage:
    return StoredMessage(
        role=message.role, name=message.name, tool_call_id=message.tool_call_id,
        content=message.text() if message.content is not None else None,
        tool_calls=[c.model_dump() for c in message.tool_calls] if message.tool_calls else None,
    )  # fmt: skip


def _as_text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


# model_server values the original servers' clients send, by the backend that serves them
_ORIGINAL_SERVERS = {"azure_openai": "openai", "vllm": "openai", "vllm-server": "openai"}


def backend_family(model_server: str) -> str:
    """Our backend for a model_server value: `dashscope_qwen` etc. are DashScope, vLLM and Azure are
    OpenAI-compatible; other values are kept (with an api_base, they are OpenAI-compatible servers)."""
    if model_server.startswith("dashscope"):
        return "dashscope"
    return _ORIGINAL_SERVERS.get(model_server, model_server)


def _bad_api_base(message: str) -> ApiError:
    return ApiError(400, message, param="llm_config.api_base", code="invalid_api_base")


class LiteAgentService:
    def __init__(
        self,
        settings: Settings,
        chat: ChatEngine,
        router: BackendRouter,
        session: aiohttp.ClientSession,
        http: Http1Client,
        store: Store,
        knowledge: KnowledgeBase | None,
    ) -> None:
        self.settings, self.chat, self.router, self.session = settings, chat, router, session
        self.http = http
        self.store, self.knowledge = store, knowledge
        self.metrics = chat.metrics

    # -- setup ------------------------------------------------------------------------------------------
    async def backend(self, request: LiteAgentRequest, upstream_key: str | None) -> Backend:
        llm = request.llm_config
        server = backend_family(
            llm.model_server or self.router.routes.get(llm.model) or self.settings.model_server
        )
        timeout = self.settings.upstream_timeout
        if llm.api_base:  # any model_server with an api_base but DashScope is an OpenAI-compatible server
            await self._check_api_base(llm.api_base)
            if server == "dashscope":
                backend: Backend = DashScopeBackend(self.session, llm.api_base, llm.api_key, timeout)
            else:
                backend = OpenAICompatibleBackend(
                    self.http, llm.api_base, llm.api_key, name=server, timeout=timeout,
                    needs_key=server != "ollama",
                )  # fmt: skip
        elif server in self.router.backends:
            backend = self.router.backends[server]
        else:
            raise ApiError(
                400,
                f"model_server {server!r} is not configured on this server",
                param="llm_config.model_server",
                code="unknown_model_server",
            )
        if backend.needs_key and not (llm.api_key or getattr(backend, "api_key", None) or upstream_key):
            raise ApiError(
                400,
                f"llm_config.api_key is required for {server}",
                param="llm_config.api_key",
                code="missing_api_key",
            )
        return backend

    async def _check_api_base(self, url: str) -> None:
        """A caller's api_base must be an http(s) URL of a public host (unless the operator allows others)."""
        try:
            netguard.origin(url)  # an http(s) URL with a usable host and port, whatever the guard allows
        except netguard.InvalidUrl as exc:
            raise _bad_api_base(
                f"llm_config.api_base must be an http(s) URL with a valid host: {exc}"
            ) from None
        if self.settings.allow_private_urls:
            return
        try:
            await ensure_public_url(url)
        except OSError as exc:  # PrivateAddressRefused, or a name that does not resolve
            raise _bad_api_base(f"llm_config.api_base refused: {exc}") from None

    async def tools(
        self, request: LiteAgentRequest, proxies: list[AsyncToolServiceProxy], manager_key: str | None = None
    ) -> tuple[list[ToolDefinition], dict[str, Executor]]:
        """Definitions for the model and executors for the tools this server runs; remote proxies are
        added to `proxies` for the caller to close."""
        definitions: list[ToolDefinition] = []
        executors: dict[str, Executor] = {}
        for entry in request.agent_config.tools:
            if isinstance(entry, ToolDefinition):  # the caller runs it: the loop hands the call back
                definitions.append(entry)
                continue
            cfg = request.agent_config.tool_cfg.get(entry, {})
            if request.use_tool_api:
                proxy = await self._remote(entry, cfg, request.tenant_id, manager_key)
                proxies.append(proxy)
                executors[entry] = self._remote_executor(proxy)
                info = (proxy.name, proxy.description, proxy.parameters)
            else:
                try:
                    tool = load_tool(entry, cfg)
                except UnknownTool as exc:
                    raise ApiError(400, str(exc), param="agent_config.tools", code="unknown_tool") from None
                if not tool.trusted:
                    raise ApiError(
                        400,
                        f"tool {entry} runs only in a container: set use_tool_api to true",
                        param="agent_config.tools",
                        code="tool_needs_container",
                    )
                executors[entry] = self._local(tool)
                info = (tool.name, tool.description, tool.parameters)
            definitions.append(
                ToolDefinition.model_validate(
                    {
                        "type": "function",
                        "function": {
                            "name": entry,
                            "description": info[1],
                            "parameters": parameters_to_json_schema(info[2]),
                        },
                    }
                )
            )
        return definitions, executors

    async def _remote(
        self, name: str, cfg: dict[str, Any], tenant: str, key: str | None
    ) -> AsyncToolServiceProxy:
        configured = self.settings.manager_api_key
        try:
            return await AsyncToolServiceProxy.create(
                name,
                cfg,
                tenant,
                self.settings.tool_manager_url,
                token=key or (configured.get_secret_value() if configured else None),
                start_timeout=self.settings.node_start_timeout + 10,
            )
        except ToolServiceError as exc:
            raise ApiError(
                502, f"tool {name} is not available through the manager: {exc}", code="tool_unavailable"
            ) from None

    @staticmethod
    def _remote_executor(proxy: AsyncToolServiceProxy) -> Executor:
        async def run(arguments: str) -> str:
            return _as_text(await proxy.call(arguments))

        return run

    @staticmethod
    def _local(tool: Tool) -> Executor:
        async def run(arguments: str) -> str:
            result = tool.call(arguments)
            if inspect.isawaitable(result):
                result = await result
            return _as_text(result)

        if not inspect.iscoroutinefunction(tool.call):

            async def run_sync(arguments: str) -> str:
                return _as_text(await asyncio.to_thread(tool.call, arguments))

            return run_sync
        return run

    async def knowledge_block(
        self, request: LiteAgentRequest, space: Space
    ) -> tuple[str, list[dict[str, Any]]]:
        if not request.use_knowledge:
            return "", []
        if self.knowledge is None:
            raise ApiError(
                400,
                "use_knowledge: knowledge retrieval is not available on this server "
                "(the [knowledge] extra, and MSAGENT_KNOWLEDGE)",
                param="use_knowledge",
                code="knowledge_unavailable",
            )
        query = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        hits = await self.knowledge.search(space, query, request.files or None, self.settings.knowledge_top_k)
        lines, used, citations = [], 0, []
        for number, hit in enumerate(hits, 1):
            cost = count_text(hit.text)
            if used + cost > self.settings.knowledge_budget_tokens and lines:
                break
            used += cost
            source = hit.file + (f" > {' > '.join(hit.headings)}" if hit.headings else "")
            lines.append(f"[{number}] ({source})\n{hit.text}")
            citations.append(hit.citation())
        if not lines:
            return "", []
        header = "# Knowledge\nAnswer from these passages where they apply, and cite them as [n].\n\n"
        return header + "\n\n".join(lines), citations

    # -- the loop ---------------------------------------------------------------------------------------
    async def run(
        self,
        request: LiteAgentRequest,
        space: Space,
        upstream_key: str | None,
        manager_key: str | None = None,
    ) -> AsyncIterator[Event]:
        """`space`: where the caller's knowledge and session history live. `manager_key`: the caller's
        own key, used for tools run through the manager (else the configured TOOL_MANAGER_API_KEY)."""
        proxies: list[AsyncToolServiceProxy] = []
        try:
            backend = await self.backend(request, upstream_key)
            definitions, executors = await self.tools(request, proxies, manager_key)
            block, citations = await self.knowledge_block(request, space)
            config = request.agent_config
            system = "\n\n".join(p for p in (
                f"You are {config.name}. {config.description}".strip() if config.name else "", config.instruction, block
            ) if p)  # fmt: skip
            new = [m for m in request.messages if m.role != "system"]
            # Clients of the original servers resend the whole conversation every turn: it is then
            # theirs, and the stored history is not added again. Clients that send only the new message
            # get the earlier ones from the store. Either way each earlier message reaches the model once.
            answered = max((i + 1 for i, m in enumerate(new) if m.role in ("assistant", "tool")), default=0)
            history = (
                []
                if answered
                else [
                    ChatMessage.model_validate(m.model_dump(exclude_none=True))
                    for m in await self.store.sessions.get(space)
                ]
            )
            messages = ([ChatMessage(role="system", content=system)] if system else []) + history + new
            try:  # the caller's generate_config rides on the model request: checked as its fields are
                chat = ChatCompletionRequest.model_validate({
                    "model": request.llm_config.model, "messages": [m.model_dump(exclude_none=True) for m in messages],
                    **({"tools": [d.model_dump() for d in definitions]} if definitions else {}),
                    **request.llm_config.generate_config,
                })  # fmt: skip
            except ValidationError as exc:
                raise ApiError(
                    400,
                    f"llm_config.generate_config: {exc.errors()[0]['msg']}",
                    param="llm_config.generate_config",
                    code="invalid_value",
                ) from None
            if citations:
                yield Event("citations", {"citations": citations})
            key = request.llm_config.api_key or upstream_key
            loop = AgentLoop(executors, self.settings.agent_max_turns)
            while loop.next_turn():
                plan = self.chat.plan(chat.model_copy(update={"messages": messages}), key, backend)
                text, calls = [], []
                async for batch in self.chat.events(plan, stream=True):
                    for event in batch:
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            yield Event("delta", {"text": event.text})
                        elif isinstance(event, ToolCallEnd):
                            calls.append(Call(event.call.id, event.call.name, event.call.arguments))
                runnable = loop.model_replied("".join(text), calls)
                messages.append(ChatMessage.model_validate(loop.produced[-1]))
                for call in calls:
                    yield Event("tool_call", call.as_dict())
                    if call not in runnable:
                        continue  # the caller's own tool: the call goes back to it
                    if self.metrics is not None:
                        self.metrics.tool_calls.labels(call.name).inc()
                    try:
                        observation = await executors[call.name](call.arguments)
                    except (ToolError, ToolServiceError) as exc:
                        observation = f"error: {exc}"
                    yield Event("observation", {"id": call.id, "name": call.name, "text": observation})
                    loop.observed(call, observation)
                    messages.append(ChatMessage.model_validate(loop.produced[-1]))
            produced = [ChatMessage.model_validate(m) for m in loop.produced]
            turn = new[answered:]  # what this request added to the conversation
            await self.store.sessions.append(space, [_stored(m) for m in [*turn, *produced]])
            calls_made = [c.as_dict() for c in loop.calls]
            yield Event("done", {"answer": loop.answer, "tool_calls": calls_made, "citations": citations})
        finally:
            for proxy in proxies:
                await proxy.close()
