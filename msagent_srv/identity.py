"""Identities that name where state lives, each with one injective encoding, and the one rule for the
names they are made of.

A `Space` is the (tenant, uuid_str) pair that uploaded files, session history, the keyword index and
the vectors of a caller's knowledge are kept under. Stores never glue or sanitise names themselves:
they take a `Space` and use its `key` (Redis) or `digest` (file systems, Qdrant collection names), so
two different pairs can never share a store, whatever characters they hold."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated
from urllib.parse import quote

from pydantic import Field, StringConstraints

# Tenant ids and tool names: they appear in node names, labels and paths, so they are kept to this.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SafeName = Annotated[
    str, StringConstraints(pattern=NAME_PATTERN),
    Field(description="letters, digits, '_', '.', '-'; at most 64; starts with a letter or digit"),
]  # fmt: skip


def tenant_key(tenant: str | None) -> str:
    """A tenant as text for Redis keys: '-' for no tenant (API keys off), else 't' + its percent-encoding
    (no ':' or '/' remains). Decodable, so injective."""
    return "-" if tenant is None else "t" + quote(tenant, safe="")


@dataclass(frozen=True)
class Space:
    tenant: str | None  # None: no API keys are checked, every caller shares the tenant-less spaces
    uuid_str: str

    @cached_property
    def key(self) -> str:
        """Text for Redis keys: the tenant's key and the percent-encoded uuid_str (no ':' or '/' remains
        in either), joined by '/'. Decodable, so injective."""
        return f"{tenant_key(self.tenant)}/{quote(self.uuid_str, safe='')}"

    @cached_property
    def digest(self) -> str:
        """64 hex digits of the key's SHA-256: a bounded, portable name for folders and collections."""
        return hashlib.sha256(self.key.encode()).hexdigest()

    def __str__(self) -> str:
        return self.key
