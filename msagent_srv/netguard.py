"""The one guard for outbound requests to URLs that a caller chose (an agent's `api_base`, a tool's
`base_url`): such a request must not reach the services behind us (the tool manager on loopback, cloud
metadata, the LAN).

Rules, in order:
- the URL must be http(s) with a usable host and port (else `InvalidUrl`, a 400 where it surfaces);
- origins the operator configured (OPENAI_BASE_URL, OLLAMA_HOST, DASHSCOPE_HTTP_BASE_URL, ...) are allowed;
- private addresses are allowed when the operator says so (MSAGENT_ALLOW_PRIVATE_URLS=true), or when the
  service listens on loopback only (its callers are on this host anyway) unless MSAGENT_PUBLIC_URLS_ONLY=true;
- otherwise every address a name resolves to must be public (IPv4 carried in IPv6 — mapped, compatible,
  NAT64, 6to4, Teredo — counts as the IPv4 it carries).

The check runs where the socket is made: the name is resolved once (the loop's getaddrinfo, with a
timeout), every address is checked, and the socket connects to a checked address; the aiohttp client also
checks the address of each socket it opens (IP literals and every connection attempt included) and never
follows redirects. `NetGuard.session()` (aiohttp: SDKs, tools) and `Http1Client(guard=...)` (model calls)
are the clients; nothing else may call a caller's URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

ALLOW_ENV = "MSAGENT_ALLOW_PRIVATE_URLS"
LOOKUP_TIMEOUT = 10.0  # seconds for one name lookup
_MAX_TRUSTED_ADDRESSES = 256

Address = tuple[int, str]  # (address family, numeric address)
Lookup = Callable[[str, int], Awaitable[list[Address]]]


class PrivateAddressRefused(OSError):
    """The host is not on the public internet."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = message  # what aiohttp shows of a connection error


