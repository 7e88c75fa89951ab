"""Slowing password guessing and refusing replayed tokens, in bounded memory.

`LoginThrottle`: after `FREE` failed logins, a user name (every unknown name shares one
entry, so the throttle does not tell which names exist) and a client address (an IPv6
client by its /64, which one host usually holds whole) must wait 1 s, then 2, 4... up to
`CAP` before the server checks another password for it; a login refused that way is not
checked at all. Failures are forgotten `FORGET` seconds after the last one; a success clears
its user name's entry (not its address's: an attacker holding one account of their own
must not wash out their address's failures). At most `MAX_ADDRESSES` addresses are kept,
least recently failed out first; user entries are bounded by the accounts. Loopback
callers have no address entry: behind a reverse proxy on the same host every caller is
127.0.0.1, and one guesser would lock everybody out; their user names are still throttled.

`RecentTokens`: a token+salt pair (`t`, `s`) that logged in is remembered for `WINDOW`
seconds with the address that first sent it; the same pair from another address is a
replay and refused. The same address may send it again: players re-request a stream URL
for every seek (Range) and some clients compute one token per session, so refusing every
repeat would break them while stopping no attacker who shares the client's address.

Both are per server process: with `serve --workers 2` each worker keeps its own, so a
guesser gets up to twice the attempts and a replay can land on the worker that has not seen
the pair.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from musicark.serve.loopback import is_loopback_address

log = logging.getLogger("musicark.serve.subsonic")
FREE = 3
CAP = 300.0
FORGET = 900.0
MAX_ADDRESSES = 10_000
WINDOW = 3600.0
MAX_TOKENS = 65_536
UNKNOWN_USER = ""  # the one entry every name without an account shares


def client_key(address: str | None) -> str:
    """The throttle's key of a client address: an IPv6 address by its /64."""
    if not address:
        return "?"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


@dataclass
class _Strikes:
    count: int = 0
    last: float = 0.0
    until: float = 0.0


class _Table:
    """Strikes per key, least recently failed first, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: OrderedDict[str, _Strikes] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        found = self.rows.get(key)
        if found is None:
            return 0.0
        if now - found.last > FORGET:
            del self.rows[key]
            return 0.0
        return max(0.0, found.until - now)

    def fail(self, key: str, now: float) -> _Strikes:
        found = self.rows.pop(key, None)
        if found is None or now - found.last > FORGET:
            found = _Strikes()
        found.count += 1
        found.last = now
        over = found.count - FREE
        found.until = now + (min(2.0 ** (over - 1), CAP) if over > 0 else 0.0)
        self.rows[key] = found
        while len(self.rows) > self.limit:
            self.rows.popitem(last=False)
        return found


class LoginThrottle:
    """Backoff per user name and per client address (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._users = _Table(MAX_ADDRESSES)
        self._addresses = _Table(MAX_ADDRESSES)

    def wait(self, user: str | None, address: str | None) -> float:
        """Seconds before a login of `user` from `address` may be checked (0: now)."""
        now = self.clock()
        with self._lock:
            by_address = 0.0 if is_loopback_address(address) else self._addresses.wait(
                client_key(address), now)
            by_user = self._users.wait(user, now) if user is not None else 0.0
        return max(by_address, by_user)

    def failed(self, user: str | None, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            strikes = _Strikes() if is_loopback_address(address) else self._addresses.fail(
                client_key(address), now)
            if user is not None:
                by_user = self._users.fail(user, now)
                strikes = max(strikes, by_user, key=lambda s: s.until)
        log.warning("failed Subsonic login for %s from %s: %d failures, next check in %.0f s",
                    "an unknown user" if user == UNKNOWN_USER else repr(user)[:80],
                    client_key(address), strikes.count, max(0.0, strikes.until - now))

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._users.rows.pop(user, None)


class RecentTokens:
    """Token+salt pairs that logged in recently, and from where (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def first_use_or_same_client(self, user: str, salt: str, token: str,
                                 address: str | None) -> bool:
        """False when the pair logged in from another address within `WINDOW` seconds;
        otherwise remembers it (a digest, not the token) and returns True."""
        key = hashlib.blake2b("\0".join((user, salt, token.lower())).encode("utf-8", "replace"),
                              digest_size=16).digest()
        now, here = self.clock(), client_key(address)
        with self._lock:
            while self._seen:  # the oldest first: drop what left the window
                oldest = next(iter(self._seen.values()))
                if now - oldest[1] <= WINDOW:
                    break
                self._seen.popitem(last=False)
            found = self._seen.get(key)
            if found is not None:
                return found[0] == here
            self._seen[key] = (here, now)
            while len(self._seen) > MAX_TOKENS:
                self._seen.popitem(last=False)
        return True
