"""Host port allocation for tool nodes: lowest free port of a range, owned until released."""

from __future__ import annotations

import asyncio
import socket

import redis.asyncio as aioredis

from . import keys
from .connection import translate_errors
from .errors import PortsExhausted

# KEYS[1] owners hash, KEYS[2] counter; ARGV[1] first port, ARGV[2] last port, ARGV[3] owner,
# ARGV[4..] ports to skip (seen busy on the host). An owner that already holds a port gets it back,
# so a retried allocation never leaks a second port.
_ALLOCATE = """
local owners = redis.call('HGETALL', KEYS[1])
local taken = {}
for i = 1, #owners, 2 do
  if owners[i + 1] == ARGV[3] then return {tonumber(owners[i]), 1} end
  taken[owners[i]] = true
end
for i = 4, #ARGV do taken[ARGV[i]] = true end
for port = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local key = tostring(port)
  if not taken[key] then
    redis.call('HSET', KEYS[1], key, ARGV[3])
    redis.call('INCR', KEYS[2])
    return {port, 0}
  end
end
return {-1, 0}
"""

# KEYS[1] owners hash; ARGV[1] port, ARGV[2] owner. Releases only a port the owner holds.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing on this host listens on `port` (we can bind it ourselves)."""
    for family, address in ((socket.AF_INET, host), (socket.AF_INET, "0.0.0.0")):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # as servers bind: connections lingering in TIME_WAIT do not make a port busy, a listener does
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


class PortAllocator:
    """Hands out ports in [first, last]; never the same port to two owners; survives restarts (Redis)."""

    def __init__(self, redis: aioredis.Redis, first: int, last: int, bind_host: str = "127.0.0.1") -> None:
        if first > last:
            raise ValueError("empty port range")
        self.first, self.last, self.bind_host = first, last, bind_host
        self._redis = redis
        self._allocate = redis.register_script(_ALLOCATE)
        self._release = redis.register_script(_RELEASE)

    @translate_errors
    async def allocate(self, owner: str) -> int:
        """A port for `owner`, skipping ports another program on this host already listens on."""
        busy: list[int] = []
        while True:
            port, held_already = await self._allocate(
                keys=[keys.PORT_OWNERS, keys.PORT_ALLOCATIONS],
                args=[self.first, self.last, owner, *busy],
            )
            if port < 0:
                raise PortsExhausted(f"no free port in {self.first}-{self.last}")
            # A port the owner already holds may be in use by the owner itself: hand it back as is.
            if held_already or await asyncio.to_thread(port_is_free, port, self.bind_host):
                return port
            # Someone outside our registry holds it: give it back and try the next one.
            await self._release(keys=[keys.PORT_OWNERS], args=[port, owner])
            busy.append(port)

    @translate_errors
    async def release(self, port: int, owner: str) -> bool:
        return bool(await self._release(keys=[keys.PORT_OWNERS], args=[port, owner]))

    @translate_errors
    async def owners(self) -> dict[int, str]:
        return {int(p): o for p, o in (await self._redis.hgetall(keys.PORT_OWNERS)).items()}

    @translate_errors
    async def owner_of(self, port: int) -> str | None:
        return await self._redis.hget(keys.PORT_OWNERS, str(port))
