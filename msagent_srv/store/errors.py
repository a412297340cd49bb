"""Errors the store raises. Each names the HTTP status and error code a service answers with, so the
HTTP layer can translate them without importing the store (nodes ship without Redis)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors."""

    http_status = 500
    code = "store_error"


class StoreUnavailable(StoreError):
    """Redis cannot be reached or did not answer in time."""

    http_status = 503
    code = "store_unavailable"


class NotFound(StoreError):
    """The record does not exist."""

    http_status = 404
    code = "not_found"


class Conflict(StoreError):
    """The record is not in a state that allows the change."""

    http_status = 409
    code = "conflict"


class PortsExhausted(StoreError):
    """Every port of the configured range is taken."""

    http_status = 503
    code = "ports_exhausted"
