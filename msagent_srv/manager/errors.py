"""Why the node manager refuses to create a node; the manager's web layer gives each its status."""

from __future__ import annotations


class NodeRefused(Exception):
    """A node this manager will not create; the message says why and what to change."""


class UnknownToolName(NodeRefused):
    """No such tool here (and no custom image that could bring it)."""


class UnsafeOnThisRuntime(NodeRefused):
    """The tool runs callers' code, which this runtime cannot isolate."""


class TenantAtNodeCap(NodeRefused):
    """The tenant holds as many live nodes as it may."""
