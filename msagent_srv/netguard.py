"""Outbound requests to addresses that a caller chose (an agent's `api_base`, a tool's `base_url`) are
refused when the host resolves to a private, loopback, link-local or otherwise non-public address, so no
request can reach the services behind us. The operator may allow them (MSAGENT_ALLOW_PRIVATE_URLS=true).

The check runs on the addresses actually connected to (a resolver for aiohttp, resolved-then-pinned for our
HTTP/1.1 client), so a name that resolves differently on the second lookup cannot slip through."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ALLOW_ENV = "MSAGENT_ALLOW_PRIVATE_URLS"


class PrivateAddressRefused(OSError):
    """The host is not on the public internet."""


def private_allowed() -> bool:
    """The operator's choice, for processes that have no Settings of their own (tools in nodes)."""
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _refuse(host: str, address: str) -> PrivateAddressRefused:
    return PrivateAddressRefused(
        f"{host} resolves to {address}, a non-public address; set {ALLOW_ENV}=true to allow it"
    )


async def public_addresses(
    host: str, port: int, timeout: float = 10.0
) -> list[tuple[socket.AddressFamily, str]]:
    """(family, address) pairs for host, all public, else PrivateAddressRefused (or OSError if unknown,
    TimeoutError if the lookup takes longer than `timeout`)."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    found = [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]
    for _, address in found:
        if not is_public(address):
            raise _refuse(host, address)
    return found


async def ensure_public_url(url: str) -> None:
    """Refuse a URL whose host is not public (aiohttp skips its resolver for IP literals: check them here)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise PrivateAddressRefused(f"no host in {url!r}")
    await public_addresses(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


class PublicOnlyResolver(aiohttp.ThreadedResolver):
    """aiohttp's resolver, refusing names that resolve to non-public addresses."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        results = await super().resolve(host, port, family)
        for result in results:
            if not is_public(result["host"]):
                raise _refuse(host, result["host"])
        return results  # type: ignore[return-value]
