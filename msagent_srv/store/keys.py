"""Every Redis key this project writes, defined once.

All keys share one prefix so a Redis instance can be shared with other applications and a test run can
be cleaned with one SCAN.
"""

from __future__ import annotations

PREFIX = "msagent:"

# tenant tool registries
TENANTS = PREFIX + "tenants"  # SET of tenant ids that ever had a tool
TENANT_TOOLS = PREFIX + "tenant:{tenant}:tools"  # HASH tool_name -> ToolInstance JSON

# API keys: HASH sha256(key) -> ApiKeyRecord JSON (the key itself is never stored)
API_KEYS = PREFIX + "apikeys"

# port allocation
PORT_OWNERS = PREFIX + "ports:owners"  # HASH port -> owner ("<tenant>/<tool>")
PORT_ALLOCATIONS = PREFIX + "ports:allocations"  # counter of ports ever handed out (for metrics)

# sessions and uploaded files
SESSION_HISTORY = PREFIX + "session:{uuid}:history"  # LIST of ChatMessage JSON, oldest first
SESSION_FILES = PREFIX + "session:{uuid}:files"  # HASH file name -> FileRecord JSON


# keyword (BM25) index of a session's knowledge chunks
KEYWORD_TERM = PREFIX + "kw:{uuid}:t:{term}"  # ZSET chunk id -> term weight (saturated tf)
KEYWORD_CHUNKS = PREFIX + "kw:{uuid}:chunks"  # SET of every chunk id (N, for the IDF)
KEYWORD_FILE_CHUNKS = PREFIX + "kw:{uuid}:f:{file}:chunks"  # SET of a file's chunk ids
KEYWORD_FILE_TERMS = PREFIX + "kw:{uuid}:f:{file}:terms"  # SET of the terms a file's chunks hold
KEYWORD_SCRATCH = PREFIX + "kw:{uuid}:scratch:{nonce}"  # ZSET, lives for one query


def keyword_term(uuid: str, term: int | str) -> str:
    return KEYWORD_TERM.format(uuid=uuid, term=term)


def keyword_chunks(uuid: str) -> str:
    return KEYWORD_CHUNKS.format(uuid=uuid)


def keyword_file_chunks(uuid: str, file: str) -> str:
    return KEYWORD_FILE_CHUNKS.format(uuid=uuid, file=file)


def keyword_file_terms(uuid: str, file: str) -> str:
    return KEYWORD_FILE_TERMS.format(uuid=uuid, file=file)


def keyword_scratch(uuid: str, nonce: str) -> str:
    return KEYWORD_SCRATCH.format(uuid=uuid, nonce=nonce)


def tenant_tools(tenant: str) -> str:
    return TENANT_TOOLS.format(tenant=tenant)


def session_history(uuid: str) -> str:
    return SESSION_HISTORY.format(uuid=uuid)


def session_files(uuid: str) -> str:
    return SESSION_FILES.format(uuid=uuid)
