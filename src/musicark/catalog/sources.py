"""The list of imported sources, with each import's report."""

from __future__ import annotations

import json
from typing import Any

from musicark.archive import Archive


def list_sources(archive: Archive) -> list[dict[str, Any]]:
    rows = archive.conn.execute(
        "SELECT id, name, kind, uri, licence, status, imported_at, report FROM sources ORDER BY id"
    ).fetchall()
    keys = ("id", "name", "kind", "uri", "licence", "status", "imported_at", "report")
    result = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["report"] = json.loads(item["report"]) if item["report"] else None
        result.append(item)
    return result
