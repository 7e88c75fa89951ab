"""Who is calling: Subsonic token (`t` = md5(password + salt), `s`), plain `p` or `enc:` hex
passwords, or the OpenSubsonic `apiKey`; and whether to check at all (`Logins`).

Logins fail closed. With no account the API is refused, unless the server was started with
open access (`serve --open-subsonic`, loopback addresses only) and the caller's own address
is loopback; a users file that is unreadable or malformed refuses every login, open access
or not. Failed logins are throttled and replayed tokens refused (serve/subsonic/throttle.py).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from musicark.errors import BadConfig
from musicark.serve.loopback import is_loopback_address
from musicark.serve.subsonic.responses import (
    BAD_API_KEY,
    CONFLICTING_AUTH,
    MISSING,
    WRONG_CREDENTIALS,
    SubsonicError,
)
from musicark.serve.subsonic.throttle import UNKNOWN_USER, LoginThrottle, RecentTokens
from musicark.serve.subsonic.users import User, Users, key_hash, token_matches

log = logging.getLogger("musicark.serve.subsonic")
REFUSED = (WRONG_CREDENTIALS, BAD_API_KEY)  # the failures that count as a guess


class Accounts:
    """The archive's users, re-read when their files change (`musicark user add` while the
    server runs takes effect on the next request). A file that cannot be used raises
    BadConfig on every call until it changes: it is logged once, never taken as "no user"."""

    def __init__(self, archive_path: Path) -> None:
        self.users = Users(archive_path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._all: dict[str, User] | BadConfig = {}

    @staticmethod
    def _stamp_of(path: Path) -> tuple | str | None:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"unreadable {exc.errno}"  # a stamp too: read (and refused) again
        return found.st_mtime_ns, found.st_size, found.st_ino, found.st_mode

    def all(self) -> dict[str, User]:
        stamp = (self._stamp_of(self.users.path), self._stamp_of(self.users.config))
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._all = self.users.all()
                except BadConfig as exc:
                    log.error("Subsonic logins refused: %s", exc)
                    self._all = exc
                self._stamp = stamp
            if isinstance(self._all, BadConfig):
                raise self._all
            return self._all


class Logins:
    """Every login decision of one app: accounts, open access, throttle and replays."""

    def __init__(self, archive_path: Path, *, open_access: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = Accounts(archive_path)
        self.open_access = open_access
        self.throttle = LoginThrottle(clock)
        self.tokens = RecentTokens(clock)

    def check(self, get: Callable[[str], str | None], address: str | None) -> str:
        """The user name the request authenticates as; SubsonicError otherwise."""
        try:
            accounts = self.accounts.all()
        except BadConfig:
            raise SubsonicError(WRONG_CREDENTIALS, "logins are refused: the server's users "
                                "file cannot be used (its owner finds why in the server "
                                "log)") from None
        if not accounts:
            if self.open_access and is_loopback_address(address):
                return authenticate(get, accounts)
            raise SubsonicError(WRONG_CREDENTIALS, "this server has no Subsonic user: its "
                                "owner adds one with `musicark user add NAME`")
        name = get("u")
        user = None if get("apiKey") is not None else (
            name if name in accounts else UNKNOWN_USER)
        wait = self.throttle.wait(user, address) if _has_credentials(get) else 0.0
        if wait > 0:
            raise SubsonicError(WRONG_CREDENTIALS, "too many failed logins: try again in "
                                f"{math.ceil(wait)} s")
        try:
            found = authenticate(get, accounts)
            token, salt = get("t"), get("s")
            if token is not None and salt is not None and not \
                    self.tokens.first_use_or_same_client(found, salt, token, address):
                raise SubsonicError(WRONG_CREDENTIALS, "this token and salt were used from "
                                    "another address: send a new salt")
        except SubsonicError as exc:
            if exc.code in REFUSED:
                self.throttle.failed(user, address)
            raise
        self.throttle.succeeded(found)
        return found


def _has_credentials(get: Callable[[str], str | None]) -> bool:
    """Whether the request tries a login at all (else it is error 10, not a guess)."""
    if get("apiKey") is not None:
        return True
    return get("u") is not None and (
        get("p") is not None or (get("t") is not None and get("s") is not None))


def _passwords(p: str) -> list[str]:
    """What `p` may stand for: `enc:` is hex of the UTF-8 bytes, but some clients (py-sonic)
    hex each character's code point, which is Latin-1 for the first 256."""
    if not p.startswith("enc:"):
        return [p]
    try:
        raw = bytes.fromhex(p[4:])
    except ValueError:
        return []
    found = [raw.decode("latin-1")]
    with contextlib.suppress(UnicodeDecodeError):
        found.insert(0, raw.decode("utf-8"))
    return found


def authenticate(get: Callable[[str], str | None], accounts: dict[str, User]) -> str:
    """The user name the credentials of a request stand for; SubsonicError otherwise.
    With no account (open access: `Logins` decides when) any user name is let in. An empty
    token, salt or password is refused before anything is compared."""
    api_key = get("apiKey")
    username = get("u")
    if api_key is not None:
        if username is not None or get("p") is not None or get("t") is not None:
            raise SubsonicError(CONFLICTING_AUTH, "apiKey cannot be combined with u, p or t")
        digest = key_hash(api_key)
        for user in accounts.values():
            if user.api_key_sha256 and hmac.compare_digest(user.api_key_sha256, digest):
                return user.name
        raise SubsonicError(BAD_API_KEY, "invalid API key")
    if username is None:
        raise SubsonicError(MISSING, "required parameter is missing: u")
    if not accounts:
        return username
    user = accounts.get(username)
    token, salt, password = get("t"), get("s"), get("p")
    if token is not None and salt is not None:
        ok = bool(token and salt) and user is not None and token_matches(
            user.password, salt, token)
    elif password is not None:
        ok = user is not None and any(
            given and hmac.compare_digest(given.encode(), user.password.encode())
            for given in _passwords(password))
    else:
        raise SubsonicError(MISSING, "required parameter is missing: t and s, p, or apiKey")
    if not ok:
        raise SubsonicError(WRONG_CREDENTIALS, "wrong username or password")
    return username
