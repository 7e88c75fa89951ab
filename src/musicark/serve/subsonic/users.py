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
NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}\Z")
SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
CLOSED = "the server refuses every Subsonic login until this is fixed"


@dataclass(frozen=True)
class User:
    name: str
    password: str
    api_key_sha256: str | None = None


def _private(path: Path) -> None:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise BadConfig(f"{path} is not a regular file; {CLOSED}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadConfig(f"{path} holds Subsonic passwords but group or others may read it "
                        f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}; {CLOSED}")


def _users_problem(users: object) -> str | None:
    """What makes `users` (the file's "users" member) not a map of accounts, or None."""
    if not isinstance(users, dict):
        return '"users" is not an object'
    for name, item in users.items():
        if not NAME_RE.match(name):
            return f"{name[:70]!r} is not a user name"
        if not isinstance(item, dict) or not isinstance(item.get("password"), str) \
                or not item["password"]:
            return f"user {name!r} has no password"
        key = item.get("api_key_sha256")
        if key is not None and not (isinstance(key, str) and SHA256_RE.match(key)):
            return f"user {name!r} has a malformed api_key_sha256"
    return None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Users:
    """The accounts of one archive: those `musicark user add` wrote and those in the
    archive's musicark.toml."""

    def __init__(self, archive_path: Path) -> None:
        self.path = Path(archive_path) / USERS_FILE
        self.config = Path(archive_path) / CONFIG_NAME

    def _file(self) -> dict[str, dict]:
        """The accounts `musicark user add` wrote; {} when there is no file. Anything else
        that is not exactly such a file (unreadable, not JSON, wrong shapes, an empty
        password) is BadConfig: the server then refuses every login, never opens up."""
        try:
            _private(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BadConfig(f"{self.path}: cannot read the users file ({exc.strerror}); "
                            f"{CLOSED}") from exc
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            users = data["users"]
            problem = _users_problem(users)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            problem = str(exc.strerror if isinstance(exc, OSError) else exc)
        if problem:
            raise BadConfig(f"{self.path}: not a users file ({problem}); {CLOSED}")
        return users

    def _from_config(self) -> dict[str, str]:
        try:
            data = tomllib.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return {}  # Settings.load reports a broken musicark.toml
        subsonic = data.get("subsonic", {})
        users = subsonic.get("users", {}) if isinstance(subsonic, dict) else subsonic
        if not users:
            return {}
        _private(self.config)
        if not isinstance(users, dict) or not all(
                isinstance(v, str) and v and NAME_RE.match(k) for k, v in users.items()):
            raise BadConfig(f"{self.config}: [subsonic.users] maps user names to "
                            f"non-empty password strings; {CLOSED}")
        return users

    def all(self) -> dict[str, User]:
        found = {name: User(name, password) for name, password in self._from_config().items()}
        for name, item in self._file().items():
            found[name] = User(name, item["password"], item.get("api_key_sha256"))
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
        if "\n" in password or "\r" in password:
            raise BadQuery("a password is one line: it must not hold a line break")
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
    return hmac.compare_digest(expected.encode(), token.lower().encode("utf-8", "replace"))
