"""OpenAI chat-completions wire format, as pydantic models. Requests ignore unknown fields; replies carry
exactly what OpenAI's do (plus the legacy `request_id`, `message`, `output` keys on non-stream replies)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..identity import SafeName


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- request ---------------------------------------------------------------------------------------------
class FunctionCall(Lenient):
    name: str
    arguments: str = ""


class ToolCall(Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ContentPart(Lenient):
    type: str
    text: str | None = None


class ChatMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """Content as plain text (text parts joined; other parts are not sent to text-only models)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type in ("text", "input_text"))


class LegacyParameter(Lenient):
    name: str
    type: str = "string"
    description: str = ""
    required: bool = False


class FunctionDefinition(Lenient):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    description: str = ""
    parameters: dict[str, Any] | list[LegacyParameter] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool | None = None

    def json_schema(self) -> dict[str, Any]:
        from ..tools import parameters_to_json_schema

        if isinstance(self.parameters, dict):
            return self.parameters
        return parameters_to_json_schema([p.model_dump() for p in self.parameters])


class ToolDefinition(Lenient):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedToolChoiceFunction(Lenient):
    name: str


class NamedToolChoice(Lenient):
    type: Literal["function"] = "function"
    function: NamedToolChoiceFunction


class StreamOptions(Lenient):
    include_usage: bool = False


class ResponseFormat(Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None


class ChatCompletionRequest(Lenient):
    model: str = ""
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is supported")
        return n

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> list[str] | None:
        if stop is None:
            return None
        stops = [stop] if isinstance(stop, str) else stop
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        return stops

    @model_validator(mode="after")
    def _named_choice_exists(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice names '{self.tool_choice.function.name}', which is not in tools"
                )
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# -- reply -----------------------------------------------------------------------------------------------
def _unset(value: object) -> bool:
    return value is None


def omitted() -> Any:
    """A key OpenAI leaves out when it has no value (clients such as the SDK's stream helper rely on it)."""
    return Field(default=None, exclude_if=_unset)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    # the model's thought before its calls, where vLLM and DeepSeek put it
    reasoning_content: str | None = omitted()
    refusal: None = None
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class ToolCallDeltaFunction(BaseModel):
    name: str | None = omitted()
    arguments: str | None = omitted()


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = omitted()
    type: Literal["function"] | None = omitted()
    function: ToolCallDeltaFunction


class Delta(BaseModel):
    role: Literal["assistant"] | None = omitted()
    content: str | None = omitted()
    reasoning_content: str | None = omitted()
    tool_calls: list[ToolCallDelta] | None = omitted()


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = omitted()  # only on the last chunk, when stream_options.include_usage asks for it
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- /v1/embeddings -----------------------------------------------------------------------------------
def _texts_only(value: Any) -> Any:
    if isinstance(value, list) and value and not isinstance(value[0], str):
        raise ValueError("token id arrays are not accepted here: send the text")
    return value


class EmbeddingsRequest(Lenient):
    input: Annotated[
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)],
        BeforeValidator(_texts_only),
    ]
    model: str = ""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # floats, or base64 of little-endian float32


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope, the body of every 4xx/5xx under /v1."""

    error: ErrorDetail


# -- /v1/assistants/lite ----------------------------------------------------------------------------------
# Any text names a session (`user@example.com`, `张三`), as with the original servers: stores key it by
# identity.Space, never by gluing it into a name.
UuidStr = Annotated[str, Field(min_length=1, max_length=256)]


class AgentConfig(Lenient):
    name: str = ""
    description: str = ""
    instruction: str = ""
    tools: list[str | ToolDefinition] = Field(default_factory=list)
    tool_cfg: dict[str, dict[str, Any]] = Field(default_factory=dict)


# keys travel in an HTTP header: printable ASCII without spaces
API_KEY_PATTERN = r"^[\x21-\x7e]{1,512}$"
ApiKey = Annotated[str, Field(pattern=API_KEY_PATTERN)]


class LLMConfig(Lenient):
    model: str = ""
    # dashscope | openai | ollama | local, the original's values (dashscope_qwen, vllm, azure_openai...), or
    # any name with an api_base (an OpenAI-compatible server)
    model_server: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    api_key: ApiKey | None = None
    api_base: str | None = None
    generate_config: dict[str, Any] = Field(default_factory=dict)


class LiteAgentRequest(Lenient):
    agent_config: AgentConfig = Field(default_factory=AgentConfig)
    llm_config: LLMConfig = Field(default_factory=LLMConfig)
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    uuid_str: UuidStr = "default"
    stream: bool = False
    stream_format: Literal["text", "sse"] = "text"
    use_knowledge: bool = False
    files: list[str] = Field(default_factory=list)
    use_tool_api: bool = False
    tenant_id: SafeName = "default"


class FileRef(Lenient):
    uuid_str: UuidStr
    name: str | None = None
