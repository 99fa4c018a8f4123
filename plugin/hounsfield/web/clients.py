"""Who sent a request: the peer's address, or, behind proxies we trust, the client's.

Behind a reverse proxy (docker/compose.yaml's Caddy) every request comes from the proxy; the
client's address is in ``X-Forwarded-For``, which each proxy extends with the address it saw.
Only what a trusted proxy appended can be believed: anything further left may have been sent
by the client itself. So the header is read from the right, past our own proxies, and the
first address that is not one of them is the client. The audit trail records it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 16  # more proxies than any deployment has: the rest of a longer header is not read


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``TrustedProxies`` entries (addresses or CIDR networks); ValueError names a bad one."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def client_address(peer: str, headers: Mapping[str, str], proxies: tuple[Network, ...]) -> str:
    """``peer`` unless it is a trusted proxy; then the nearest hop that is not one."""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = headers.get("x-forwarded-for", "").split(",")[-MAX_HOPS:]
    client = peer
    for hop in reversed([hop.strip() for hop in hops if hop.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client  # a trusted proxy passed on something that is not an address
        client = hop
        if not _trusted(hop, proxies):
            return hop
    return client


def came_over_tls(peer: str, headers: Mapping[str, str], proxies: tuple[Network, ...]) -> bool:
    """Whether a trusted proxy says it took the request over HTTPS (the last value of
    ``X-Forwarded-Proto``, the nearest proxy's; from anyone else it proves nothing)."""
    if not proxies or not _trusted(peer, proxies):
        return False
    return headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower() == "https"
