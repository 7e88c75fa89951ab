"""Typed errors raised by the library; the CLI and web map them to exit codes and statuses."""

from __future__ import annotations


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


class Interrupted(MusicarkError):
    """A run stopped by Ctrl-C; the message says what it kept and what the next run does."""

    exit_code = 130
