"""Addresses and networks in settings (who may use the v1 listener, read metrics, ...)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

#: an IPv4 or IPv6 network
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: this host only: the default of every "who may connect" setting
LOOPBACK = ("127.0.0.0/8", "::1/128")


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses or networks (``10.0.0.0/8``, ``192.168.1.7``, ``::1``).

    Raises
    ------
    ValueError
        Naming the first entry that is not an address or network.
    """
    found: list[Network] = []
    for spec in specs:
        try:
            found.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {spec!r}") from None
    return tuple(found)


def address_in(address: str, networks: Iterable[Network]) -> bool:
    """Whether ``address`` (an IPv6 zone and an IPv4-mapped form allowed) is in one of
    ``networks``; False for anything that is not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)
