"""Every Redis key this project writes, defined once.

All keys share one prefix so a Redis instance can be shared with other applications and a test run can
be cleaned with one SCAN.
"""

from __future__ import annotations

from urllib.parse import quote

from ..identity import Space, tenant_key

PREFIX = "msagent:"

# tenant tool registries
TENANTS = PREFIX + "tenants"  # SET of tenant ids that ever had a tool
TENANT_TOOLS = PREFIX + "tenant:{tenant}:tools"  # HASH tool_name -> ToolInstance JSON

# API keys: HASH sha256(key) -> ApiKeyRecord JSON (the key itself is never stored)
API_KEYS = PREFIX + "apikeys"

# port allocation
PORT_OWNERS = PREFIX + "ports:owners"  # HASH port -> owner ("<tenant>/<tool>")
PORT_ALLOCATIONS = PREFIX + "ports:allocations"  # counter of ports ever handed out (for metrics)

# OpenAPI documents a tenant saved (POST /openapi_schema/save)
OPENAPI_DOCS = PREFIX + "tenant:{tenant}:openapi"  # HASH openapi_name -> OpenApiDocument JSON

# sessions and uploaded files, per Space (tenant + uuid_str; `Space.key` holds no ':')
SESSION_HISTORY = PREFIX + "session:{space}:history"  # LIST of ChatMessage JSON, oldest first
SESSION_FILES = PREFIX + "session:{space}:files"  # HASH file name -> FileRecord JSON

# stored Responses API responses, per tenant (`identity.tenant_key`), with a TTL
RESPONSE = PREFIX + "responses:{tenant}:{id}"  # STRING StoredResponse JSON

# keyword (BM25) index of a space's knowledge chunks
KEYWORD_TERM = PREFIX + "kw:{space}:t:{term}"  # ZSET chunk id -> term weight (saturated tf)
KEYWORD_CHUNKS = PREFIX + "kw:{space}:chunks"  # SET of every chunk id (N, for the IDF)
KEYWORD_FILE_CHUNKS = PREFIX + "kw:{space}:f:{file}:chunks"  # SET of a file's chunk ids
KEYWORD_FILE_TERMS = PREFIX + "kw:{space}:f:{file}:terms"  # SET of the terms a file's chunks hold
KEYWORD_SCRATCH = PREFIX + "kw:{space}:scratch:{nonce}"  # ZSET, lives for one query


def keyword_term(space: Space, term: int | str) -> str:
    return KEYWORD_TERM.format(space=space.key, term=term)


def keyword_chunks(space: Space) -> str:
    return KEYWORD_CHUNKS.format(space=space.key)


def keyword_file_chunks(space: Space, file: str) -> str:
    return KEYWORD_FILE_CHUNKS.format(space=space.key, file=quote(file, safe=""))


def keyword_file_terms(space: Space, file: str) -> str:
    return KEYWORD_FILE_TERMS.format(space=space.key, file=quote(file, safe=""))


def keyword_scratch(space: Space, nonce: str) -> str:
    return KEYWORD_SCRATCH.format(space=space.key, nonce=nonce)


def response(tenant: str | None, response_id: str) -> str:
    return RESPONSE.format(tenant=tenant_key(tenant), id=response_id)


def tenant_tools(tenant: str) -> str:
    return TENANT_TOOLS.format(tenant=tenant)


def openapi_docs(tenant: str) -> str:
    return OPENAPI_DOCS.format(tenant=tenant)


def session_history(space: Space) -> str:
    return SESSION_HISTORY.format(space=space.key)


def session_files(space: Space) -> str:
    return SESSION_FILES.format(space=space.key)
