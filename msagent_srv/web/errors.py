"""One exception type for every client-visible error; each service renders it in its own envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to the client with `status` (never a traceback)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _default_type(status)
        self.code = code or self.type
        self.param = param


def _default_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        409: "conflict_error",
        413: "invalid_request_error",
        415: "invalid_request_error",
        422: "invalid_request_error",
        429: "rate_limit_error",
        503: "service_unavailable",
        504: "timeout_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")
