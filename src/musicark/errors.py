"""Typed errors raised by the library; the CLI and web map them to exit codes and statuses."""

from __future__ import annotations

import sqlite3


class MusicarkError(Exception):
    """Base class of every error musicark reports to a user."""

    exit_code = 1


class ArchiveNotFound(MusicarkError):
    """No archive at the given or discovered location."""

    exit_code = 3


class ArchiveExists(MusicarkError):
    """`init` was asked to create an archive where one already is."""

    exit_code = 4


class SourceExists(MusicarkError):
    """A catalog source of that name was already imported (use replace=True)."""

    exit_code = 5


class BadSource(MusicarkError):
    """A dump or file cannot be imported at all (missing, wrong format, unreadable)."""

    exit_code = 6


class BadQuery(MusicarkError):
    """A search, lookup or option value the library cannot use."""

    exit_code = 2


class NotInCatalog(MusicarkError):
    """An identifier that matches nothing in the catalog."""

    exit_code = 7


class BadConfig(MusicarkError):
    """musicark.toml is malformed or holds a value out of range."""

    exit_code = 8


class FixityError(MusicarkError):
    """Stored bytes no longer match the SHA-256 the ledger holds for them."""

    exit_code = 11


class CatalogDamaged(MusicarkError):
    """catalog.sqlite is not a readable SQLite database: damaged, truncated or emptied."""

    exit_code = 12


# SQLITE_CORRUPT and SQLITE_NOTADB (primary result codes): the file's bytes are at fault.
DAMAGE_CODES = (11, 26)


def user_error(exc: BaseException) -> MusicarkError | None:
    """The user-facing error an exception from the library's own machinery stands for, if any
    (a damaged catalog is the archive's state, not a bug to report)."""
    if isinstance(exc, sqlite3.DatabaseError) and (
            getattr(exc, "sqlite_errorcode", 0) & 0xFF) in DAMAGE_CODES:
        return CatalogDamaged(
            f"catalog.sqlite is damaged ({exc}): rebuild it from a release's metadata "
            "snapshot with `musicark repair --catalog-from RELEASE`, or restore a backup")
    return None


class DamagedFile(FixityError):
    """A store file whose size no longer matches the ledger (or that is gone): its bytes
    cannot be what the ledger's SHA-256 says, so it is never served or released as good."""

    def __init__(self, sha256: str, path: str, size_found: int | None,
                 size_expected: int | None) -> None:
        self.sha256, self.path = sha256, path
        self.size_found, self.size_expected = size_found, size_expected
        if size_found is None:
            found = f"it is missing from the store (the ledger has {size_expected} bytes)"
        else:
            found = f"the store holds {size_found} bytes where the ledger has {size_expected}"
        # The path stays out of the message: web clients see it, and it tells them the
        # server's directories. The fixity event and the server log name it.
        super().__init__(f"file {sha256} is damaged: {found}")


class Interrupted(MusicarkError):
    """A run stopped by Ctrl-C; the message says what it kept and what the next run does."""

    exit_code = 130
