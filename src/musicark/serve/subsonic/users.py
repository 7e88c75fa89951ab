"""Subsonic accounts: names, passwords and API keys, in a file only its owner can read.

The Subsonic token scheme sends md5(password + salt), so the server must hold each password
in a recoverable form: they live in ARCHIVE/subsonic-users.json, created 0600 and refused
when group or others can read it. Accounts may also be written by hand in musicark.toml
(`[subsonic.users] NAME = "password"`), under the same rule for that file. API keys
(OpenSubsonic `apiKey`) are random and kept only as their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from musicark.config import CONFIG_NAME
from musicark.errors import BadConfig, BadQuery, NotInCatalog

USERS_FILE = "subsonic-users.json"
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class User:
    name: str
    password: str
    api_key_sha256: str | None = None


def _private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadConfig(f"{path} holds Subsonic passwords but group or others may read it "
                        f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Users:
    """The accounts of one archive: those `musicark user add` wrote and those in the
    archive's musicark.toml."""

    def __init__(self, archive_path: Path) -> None:
        self.path = Path(archive_path) / USERS_FILE
        self.config = Path(archive_path) / CONFIG_NAME

    def _file(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        _private(self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            users = data["users"]
            assert isinstance(users, dict)
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            raise BadConfig(f"{self.path}: not a users file ({exc})") from exc
        return users

    def _from_config(self) -> dict[str, str]:
        try:
            data = tomllib.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return {}  # Settings.load reports a broken musicark.toml
        users = data.get("subsonic", {}).get("users", {})
        if not users:
            return {}
        _private(self.config)
        if not isinstance(users, dict) or not all(
                isinstance(v, str) and NAME_RE.match(k) for k, v in users.items()):
            raise BadConfig(f"{self.config}: [subsonic.users] maps user names to "
                            "password strings")
        return users

    def all(self) -> dict[str, User]:
        found = {name: User(name, password) for name, password in self._from_config().items()}
        for name, item in self._file().items():
            found[name] = User(name, str(item.get("password", "")), item.get("api_key_sha256"))
        return found

    def _write(self, users: dict[str, dict]) -> None:
        """Atomic: a temporary file created 0600, then renamed over the old one."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"users": users}, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def add(self, name: str, password: str, *, replace: bool = False) -> str:
        """Create (or with `replace`, reset) an account; returns its new API key."""
        if not NAME_RE.match(name):
            raise BadQuery("a user name is 1-64 letters, digits or _ . @ -")
        if not password:
            raise BadQuery("the password must not be empty")
        users = self._file()
        if name in users and not replace:
            raise BadQuery(f"user {name!r} exists (use --replace to set a new password)")
        key = secrets.token_urlsafe(32)
        users[name] = {"password": password, "api_key_sha256": key_hash(key)}
        self._write(users)
        return key

    def new_key(self, name: str) -> str:
        users = self._file()
        if name not in users:
            raise NotInCatalog(f"no user {name!r} in {self.path}")
        key = secrets.token_urlsafe(32)
        users[name]["api_key_sha256"] = key_hash(key)
        self._write(users)
        return key

    def remove(self, name: str) -> None:
        users = self._file()
        if name not in users:
            raise NotInCatalog(f"no user {name!r} in {self.path}")
        del users[name]
        self._write(users)


def token_matches(password: str, salt: str, token: str) -> bool:
    """The Subsonic token check: t == md5(password + salt), compared in constant time."""
    expected = hashlib.md5((password + salt).encode("utf-8")).hexdigest()  # noqa: S324
    return hmac.compare_digest(expected, token.lower())