class InvalidUrl(OSError, ValueError):
    """Not a URL a request can be made to (scheme, host name, port). A client error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = message


class RedirectRefused(aiohttp.ClientError):
    """The server answered with a redirect; guarded clients do not follow them."""


def private_allowed() -> bool:
    """The operator's choice, for processes that have no Settings of their own (tools in nodes)."""
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 2765


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and would be routed to by a translator)."""
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _NAT64 or ip in _TRANSLATED or (ip in _COMPATIBLE and int(ip) > 1):
        found.append(low)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def is_public(address: str) -> bool:
    """A global unicast address, not one that carries a non-public IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        carried = embedded_ipv4(ip)
        if carried:
            return all(v4.is_global and not v4.is_multicast for v4 in carried)
    return ip.is_global and not ip.is_multicast


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, host lower-case ASCII (IDNA); InvalidUrl if unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname
    except ValueError as exc:  # a port out of range or not a number, a bad IPv6 literal
        raise InvalidUrl(f"not a usable URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidUrl("not an http(s) URL")
    if not host:
        raise InvalidUrl("no host in the URL")
    if port == 0:
        raise InvalidUrl("port 0 is not a port one can connect to")
    if not _is_ip(host):
        try:
            host = host.rstrip(".").encode("idna").decode("ascii")
        except UnicodeError as exc:  # e.g. a label over 63 characters
            raise InvalidUrl(f"host name {host[:80]!r} is not valid: {exc}") from None
        if not host or len(host) > 253:
            raise InvalidUrl("host name is empty or longer than 253 characters")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def system_lookup(host: str, port: int) -> list[Address]:
    """The loop's getaddrinfo (in its executor: the event loop never blocks on DNS)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


class NetGuard:
    """Decides which addresses a caller's URL may reach, and makes the clients that enforce it."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        trusted_urls: Iterable[str] = (),
        lookup: Lookup | None = None,
        lookup_timeout: float = LOOKUP_TIMEOUT,
    ) -> None:
        """`trusted_urls`: the operator's own upstreams, allowed whatever they resolve to; `lookup`
        resolves a name (default: the system's resolver)."""
        self.allow_private = allow_private
        self.lookup, self.lookup_timeout = lookup or system_lookup, lookup_timeout
        self.trusted_urls = [url for url in trusted_urls if url]
        self._trusted_names: set[tuple[str, int]] = set()
        self._trusted_addresses: set[tuple[str, int]] = set()  # (address, port) of trusted origins
        for url in self.trusted_urls:
            try:
                _, host, port = origin(url)
            except InvalidUrl:
                continue
            (self._trusted_addresses if _is_ip(host) else self._trusted_names).add((host, port))

    @classmethod
    def from_environment(cls, trusted_urls: Iterable[str] = ()) -> NetGuard:
        """For processes without Settings (tool nodes): MSAGENT_ALLOW_PRIVATE_URLS decides."""
        return cls(allow_private=private_allowed(), trusted_urls=trusted_urls)

    def trusting(self, *urls: str) -> NetGuard:
        """This guard, also trusting `urls` (the operator's own configuration)."""
        return NetGuard(
            allow_private=self.allow_private,
            trusted_urls=[*self.trusted_urls, *urls],
            lookup=self.lookup,
            lookup_timeout=self.lookup_timeout,
        )

    # -- checks ------------------------------------------------------------------------------------------
    def allows(self, address: str, port: int) -> bool:
        return self.allow_private or is_public(address) or (address, port) in self._trusted_addresses

    def _refuse(self, host: str, address: str) -> PrivateAddressRefused:
        what = f"{host} resolves to {address}," if host != address else f"{address} is"
        return PrivateAddressRefused(
            f"{what} a non-public address; the operator may allow it ({ALLOW_ENV}=true)"
        )

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses to connect to for host:port, each allowed; else PrivateAddressRefused (OSError
        for a name that does not resolve, TimeoutError for a lookup slower than `lookup_timeout`)."""
        host = host.split("%", 1)[0] if ":" in host else host
        if _is_ip(host):
            if not self.allows(host, port):
                raise self._refuse(host, host)
            return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
        name = host.lower().rstrip(".")
        found = await asyncio.wait_for(self.lookup(name, port), self.lookup_timeout)
        if not found:
            raise OSError(f"{host} has no address")
        if (name, port) in self._trusted_names:
            if len(self._trusted_addresses) < _MAX_TRUSTED_ADDRESSES:
                self._trusted_addresses.update((address, port) for _, address in found)
            return found
        for _, address in found:
            if not self.allows(address, port):
                raise self._refuse(host, address)
        return found

    async def check_url(self, url: str) -> None:
        """InvalidUrl for an unusable URL, PrivateAddressRefused if its host may not be reached."""
        _, host, port = origin(url)
        if self.allow_private:
            return
        await self.resolve(host, port)

    def check_peer(self, sockaddr: Any) -> None:
        """Refuse a socket connected (or about to connect) to an address the guard does not allow."""
        address, port = str(sockaddr[0]), int(sockaddr[1])
        if not self.allows(address, port):
            raise self._refuse(address, address)

    # -- clients -----------------------------------------------------------------------------------------
    def socket_factory(self, addr_info: Any) -> socket.socket:
        """For aiohttp: every socket it opens, checked against the address it is about to connect to."""
        family, type_, proto, _, sockaddr = addr_info
        self.check_peer(sockaddr)
        return socket.socket(family=family, type=type_, proto=proto)

    def connector(self, **kwargs: Any) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(
            resolver=_GuardResolver(self), socket_factory=self.socket_factory, **kwargs
        )

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session for caller-chosen URLs: guarded connections, redirects refused, no proxies
        from the environment. Pass `timeout=` (every outbound call has one)."""
        connector = kwargs.pop("connector_options", {})
        trace = aiohttp.TraceConfig()
        trace.on_request_redirect.append(_refuse_redirect)
        return aiohttp.ClientSession(
            connector=self.connector(**connector), trace_configs=[trace], trust_env=False, **kwargs
        )


async def _refuse_redirect(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestRedirectParams
) -> None:
    location = params.response.headers.get("Location", "")
    params.response.close()
    raise RedirectRefused(
        f"{params.url.with_query(None)} answered {params.response.status} redirecting to "
        f"{location[:200]!r}; redirects are not followed"
    )


class _GuardResolver(AbstractResolver):
    """aiohttp's resolver interface over NetGuard.resolve (one lookup, every address checked)."""

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": address, "port": port, "family": found_family,
             "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}
            for found_family, address in await self.guard.resolve(host, port)
        ]  # fmt: skip

    async def close(self) -> None:
        return None


_current: NetGuard | None = None


def install(guard: NetGuard | None) -> None:
    """Make `guard` this process's guard (the assistant installs its own at startup; None to remove)."""
    global _current
    _current = guard


def current() -> NetGuard:
    """This process's guard: the one installed, else one from the environment (tool nodes)."""
    return _current if _current is not None else NetGuard.from_environment()


async def ensure_public_url(url: str) -> None:
    """Refuse a URL this process's guard does not let callers reach (InvalidUrl, PrivateAddressRefused)."""
    await current().check_url(url)
