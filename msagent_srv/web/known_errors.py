"""How the services answer the errors their components raise: the store and the URL guard know nothing
of HTTP; this table gives each error its status and code (most specific class first)."""

from __future__ import annotations

from ..netguard import InvalidUrl
from ..store.errors import Conflict, NotFound, PortsExhausted, StoreError, StoreUnavailable

KNOWN_ERRORS: dict[type[BaseException], tuple[int, str]] = {
    StoreUnavailable: (503, "store_unavailable"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    PortsExhausted: (503, "ports_exhausted"),
    StoreError: (500, "store_error"),
    InvalidUrl: (400, "invalid_url"),
}
