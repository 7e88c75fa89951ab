"""What counts as loopback, for the one decision that depends on it: whether the Subsonic
API may be open without a login (`serve --open-subsonic`).

Loopback is 127.0.0.0/8 and ::1 (RFC 1122 3.2.1.3, RFC 4291 2.5.3), also written as an
IPv4-mapped IPv6 address (::ffff:127.0.0.2). Linux routes the whole /8 to the `lo`
interface, so 127.0.0.2 is as local as 127.0.0.1; before this module `serve` matched the
strings "127.0.0.1", "localhost" and "::1" only and called 127.0.0.2 exposed. A host name
(`localhost` included: /etc/hosts may say anything) is loopback only when every address it
resolves to is. Loopback is not private: every local user and container sharing the
network namespace reaches it, which is why open access is a flag and never a default.
"""

from __future__ import annotations

import ipaddress
import socket


def is_loopback_address(address: str | None) -> bool:
    """Whether `address` (a literal IPv4 or IPv6 address, as a peer's) is loopback."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` (an address or a name) listens on loopback addresses only;
    an empty host, 0.0.0.0 and :: listen everywhere."""
    host = host.strip().strip("[]")
    if is_loopback_address(host):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return False  # a literal address that is not loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(is_loopback_address(str(info[4][0])) for info in found)
