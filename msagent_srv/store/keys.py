"""Every Redis key this project writes, defined once.

All keys share one prefix so a Redis instance can be shared with other applications and a test run can
be cleaned with one SCAN.
"""

from __future__ import annotations

PREFIX = "msagent:"

# tenant tool registries
TENANTS = PREFIX + "tenants"  # SET of tenant ids that ever had a tool
TENANT_TOOLS = PREFIX + "tenant:{tenant}:tools"  # HASH tool_name -> ToolInstance JSON

# port allocation
PORT_OWNERS = PREFIX + "ports:owners"  # HASH port -> owner ("<tenant>/<tool>")
PORT_ALLOCATIONS = PREFIX + "ports:allocations"  # counter of ports ever handed out (for metrics)

# sessions and uploaded files
SESSION_HISTORY = PREFIX + "session:{uuid}:history"  # LIST of ChatMessage JSON, oldest first
SESSION_FILES = PREFIX + "session:{uuid}:files"  # HASH file name -> FileRecord JSON


def tenant_tools(tenant: str) -> str:
    return TENANT_TOOLS.format(tenant=tenant)


def session_history(uuid: str) -> str:
    return SESSION_HISTORY.format(uuid=uuid)


def session_files(uuid: str) -> str:
    return SESSION_FILES.format(uuid=uuid)
