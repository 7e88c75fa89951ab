"""Who is calling: Subsonic token (`t` = md5(password + salt), `s`), plain `p` or `enc:` hex
passwords, or the OpenSubsonic `apiKey`. With no account configured (allowed only on a
loopback address) any user name is let in."""

from __future__ import annotations

import contextlib
import hmac
import threading
from collections.abc import Callable
from pathlib import Path

from musicark.serve.subsonic.responses import (
    BAD_API_KEY,
    CONFLICTING_AUTH,
    MISSING,
    WRONG_CREDENTIALS,
    SubsonicError,
)
from musicark.serve.subsonic.users import User, Users, key_hash, token_matches


class Accounts:
    """The archive's users, re-read when their files change (`musicark user add` while the
    server runs takes effect on the next request)."""

    def __init__(self, archive_path: Path) -> None:
        self.users = Users(archive_path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._all: dict[str, User] = {}

    def _mtime(self, path: Path) -> float | None:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    def all(self) -> dict[str, User]:
        stamp = (self._mtime(self.users.path), self._mtime(self.users.config))
        with self._lock:
            if stamp != self._stamp:
                self._all, self._stamp = self.users.all(), stamp
            return self._all


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
    """The user name the request authenticates as; SubsonicError otherwise."""
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
        return username  # no accounts: only ever served on loopback (see cli serve)
    user = accounts.get(username)
    token, salt, password = get("t"), get("s"), get("p")
    if token is not None and salt is not None:
        ok = user is not None and token_matches(user.password, salt, token)
    elif password is not None:
        ok = user is not None and any(
            hmac.compare_digest(given.encode(), user.password.encode())
            for given in _passwords(password))
    else:
        raise SubsonicError(MISSING, "required parameter is missing: t and s, p, or apiKey")
    if not ok:
        raise SubsonicError(WRONG_CREDENTIALS, "wrong username or password")
    return username
