"""No server-side request forgery: which URLs an endpoint may have and which addresses the
worker may connect to.

A URL must be ``https://`` (``http://`` too with ``[webhooks] allow_http``), name a host, and
carry no user name or password. Its host is resolved and every address checked
(``domain.webhooks.forbidden_address``) unless ``allow_private_networks``: at registration, and
again before every connection, and the connection then goes to the address that was checked,
so a name that resolves elsewhere the second time (DNS rebinding) reaches nothing it should
not.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailflow.domain.webhooks import forbidden_address

MAX_URL_LENGTH = 2000


class UrlRefused(ValueError):
    """The URL may not be used as an endpoint; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    """The host as written (an IPv6 address without its brackets)."""
    port: int
    path: str
    """The path and query, as sent."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: str) -> str:
        """The URL with the host replaced by ``address`` (the checked one)."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse(url: str, *, allow_http: bool) -> Target:
    """The URL's parts; raises ``UrlRefused``."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        hint = "" if allow_http else " (http:// only with [webhooks] allow_http = true)"
        raise UrlRefused(f"must start with {allowed}{hint}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise UrlRefused("must name a host")
    if parts.fragment:
        raise UrlRefused("must not have a #fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def _check(host: str, addresses: list[str], allow_private: bool) -> list[str]:
    if not addresses:
        raise UrlRefused(f"{host} does not resolve to any address")
    if not allow_private:
        for address in addresses:
            why = forbidden_address(address)
            if why is not None:
                raise UrlRefused(
                    f"{host} resolves to {address}, {why} (allowed only with "
                    "[webhooks] allow_private_networks = true)"
                )
    return addresses


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _unique(infos: list[tuple[object, ...]]) -> list[str]:
    seen: list[str] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


def resolve(target: Target, *, allow_private: bool) -> list[str]:
    """The checked addresses of the target's host (blocking: registration); raises
    ``UrlRefused``."""
    literal = _literal(target.host)
    if literal is not None:
        return _check(target.host, [literal], allow_private)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"{target.host} does not resolve: {exc}") from exc
    return _check(target.host, _unique(list(infos)), allow_private)


async def resolve_async(target: Target, *, allow_private: bool) -> list[str]:
    """``resolve`` on the running loop (the worker, before each connection)."""
    literal = _literal(target.host)
    if literal is not None:
        return _check(target.host, [literal], allow_private)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"{target.host} does not resolve: {exc}") from exc
    return _check(target.host, _unique(list(infos)), allow_private)
