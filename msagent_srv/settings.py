"""One typed settings object for every service, read from the environment and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

# field name -> environment variable; CLI flags override both.
ENVIRONMENT: dict[str, str] = {
    "redis_url": "REDIS_URL",
    "host": "MSAGENT_HOST",
    "manager_port": "MSAGENT_MANAGER_PORT",
    "assistant_port": "MSAGENT_ASSISTANT_PORT",
    "data_dir": "MSAGENT_DATA_DIR",
    "log_level": "MSAGENT_LOG_LEVEL",
    "log_format": "MSAGENT_LOG_FORMAT",
    "redis_timeout": "MSAGENT_REDIS_TIMEOUT",
    "runtime": "MSAGENT_RUNTIME",
    "namespace": "MSAGENT_NAMESPACE",
    "auth": "MSAGENT_AUTH",
    "admin_key": "MSAGENT_ADMIN_KEY",
    "key_cache_seconds": "MSAGENT_KEY_CACHE_SECONDS",
    "node_image": "MSAGENT_NODE_IMAGE",
    "node_port_base": "MSAGENT_NODE_PORT_BASE",
    "node_port_max": "MSAGENT_NODE_PORT_MAX",
    "node_bind_address": "MSAGENT_NODE_BIND_ADDRESS",
    "node_connect_host": "MSAGENT_NODE_CONNECT_HOST",
    "node_network": "MSAGENT_NODE_NETWORK",
    "node_egress_network": "MSAGENT_NODE_EGRESS_NETWORK",
    "max_nodes_per_tenant": "MSAGENT_MAX_NODES_PER_TENANT",
    "exited_record_ttl": "MSAGENT_EXITED_RECORD_TTL",
    "node_max_reply_mb": "MSAGENT_NODE_MAX_REPLY_MB",
    "process_runtime_unsafe_tools": "MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS",
    "node_socket_dir": "MSAGENT_NODE_SOCKET_DIR",
    "node_memory_mb": "MSAGENT_NODE_MEMORY_MB",
    "node_cpus": "MSAGENT_NODE_CPUS",
    "node_pids_limit": "MSAGENT_NODE_PIDS_LIMIT",
    "node_tmpfs_mb": "MSAGENT_NODE_TMPFS_MB",
    "node_user": "MSAGENT_NODE_USER",
    "node_start_timeout": "MSAGENT_NODE_START_TIMEOUT",
    "node_call_timeout": "MSAGENT_NODE_CALL_TIMEOUT",
    "node_idle_timeout": "MSAGENT_NODE_IDLE_TIMEOUT",
    "monitor_interval": "MSAGENT_MONITOR_INTERVAL",
    "session_history_cap": "MSAGENT_SESSION_HISTORY_CAP",
    "session_history_max_bytes": "MSAGENT_SESSION_HISTORY_MAX_BYTES",
    "session_ttl": "MSAGENT_SESSION_TTL",
    "model_server": "MODEL_SERVER",
    "default_model": "MSAGENT_DEFAULT_MODEL",
    "model_routes": "MSAGENT_MODEL_ROUTES",
    "function_calling": "MSAGENT_FUNCTION_CALLING",
    "upstream_timeout": "MSAGENT_UPSTREAM_TIMEOUT",
    "upstream_http": "MSAGENT_UPSTREAM_HTTP",
    "legacy_transcript_content": "MSAGENT_LEGACY_TRANSCRIPT_CONTENT",
    "dashscope_api_key": "DASHSCOPE_API_KEY",
    "dashscope_base_url": "DASHSCOPE_HTTP_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "ollama_host": "OLLAMA_HOST",
    "model_path": "MSAGENT_MODEL_PATH",
    "served_model_name": "MSAGENT_SERVED_MODEL_NAME",
    "local_n_ctx": "MSAGENT_LOCAL_N_CTX",
    "tool_manager_url": "TOOL_MANAGER_SERVICE_URL",
    "manager_api_key": "TOOL_MANAGER_API_KEY",
    "allow_private_urls": "MSAGENT_ALLOW_PRIVATE_URLS",
    "public_urls_only": "MSAGENT_PUBLIC_URLS_ONLY",
    "knowledge": "MSAGENT_KNOWLEDGE",
    "agent_max_turns": "MSAGENT_AGENT_MAX_TURNS",
    "upload_max_mb": "MSAGENT_UPLOAD_MAX_MB",
    "upload_max_files": "MSAGENT_UPLOAD_MAX_FILES",
    "qdrant_url": "QDRANT_URL",
    "qdrant_api_key": "QDRANT_API_KEY",
    "embedding_backend": "MSAGENT_EMBEDDING_BACKEND",
    "embedding_model": "MSAGENT_EMBEDDING_MODEL",
    "embedding_dtype": "MSAGENT_EMBEDDING_DTYPE",
    "embedding_base_url": "MSAGENT_EMBEDDING_BASE_URL",
    "embedding_api_key": "MSAGENT_EMBEDDING_API_KEY",
    "chunk_tokens": "MSAGENT_CHUNK_TOKENS",
    "chunk_overlap": "MSAGENT_CHUNK_OVERLAP",
    "knowledge_top_k": "MSAGENT_KNOWLEDGE_TOP_K",
    "knowledge_budget_tokens": "MSAGENT_KNOWLEDGE_BUDGET_TOKENS",
}


def default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "msagent-srv"


# Older names, read where the current one is unset (the original servers' clients set OPENAI_API_BASE).
ALIASES: dict[str, str] = {"openai_base_url": "OPENAI_API_BASE"}


class Settings(BaseModel):
    """Everything a service can be told. Durations are seconds, sizes are MiB."""

    redis_url: SecretStr | None = Field(None, description="Redis URL; unset means an embedded Redis (`up`)")
    host: str = Field("127.0.0.1", description="address the services listen on")
    manager_port: int = Field(31511, ge=1, le=65535)
    assistant_port: int = Field(31512, ge=1, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    redis_timeout: float = Field(3.0, gt=0, description="seconds before a Redis call fails with 503")

    auth: Literal["auto", "on", "off"] = Field(
        "auto",
        description="API keys on the manager and assistant: auto = required unless listening on loopback",
    )
    admin_key: SecretStr | None = Field(None, description="key with access to every tenant")
    key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="how long a checked tenant key is trusted without asking Redis (revocation delay)",
    )
    runtime: Literal["auto", "docker", "process"] = "auto"
    namespace: str = Field(
        "default",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$",
        description="label that keeps managers sharing one engine apart",
    )
    node_image: str = "msagent-srv-node:latest"
    node_port_base: int = Field(31513, ge=1024, le=65535)
    node_port_max: int = Field(32512, ge=1024, le=65535)
    node_bind_address: str = Field("127.0.0.1", description="host address node ports are published on")
    node_connect_host: str = Field("127.0.0.1", description="host the manager dials to reach nodes")
    node_network: str = Field(
        "none", description="Docker network of node containers; 'none' = no network (reached over a socket)"
    )
    node_egress_network: str = Field(
        "bridge",
        description="network for nodes whose tool needs one (Tool.needs_network); 'none' refuses them any",
    )
    max_nodes_per_tenant: int = Field(20, ge=1, description="pending or running nodes one tenant may hold")
    exited_record_ttl: float = Field(
        24 * 3600, ge=0, description="seconds a removed tool's `exited` record is kept (status, /tools)"
    )
    node_max_reply_mb: float = Field(16.0, gt=0, description="largest node reply the manager relays")
    process_runtime_unsafe_tools: str = Field(
        "",
        description="UNSAFE: tools that run callers' code (code_interpreter) allowed on the process runtime, "
        "where their code runs on the manager's host as its user: a comma list of names, or 'true' for all",
    )
    node_socket_dir: Path | None = Field(
        None,
        description="network 'none': where node sockets live (a short path; default $TMPDIR/msagent-sockets)",
    )
    node_memory_mb: int = Field(512, ge=16)
    node_cpus: float = Field(1.0, gt=0)
    node_pids_limit: int = Field(128, ge=8)
    node_tmpfs_mb: int = Field(64, ge=1)
    node_user: str = Field("65534:65534", description="uid:gid node processes run as")
    node_start_timeout: float = Field(30.0, gt=0)
    node_call_timeout: float = Field(60.0, gt=0)
    node_idle_timeout: float = Field(0.0, ge=0, description="remove nodes unused this long; 0 = never")
    monitor_interval: float = Field(2.0, gt=0, description="seconds between node liveness sweeps")

    # assistant: model backends
    model_server: Literal["dashscope", "openai", "ollama", "local"] = Field(
        "dashscope", description="backend for models no route names"
    )
    default_model: str = Field("", description="model used when a request names none")
    model_routes: str = Field(
        "", description="model=backend pairs, comma separated, e.g. 'qwen-max=dashscope'"
    )
    function_calling: str = Field(
        "emulated",
        description="emulated|native|auto for all backends, or backend=mode pairs, comma separated",
    )
    upstream_timeout: float = Field(120.0, gt=0)
    upstream_http: Literal["http1", "aiohttp"] = Field(
        "http1", description="client for OpenAI-compatible model calls: our HTTP/1.1 client or aiohttp's"
    )
    legacy_transcript_content: bool = Field(False, description="put the raw ReAct transcript in `content`")
    dashscope_api_key: SecretStr | None = None
    dashscope_base_url: str = "https://dashscope.aliyuncs.com/api/v1"
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    ollama_host: str = "http://127.0.0.1:11434"
    model_path: str | None = Field(
        None, description="a GGUF file served in-process (needs the [local] extra)"
    )
    served_model_name: str = Field("local", description="the model name the local model answers to")
    local_n_ctx: int = Field(4096, ge=256)

    # assistant: agents, uploads, knowledge
    tool_manager_url: str = Field("http://localhost:31511", description="manager for use_tool_api")
    allow_private_urls: bool = Field(
        False, description="let callers' URLs (agent api_base, tool base_url) reach private or loopback hosts"
    )
    public_urls_only: bool = Field(
        False,
        description="callers' URLs reach public hosts only even when listening on loopback only (behind a proxy)",
    )
    manager_api_key: SecretStr | None = Field(
        None, description="key the assistant sends the manager when its caller brought none of ours"
    )
    knowledge: bool = Field(True, description="file upload and retrieval (needs the [knowledge] extra)")
    agent_max_turns: int = Field(5, ge=1, le=50)
    upload_max_mb: int = Field(50, ge=1, description="largest file accepted")
    upload_max_files: int = Field(20, ge=1, description="most files in one upload request")
    qdrant_url: str | None = Field(
        None, description="a Qdrant server; unset = embedded local mode in data_dir"
    )
    qdrant_api_key: SecretStr | None = None
    embedding_backend: Literal["local", "openai", "dashscope"] = "local"
    embedding_model: str | None = Field(
        None, description="local: a sentence-transformers path; API: a model name"
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="local embeddings: bfloat16 where the CPU has native bf16 (auto), else float32"
    )
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    chunk_tokens: int = Field(200, ge=20)
    chunk_overlap: int = Field(20, ge=0, description="tokens two neighbouring chunks share (10%)")
    knowledge_top_k: int = Field(5, ge=1, le=50)
    knowledge_budget_tokens: int = Field(1500, ge=100)

    session_history_cap: int = Field(200, ge=1)
    session_history_max_bytes: int = Field(
        1 << 20, ge=4096, description="stored size of a session's history at most; the oldest go first"
    )
    session_ttl: int = Field(7 * 24 * 3600, ge=1)

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
        return cls(**values)

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
