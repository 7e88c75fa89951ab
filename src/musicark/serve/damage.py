"""Damage found while serving is recorded, never only refused.

The server reads the catalog read-only, so a damaged store file it finds is written as a
`fixity` event through its own short-lived write connection: the event lands in the same
`events` table as every audit outcome, at once, with no second log to reconcile later.
SQLite's WAL lets this one small transaction pass beside the server's readers and a running
ingest (it waits at most `timeout` seconds for the write lock). Each damaged file is
recorded once per server process (the first time a request meets it), so requests for a
damaged file cannot flood the table; the server log gets every finding, and says so when
the catalog could not take the event (read-only media, a long-held lock).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

from musicark.archive import utc_now
from musicark.errors import DamagedFile

log = logging.getLogger("musicark.serve")
MAX_REMEMBERED = 100_000


class DamageLog:
    """Records damaged store files met by the server as `fixity`/`damaged` events."""

    def __init__(self, catalog: Path, timeout: float = 5.0) -> None:
        self.catalog = catalog
        self.timeout = timeout
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int | None]] = set()

    def record(self, damage: DamagedFile) -> bool:
        """Logs the damage and appends its event unless this process already did; True when
        an event was written now."""
        key = (damage.sha256, damage.size_found)
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= MAX_REMEMBERED:
                self._seen.clear()
            self._seen.add(key)
        log.error("%s (%s)", damage, damage.path)
        detail = {"path": damage.path, "size_found": damage.size_found,
                  "size_expected": damage.size_expected, "found_by": "serve"}
        try:
            conn = sqlite3.connect(f"file:{self.catalog}?mode=rw", uri=True,
                                   timeout=self.timeout, isolation_level=None)
            try:
                conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                             "VALUES (?, 'fixity', ?, 'damaged', ?)",
                             (utc_now(), damage.sha256, json.dumps(detail, sort_keys=True)))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.error("the damage of file %s could not be recorded in %s: %s; it stays in "
                      "this log only", damage.sha256, self.catalog, exc)
            return False
        return True
