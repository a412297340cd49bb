"""One typed settings object for every service, read from the environment and CLI flags. Each setting is
declared once: its environment variable, type, default, limits and help stand together (`env(...)`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

FUNCTION_CALLING_MODES = ("emulated", "native", "auto")


def env(variable: str, default: Any = ..., **field: Any) -> Any:
    """A setting read from `variable`; the rest is pydantic's Field (limits, description...)."""
    if "default_factory" in field:
        return Field(json_schema_extra={"env": variable}, **field)
    return Field(default, json_schema_extra={"env": variable}, **field)


class SettingsError(ValueError):
    """A setting's value is invalid: the message names its environment variable."""


def default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "msagent-srv"


# Older names, read where the current one is unset (the original servers' clients set OPENAI_API_BASE).
ALIASES: dict[str, str] = {"openai_base_url": "OPENAI_API_BASE"}


class Settings(BaseModel):
    """Everything a service can be told. Durations are seconds, sizes are MiB."""

    redis_url: SecretStr | None = env(
        "REDIS_URL", None, description="Redis URL; unset means an embedded Redis (`up`)"
    )
    host: str = env("MSAGENT_HOST", "127.0.0.1", description="address the services listen on")
    manager_port: int = env("MSAGENT_MANAGER_PORT", 31511, ge=1, le=65535)
    assistant_port: int = env("MSAGENT_ASSISTANT_PORT", 31512, ge=1, le=65535)
    data_dir: Path = env("MSAGENT_DATA_DIR", default_factory=default_data_dir)
    log_level: str = env("MSAGENT_LOG_LEVEL", "INFO")
    log_format: Literal["json", "text"] = env("MSAGENT_LOG_FORMAT", "json")
    redis_timeout: float = env(
        "MSAGENT_REDIS_TIMEOUT", 3.0, gt=0, description="seconds before a Redis call fails with 503"
    )

    auth: Literal["auto", "on", "off"] = env(
        "MSAGENT_AUTH",
        "auto",
        description="API keys on the manager and assistant: auto = required unless listening on loopback",
    )
    admin_key: SecretStr | None = env(
        "MSAGENT_ADMIN_KEY", None, description="key with access to every tenant"
    )
    key_cache_seconds: float = env(
        "MSAGENT_KEY_CACHE_SECONDS",
        5.0,
        ge=0,
        description="how long a checked tenant key is trusted without asking Redis (revocation delay)",
    )
    runtime: Literal["auto", "docker", "process"] = env("MSAGENT_RUNTIME", "auto")
    namespace: str = env(
        "MSAGENT_NAMESPACE",
        "default",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$",
        description="label that keeps managers sharing one engine apart",
    )
    node_image: str = env("MSAGENT_NODE_IMAGE", "msagent-srv-node:latest")
    node_port_base: int = env("MSAGENT_NODE_PORT_BASE", 31513, ge=1024, le=65535)
    node_port_max: int = env("MSAGENT_NODE_PORT_MAX", 32512, ge=1024, le=65535)
    node_bind_address: str = env(
        "MSAGENT_NODE_BIND_ADDRESS", "127.0.0.1", description="host address node ports are published on"
    )
    node_connect_host: str = env(
        "MSAGENT_NODE_CONNECT_HOST", "127.0.0.1", description="host the manager dials to reach nodes"
    )
    node_network: str = env(
        "MSAGENT_NODE_NETWORK",
        "none",
        description="Docker network of node containers; 'none' = no network (reached over a socket)",
    )
    node_egress_network: str = env(
        "MSAGENT_NODE_EGRESS_NETWORK",
        "bridge",
        description="network for nodes whose tool needs one (Tool.needs_network); 'none' refuses them any",
    )
    max_nodes_per_tenant: int = env(
        "MSAGENT_MAX_NODES_PER_TENANT", 20, ge=1, description="pending or running nodes one tenant may hold"
    )
    exited_record_ttl: float = env(
        "MSAGENT_EXITED_RECORD_TTL",
        24 * 3600,
        ge=0,
        description="seconds a removed tool's `exited` record is kept (status, /tools)",
    )
    node_max_reply_mb: float = env(
        "MSAGENT_NODE_MAX_REPLY_MB", 16.0, gt=0, description="largest node reply the manager relays"
    )
    process_runtime_unsafe_tools: str = env(
        "MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS",
        "",
        description="UNSAFE: tools that run callers' code (code_interpreter) allowed on the process runtime, "
        "where their code runs on the manager's host as its user: a comma list of names, or 'true' for all",
    )
    node_socket_dir: Path | None = env(
        "MSAGENT_NODE_SOCKET_DIR",
        None,
        description="network 'none': where node sockets live (a short path; default $TMPDIR/msagent-sockets)",
    )
    node_memory_mb: int = env("MSAGENT_NODE_MEMORY_MB", 512, ge=16)
    node_cpus: float = env("MSAGENT_NODE_CPUS", 1.0, gt=0)
    node_pids_limit: int = env("MSAGENT_NODE_PIDS_LIMIT", 128, ge=8)
    node_tmpfs_mb: int = env("MSAGENT_NODE_TMPFS_MB", 64, ge=1)
    node_user: str = env("MSAGENT_NODE_USER", "65534:65534", description="uid:gid node processes run as")
    node_start_timeout: float = env("MSAGENT_NODE_START_TIMEOUT", 30.0, gt=0)
    node_call_timeout: float = env("MSAGENT_NODE_CALL_TIMEOUT", 60.0, gt=0)
    node_idle_timeout: float = env(
        "MSAGENT_NODE_IDLE_TIMEOUT", 0.0, ge=0, description="remove nodes unused this long; 0 = never"
    )
    openapi_timeout: float = env(
        "MSAGENT_OPENAPI_TIMEOUT",
        30.0,
        gt=0,
        description="seconds one /execute_openapi call to a saved document's API may take",
    )
    monitor_interval: float = env(
        "MSAGENT_MONITOR_INTERVAL", 2.0, gt=0, description="seconds between node liveness sweeps"
    )

    # assistant: model backends
    model_server: Literal["dashscope", "openai", "ollama", "local"] = env(
        "MODEL_SERVER", "dashscope", description="backend for models no route names"
    )
    default_model: str = env("MSAGENT_DEFAULT_MODEL", "", description="model used when a request names none")
    model_routes: str = env(
        "MSAGENT_MODEL_ROUTES",
        "",
        description="model=backend pairs, comma separated, e.g. 'qwen-max=dashscope'",
    )
    function_calling: str = env(
        "MSAGENT_FUNCTION_CALLING",
        "emulated",
        description="emulated|native|auto for all backends, or backend=mode pairs, comma separated",
    )
    upstream_timeout: float = env("MSAGENT_UPSTREAM_TIMEOUT", 120.0, gt=0)
    upstream_http: Literal["http1", "aiohttp"] = env(
        "MSAGENT_UPSTREAM_HTTP",
        "http1",
        description="client for OpenAI-compatible model calls: our HTTP/1.1 client or aiohttp's",
    )
    legacy_transcript_content: bool = env(
        "MSAGENT_LEGACY_TRANSCRIPT_CONTENT", False, description="put the raw ReAct transcript in `content`"
    )
    dashscope_api_key: SecretStr | None = env("DASHSCOPE_API_KEY", None)
    dashscope_base_url: str = env("DASHSCOPE_HTTP_BASE_URL", "https://dashscope.aliyuncs.com/api/v1")
    openai_api_key: SecretStr | None = env("OPENAI_API_KEY", None)
    openai_base_url: str = env("OPENAI_BASE_URL", "https://api.openai.com/v1")
    ollama_host: str = env("OLLAMA_HOST", "http://127.0.0.1:11434")
    model_path: str | None = env(
        "MSAGENT_MODEL_PATH", None, description="a GGUF file served in-process (needs the [local] extra)"
    )
    served_model_name: str = env(
        "MSAGENT_SERVED_MODEL_NAME", "local", description="the model name the local model answers to"
    )
    local_n_ctx: int = env("MSAGENT_LOCAL_N_CTX", 4096, ge=256)

    # assistant: agents, uploads, knowledge
    tool_manager_url: str = env(
        "TOOL_MANAGER_SERVICE_URL", "http://localhost:31511", description="manager for use_tool_api"
    )
    allow_private_urls: bool = env(
        "MSAGENT_ALLOW_PRIVATE_URLS",
        False,
        description="let callers' URLs (agent api_base, tool base_url) reach private or loopback hosts",
    )
    public_urls_only: bool = env(
        "MSAGENT_PUBLIC_URLS_ONLY",
        False,
        description="callers' URLs reach public hosts only even when listening on loopback only (behind a proxy)",
    )
    manager_api_key: SecretStr | None = env(
        "TOOL_MANAGER_API_KEY",
        None,
        description="key the assistant sends the manager when its caller brought none of ours",
    )
    knowledge: bool = env(
        "MSAGENT_KNOWLEDGE", True, description="file upload and retrieval (needs the [knowledge] extra)"
    )
    agent_max_turns: int = env("MSAGENT_AGENT_MAX_TURNS", 5, ge=1, le=50)
    upload_max_mb: int = env("MSAGENT_UPLOAD_MAX_MB", 50, ge=1, description="largest file accepted")
    upload_max_files: int = env(
        "MSAGENT_UPLOAD_MAX_FILES", 20, ge=1, description="most files in one upload request"
    )
    qdrant_url: str | None = env(
        "QDRANT_URL", None, description="a Qdrant server; unset = embedded local mode in data_dir"
    )
    qdrant_api_key: SecretStr | None = env("QDRANT_API_KEY", None)
    embedding_backend: Literal["local", "openai", "dashscope"] = env("MSAGENT_EMBEDDING_BACKEND", "local")
    embedding_model: str | None = env(
        "MSAGENT_EMBEDDING_MODEL", None, description="local: a sentence-transformers path; API: a model name"
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = env(
        "MSAGENT_EMBEDDING_DTYPE",
        "auto",
        description="local embeddings: bfloat16 where the CPU has native bf16 (auto), else float32",
    )
    embedding_base_url: str | None = env("MSAGENT_EMBEDDING_BASE_URL", None)
    embedding_api_key: SecretStr | None = env("MSAGENT_EMBEDDING_API_KEY", None)
    chunk_tokens: int = env("MSAGENT_CHUNK_TOKENS", 200, ge=20)
    chunk_overlap: int = env(
        "MSAGENT_CHUNK_OVERLAP", 20, ge=0, description="tokens two neighbouring chunks share (10%)"
    )
    knowledge_top_k: int = env("MSAGENT_KNOWLEDGE_TOP_K", 5, ge=1, le=50)
    knowledge_budget_tokens: int = env("MSAGENT_KNOWLEDGE_BUDGET_TOKENS", 1500, ge=100)

    session_history_cap: int = env("MSAGENT_SESSION_HISTORY_CAP", 200, ge=1)
    session_history_max_bytes: int = env(
        "MSAGENT_SESSION_HISTORY_MAX_BYTES",
        1 << 20,
        ge=4096,
        description="stored size of a session's history at most; the oldest go first",
    )
    session_ttl: int = env("MSAGENT_SESSION_TTL", 7 * 24 * 3600, ge=1)
    responses_ttl: int = env(
        "MSAGENT_RESPONSES_TTL",
        30 * 24 * 3600,
        ge=1,
        description="seconds a stored Responses API response is kept",
    )
    models_cache_seconds: float = env(
        "MSAGENT_MODELS_CACHE_SECONDS",
        60.0,
        ge=0,
        description="how long the upstreams' /models lists are reused",
    )

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Environment first, then explicit overrides (CLI flags); `None` overrides are ignored."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {
            field: environ[name] for field, name in ENVIRONMENT.items() if environ.get(name, "") != ""
        }
        for field, name in ALIASES.items():
            if field not in values and environ.get(name, "") != "":
                values[field] = environ[name]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                problems.append(f"{ENVIRONMENT.get(field, field)} ({field}): {error['msg']}")
            raise SettingsError("; ".join(problems)) from None

    @field_validator("function_calling")
    @classmethod
    def _known_modes(cls, value: str) -> str:
        """A misspelt mode stops start-up instead of silently meaning `emulated`."""
        modes = [value.strip()] if "=" not in value else list(_pairs(value).values())
        for mode in modes:
            if mode and mode not in FUNCTION_CALLING_MODES:
                raise ValueError(f"unknown mode {mode!r}: use {', '.join(FUNCTION_CALLING_MODES)}")
        return value

    def routes(self) -> dict[str, str]:
        return _pairs(self.model_routes)

    def function_calling_mode(self, backend: str) -> str:
        if "=" not in self.function_calling:
            return self.function_calling.strip() or "emulated"
        return _pairs(self.function_calling).get(backend, "emulated")

    def redis_url_value(self) -> str | None:
        return self.redis_url.get_secret_value() if self.redis_url else None

    def admin_key_value(self) -> str | None:
        return self.admin_key.get_secret_value() if self.admin_key else None


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


# field name -> environment variable, from the declarations above; CLI flags override both.
ENVIRONMENT: dict[str, str] = {
    name: field.json_schema_extra["env"]  # type: ignore[index]
    for name, field in Settings.model_fields.items()
}
