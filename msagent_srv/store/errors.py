"""Errors the store raises; the services' web layer maps them to statuses (web/known_errors.py)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors."""


class StoreUnavailable(StoreError):
    """Redis cannot be reached or did not answer in time."""


class NotFound(StoreError):
    """The record does not exist."""


class Conflict(StoreError):
    """The record is not in a state that allows the change."""


class PortsExhausted(StoreError):
    """Every port of the configured range is taken."""
