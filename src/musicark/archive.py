"""The Archive: one directory holding settings, the catalog database and the store."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from musicark import db
from musicark.config import CONFIG_NAME, Settings
from musicark.errors import ArchiveExists, ArchiveNotFound, BadQuery, CatalogDamaged, user_error

CATALOG_NAME = "catalog.sqlite"
ENV_VAR = "MUSICARK_ARCHIVE"


def _migrations() -> list[str]:
    # Imported here: the catalog package itself builds on Archive.
    from musicark.catalog.schema import MIGRATIONS

    return MIGRATIONS


def _migrate(conn) -> None:
    from musicark.catalog.schema import MIGRATION_STEPS

    db.migrate(conn, _migrations(), MIGRATION_STEPS)


def utc_now() -> str:
    """ISO 8601 UTC timestamp with seconds precision, as stored in every table."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Archive:
    """An archive directory: `musicark.toml`, `catalog.sqlite` (WAL) and `store/`.

    Library users start here: `Archive.create(path)` or `Archive.open(path)`, then pass the
    archive to the stage functions (`musicark.catalog.import_source(archive, ...)`, ...).
    """

    def __init__(self, path: Path, settings: Settings, conn: sqlite3.Connection) -> None:
        self.path = path
        self.settings = settings
        self.conn = conn

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str, *, name: str | None = None) -> Archive:
        """Create a new archive directory (it may exist but must not already be an archive)."""
        path = Path(path).expanduser().absolute()
        if (path / CONFIG_NAME).exists():
            raise ArchiveExists(f"{path} is already a musicark archive")
        _foreign_catalog(path / CATALOG_NAME)
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "store").mkdir(exist_ok=True)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename and exc.filename != str(path) else ""
            raise BadQuery(f"cannot create an archive at {path}: {exc.strerror or exc}{where}"
                           ) from exc
        settings = Settings(name=name or path.name)
        conn = db.connect(path / CATALOG_NAME)
        _migrate(conn)
        archive = cls(path, settings, conn)
        archive.record_event("archive.init", str(path), "ok", {"schema": len(_migrations())})
        tmp = path / (CONFIG_NAME + ".tmp")
        tmp.write_text(settings.to_toml(), encoding="utf-8")
        os.replace(tmp, path / CONFIG_NAME)  # the config appears last: a half init is no archive
        return archive

    @classmethod
    def open(cls, path: Path | str, *, readonly: bool = False) -> Archive:
        """Open an existing archive, applying any pending schema migrations."""
        path = Path(path).expanduser().absolute()
        if not (path / CONFIG_NAME).is_file():
            raise ArchiveNotFound(
                f"no musicark archive at {path} (create one with `musicark init {path}`)"
            )
        settings = Settings.load(path / CONFIG_NAME)
        catalog = path / CATALOG_NAME
        # `create` writes the catalog before the config: an archive whose catalog is gone or
        # empty lost it (SQLite would quietly start a new, empty one).
        wal = path / (CATALOG_NAME + "-wal")
        if not catalog.is_file() or (catalog.stat().st_size == 0 and not (
                wal.is_file() and wal.stat().st_size)):
            raise CatalogDamaged(f"{catalog} is missing or empty: this archive's catalog is "
                                 "lost: rebuild it from a release's metadata snapshot "
                                 "with `musicark repair --catalog-from RELEASE`, or restore "
                                 "a backup")
        try:
            conn = db.connect(catalog, readonly=readonly)
            if db.schema_version(conn) == 0:
                conn.close()
                raise CatalogDamaged(f"{catalog} holds no musicark catalog; restore it from "
                                     "a backup or a release's metadata snapshot")
            if not readonly:
                _migrate(conn)
        except sqlite3.DatabaseError as exc:
            damage = user_error(exc)
            if damage is None:
                raise
            raise damage from exc
        return cls(path, settings, conn)

    @classmethod
    def locate(cls, explicit: Path | str | None = None, *, readonly: bool = False) -> Archive:
        """Find the archive: `explicit`, else `$MUSICARK_ARCHIVE`, else the current directory."""
        if explicit is None:
            explicit = os.environ.get(ENV_VAR) or Path.cwd()
        return cls.open(explicit, readonly=readonly)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- locations -------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.path / CATALOG_NAME

    @property
    def store_path(self) -> Path:
        return self.path / "store"

    def owns(self, path: Path | str) -> bool:
        """True for the archive's own files: the catalog and its journals, the settings, and
        anything under store/ or releases/. Reports and exports must never be written there."""
        target = Path(path).resolve()
        own = {self.path / CONFIG_NAME}
        own.update(self.path / (CATALOG_NAME + end) for end in ("", "-wal", "-shm", "-journal"))
        if target in {p.resolve() for p in own}:
            return True
        return any(target.is_relative_to(d.resolve())
                   for d in (self.store_path, self.path / "releases"))

    # -- audit trail -----------------------------------------------------------------------
    def record_event(
        self, kind: str, subject: str | None, outcome: str, detail: dict | None = None
    ) -> None:
        """Append one PREMIS-style event (what happened to what, and how it went)."""
        self.conn.execute(
            "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?, ?, ?, ?, ?)",
            (utc_now(), kind, subject, outcome, json.dumps(detail, sort_keys=True)),
        )

    def events(self, limit: int = 100) -> list[dict]:
        rows = self.conn.execute(
            "SELECT id, at, kind, subject, outcome, detail FROM events ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("id", "at", "kind", "subject", "outcome", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def _foreign_catalog(catalog: Path) -> None:
    """Refuse to build on a catalog.sqlite that is not a musicark catalog (someone else's
    database, or junk): migrating it would mix our tables into it. An empty one, or one a
    killed `init` left (it writes the catalog before the config), is fine."""
    if not catalog.is_file() or catalog.stat().st_size == 0:
        return
    db.roll_back_hot_journal(catalog)
    try:
        conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        try:
            version = db.schema_version(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        version = 0
    if not version:
        raise ArchiveExists(f"{catalog} exists and is not a musicark catalog: move it away, "
                            "or create the archive elsewhere")

