"""Redis connection with timeouts, and translation of its failures into `StoreUnavailable`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


# Connections one client keeps to Redis at most. Beyond it, callers wait (up to the timeout) for one
# to be free: without a cap, every request in flight under load opened a connection and kept it.
POOL_SIZE = 32


def connect(url: str, timeout: float = 3.0) -> aioredis.Redis:
    """A client whose every call fails within `timeout` seconds instead of hanging when Redis is gone."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=timeout,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        # One quick retry on a dropped connection, so a Redis restart costs no request.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError],
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool


def translate_errors(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn redis-py's connection failures into `StoreUnavailable`."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"state store unavailable: {exc.__class__.__name__}") from exc

    return wrapper


@translate_errors
async def ping(client: aioredis.Redis) -> bool:
    return bool(await client.ping())
