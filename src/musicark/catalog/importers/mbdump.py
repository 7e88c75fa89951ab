"""Import a MusicBrainz `mbdump` directory or `mbdump.tar.bz2` (PostgreSQL COPY text files).

Tables are streamed into a staging SQLite file beside the catalog (constant memory at any
dump size), joined there, and the joined rows are written through the CatalogWriter:
artists from `artist`; albums from `release` + `release_group` (+ dates, countries, labels,
media); tracks from `track` + `medium` + `recording` (+ ISRCs, credits); recordings that
appear on no release become tracks without an album. MBIDs are kept as ids and as `mbid`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from musicark.catalog.importers.base import Progress, capped_lines, no_progress, open_binary
from musicark.catalog.writer import CatalogWriter, dumps
from musicark.errors import BadSource
from musicark.regular import open_input

# Columns (by position, CreateTables.sql order, schema 31) of the tables we read.
TABLES: dict[str, list[str]] = {
    "artist": ["id", "gid", "name", "sort_name", "begin_date_year", "begin_date_month",
               "begin_date_day", "end_date_year", "end_date_month", "end_date_day", "type",
               "area", "gender", "comment", "edits_pending", "last_updated", "ended"],
    "artist_type": ["id", "name"],
    "gender": ["id", "name"],
    "area": ["id", "gid", "name"],
    "artist_credit": ["id", "name"],
    "artist_credit_name": ["artist_credit", "position", "artist", "name", "join_phrase"],
    "recording": ["id", "gid", "name", "artist_credit", "length", "comment", "edits_pending",
                  "last_updated", "video"],
    "track": ["id", "gid", "recording", "medium", "position", "number", "name",
              "artist_credit", "length", "edits_pending", "last_updated", "is_data_track"],
    "medium": ["id", "release", "position", "format", "name", "edits_pending", "last_updated",
               "track_count"],
    "medium_format": ["id", "name"],
    "release": ["id", "gid", "name", "artist_credit", "release_group", "status", "packaging",
                "language", "script", "barcode", "comment"],
    "release_group": ["id", "gid", "name", "artist_credit", "type", "comment"],
    "release_group_primary_type": ["id", "name"],
    "release_status": ["id", "name"],
    "release_packaging": ["id", "name"],
    "language": ["id", "iso_code_2t", "iso_code_2b", "iso_code_1", "name"],
    "release_country": ["release", "country", "date_year", "date_month", "date_day"],
    "release_unknown_country": ["release", "date_year", "date_month", "date_day"],
    "iso_3166_1": ["area", "code"],
    "release_label": ["id", "release", "label", "catalog_number"],
    "label": ["id", "gid", "name"],
    "isrc": ["id", "recording", "isrc"],
}
REQUIRED = ("artist", "artist_credit_name", "recording", "track", "medium", "release",
            "release_group")
STAGING_INDEXES = [
    "CREATE INDEX acn_credit ON artist_credit_name(artist_credit, position)",
    "CREATE INDEX track_medium ON track(medium, position)",
    "CREATE INDEX track_recording ON track(recording)",
    "CREATE INDEX medium_release ON medium(release, position)",
    "CREATE INDEX rc_release ON release_country(release)",
    "CREATE INDEX ruc_release ON release_unknown_country(release)",
    "CREATE INDEX rl_release ON release_label(release)",
    "CREATE INDEX isrc_recording ON isrc(recording)",
]
# Link rows whose target must exist, as (table, column, target table); a dangling one is
# a bad row (tracks whose recording, medium or release is missing are checked in _tracks).
DANGLING_LINKS = [("artist_credit_name", "artist", "artist"), ("isrc", "recording", "recording"),
                  ("release_label", "label", "label")]
ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unescape(field: str) -> str | None:
    """Decode one field of PostgreSQL COPY text format (`\\N` is NULL)."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out, i, n = [], 0, len(field)
    while i < n:
        c = field[i]
        if c != "\\" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = field[i + 1]
        if nxt in ESCAPES:
            out.append(ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            j = i + 1
            while j < min(i + 4, n) and field[j] in "01234567":
                j += 1
            out.append(chr(int(field[i + 1:j], 8)))
            i = j
        elif nxt == "x" and i + 2 < n and field[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < min(i + 4, n) and field[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(field[i + 2:j], 16)))
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _date(y: int | None, m: int | None, d: int | None) -> tuple[str | None, str | None]:
    if y is None:
        return None, None
    if m is None:
        return f"{y:04d}", "year"
    if d is None:
        return f"{y:04d}-{m:02d}", "month"
    return f"{y:04d}-{m:02d}-{d:02d}", "day"


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isascii() and value.lstrip("-").isdigit() \
        else None


class MbDumpImporter:
    def __init__(self, writer: CatalogWriter) -> None:
        self.w = writer
        self.staging_path = writer.archive.path / ".mbdump-staging.sqlite"

    # -- reading the dump ------------------------------------------------------------------
    def _members(self, src: Path, progress: Progress) -> Iterator[tuple[str, IO[bytes]]]:
        if src.is_dir():
            base = src / "mbdump" if (src / "mbdump").is_dir() else src
            # Every table file present is read, so each must be a regular file (a FIFO or
            # a link to a device is refused, not skipped).
            files = [base / t for t in TABLES if os.path.lexists(base / t)]
            total = sum(f.stat().st_size for f in files if f.exists())
            done = 0
            for f in files:
                fh, size = open_input(f)
                with fh:
                    yield f.name, fh
                done += size
                progress(done, total)
            return
        try:
            with open_binary(src, progress) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in TABLES:
                        fh = tar.extractfile(member)
                        if fh is not None:
                            yield name, fh
        except tarfile.TarError as exc:
            raise BadSource(f"{src}: not a readable mbdump archive: {exc}") from exc

    def _stage(self, src: Path, progress: Progress) -> sqlite3.Connection:
        self.staging_path.unlink(missing_ok=True)
        st = sqlite3.connect(self.staging_path)
        try:
            return self._fill(st, src, progress)
        except BaseException:
            st.close()
            raise

    def _fill(self, st: sqlite3.Connection, src: Path, progress: Progress) -> sqlite3.Connection:
        st.execute("PRAGMA journal_mode = OFF")
        st.execute("PRAGMA synchronous = OFF")
        for table, cols in TABLES.items():
            st.execute(f"CREATE TABLE {table} ({', '.join(cols)}, _line)")
        seen = set()
        for table, fh in self._members(src, progress):
            seen.add(table)
            self._load(st, table, fh)
        missing = [t for t in REQUIRED if t not in seen]
        if missing:
            raise BadSource(f"{src}: not a MusicBrainz dump: missing table(s) {', '.join(missing)}")
        for ddl in STAGING_INDEXES:
            st.execute(ddl)
        st.commit()
        return st

    def _load(self, st: sqlite3.Connection, table: str, fh: IO[bytes]) -> None:
        width = len(TABLES[table])
        marks = ", ".join("?" * (width + 1))
        sql = f"INSERT INTO {table} VALUES ({marks})"
        batch = []
        for number, raw in capped_lines(fh, table):
            try:
                line = raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError:
                self.w.report.bad(number, f"{table}: not UTF-8")
                continue
            if not line or line == "\\.":
                continue
            fields = line.split("\t")
            if len(fields) < width:
                self.w.report.bad(number, f"{table}: {len(fields)} columns, expected at least "
                                  f"{width}")
                continue
            batch.append([*(unescape(f) for f in fields[:width]), number])
            if len(batch) >= 10_000:
                st.executemany(sql, batch)
                batch.clear()
        if batch:
            st.executemany(sql, batch)

    # -- writing the catalog ---------------------------------------------------------------
    def run(self, src: Path, progress: Progress = no_progress) -> None:
        st = None
        try:
            st = self._stage(src, progress)
            self._dangling_links(st)
            self._artists(st)
            self._albums(st)
            self._tracks(st)
        finally:
            if st is not None:
                st.close()
            self.staging_path.unlink(missing_ok=True)

    def _dangling_links(self, st: sqlite3.Connection) -> None:
        """Report link rows that point at rows the dump lacks: they cannot be imported."""
        for table, column, target in DANGLING_LINKS:
            for line, ref in st.execute(
                f"SELECT l._line, l.{column} FROM {table} l "
                f"WHERE l.{column} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {target} x WHERE x.id = l.{column}) ORDER BY l._line"
            ):
                self.w.report.bad(line, f"{table}: {column} {ref} is not in the dump; row not "
                                  "imported")

    def _artists(self, st: sqlite3.Connection) -> None:
        rows = st.execute("""
            SELECT a.gid, a.name, a.sort_name, t.name, g.name, ar.name, a.comment,
                   a.begin_date_year, a.begin_date_month, a.begin_date_day,
                   a.end_date_year, a.end_date_month, a.end_date_day, a.ended, a.id, a._line
              FROM artist a LEFT JOIN artist_type t ON t.id = a.type
              LEFT JOIN gender g ON g.id = a.gender LEFT JOIN area ar ON ar.id = a.area
        """)
        for (gid, name, sort_name, kind, gender, area, comment, by, bm, bd, ey, em, ed, ended,
             mb_id, line) in rows:
            if self._repeated(self.w.artists, gid, "artist", line):
                continue
            extra = {"type": kind, "gender": gender, "area": area, "comment": comment or None,
                     "begin": _date(_int(by), _int(bm), _int(bd))[0],
                     "end": _date(_int(ey), _int(em), _int(ed))[0],
                     "ended": ended == "t", "musicbrainz_row_id": _int(mb_id)}
            self.w.insert_artist(ext_id=gid, mbid=gid, name=name, sort_name=sort_name,
                                 extra=dumps({k: v for k, v in extra.items() if v is not None}))

    def _credit(self, st: sqlite3.Connection, credit: str | None) -> list[tuple[int, str | None]]:
        if credit is None:
            return []
        result = []
        for gid, join in st.execute(
            "SELECT a.gid, acn.join_phrase FROM artist_credit_name acn "
            "JOIN artist a ON a.id = acn.artist WHERE acn.artist_credit = ? "
            "ORDER BY CAST(acn.position AS INTEGER)", (credit,)
        ):
            rowid = self.w.artists.get(gid)
            if rowid is not None:
                result.append((rowid, join or None))
        return result

    def _albums(self, st: sqlite3.Connection) -> None:
        rows = st.execute("""
            SELECT r.id, r.gid, r.name, r.artist_credit, r.barcode, r.comment,
                   rg.gid, rg.name, rgt.name, rs.name, rp.name, lang.iso_code_3,
                   (SELECT json_group_array(code) FROM (SELECT DISTINCT i.code
                      FROM release_country rc JOIN iso_3166_1 i ON i.area = rc.country
                     WHERE rc.release = r.id ORDER BY i.code)),
                   (SELECT json_group_array(json_array(l.name, l.gid, rl.catalog_number))
                      FROM release_label rl LEFT JOIN label l ON l.id = rl.label
                     WHERE rl.release = r.id),
                   (SELECT sum(CAST(track_count AS INTEGER)) FROM medium WHERE release = r.id),
                   (SELECT json_group_array(json_array(y, m, d)) FROM (
                      SELECT CAST(date_year AS INTEGER) y, CAST(date_month AS INTEGER) m,
                             CAST(date_day AS INTEGER) d FROM release_country
                       WHERE release = r.id AND date_year IS NOT NULL
                      UNION ALL
                      SELECT CAST(date_year AS INTEGER), CAST(date_month AS INTEGER),
                             CAST(date_day AS INTEGER) FROM release_unknown_country
                       WHERE release = r.id AND date_year IS NOT NULL
                      ORDER BY 1, 2 NULLS LAST, 3 NULLS LAST LIMIT 1)), r._line
              FROM release r
              LEFT JOIN release_group rg ON rg.id = r.release_group
              LEFT JOIN release_group_primary_type rgt ON rgt.id = rg.type
              LEFT JOIN release_status rs ON rs.id = r.status
              LEFT JOIN release_packaging rp ON rp.id = r.packaging
              LEFT JOIN (SELECT id, iso_code_2t AS iso_code_3 FROM language) lang
                     ON lang.id = r.language
        """)
        for (mb_id, gid, name, credit, barcode, comment, rg_gid, rg_name, rg_type, status,
             packaging, language, countries, labels, total, dates, line) in rows:
            if self._repeated(self.w.albums, gid, "release", line):
                continue
            first = json.loads(dates)
            date, precision = _date(*first[0]) if first else (None, None)
            labels = [x for x in json.loads(labels) if x[0] is not None]
            codes = json.loads(countries)
            extra = {
                "release_group": {"mbid": rg_gid, "name": rg_name, "type": rg_type},
                "status": status, "packaging": packaging, "language": language,
                "comment": comment or None, "musicbrainz_row_id": _int(mb_id),
                "labels": [{"name": n, "mbid": g, "catalog_number": c} for n, g, c in labels]
                or None,
            }
            rowid = self.w.insert_album(
                ext_id=gid, mbid=gid, name=name,
                album_type=rg_type.lower() if rg_type else None,
                release_date=date, release_date_precision=precision,
                upc=barcode or None, label=labels[0][0] if labels else None,
                total_tracks=total,
                markets_rowid=self.w.market_rowid(codes) if codes else None,
                extra=dumps({k: v for k, v in extra.items() if v is not None}),
            )
            self.w.link_album_artists(rowid, [a for a, _ in self._credit(st, credit)])

    def _tracks(self, st: sqlite3.Connection) -> None:
        isrc_sql = "SELECT isrc FROM isrc WHERE recording = ? ORDER BY isrc"
        rows = st.execute("""
            SELECT t.gid, t.name, t.artist_credit, t.length, t.number, t.position,
                   m.position, m.name, mf.name, r.gid AS release_gid,
                   rec.id, rec.gid, rec.name, rec.length, rec.comment, rec.video, ac.name,
                   t._line, t.recording, t.medium, m.id IS NULL, m.release, r.id IS NULL
              FROM track t
              LEFT JOIN medium m ON m.id = t.medium
              LEFT JOIN release r ON r.id = m.release
              LEFT JOIN recording rec ON rec.id = t.recording
              LEFT JOIN medium_format mf ON mf.id = m.format
              LEFT JOIN artist_credit ac ON ac.id = t.artist_credit
             ORDER BY r.id, CAST(m.position AS INTEGER), CAST(t.position AS INTEGER)
        """)
        for (gid, name, credit, length, number, position, disc, medium_name, fmt, release_gid,
             rec_id, rec_gid, rec_name, rec_length, rec_comment, video, credit_name,
             line, recording, medium, no_medium, release, no_release) in rows:
            missing = (f"recording {recording}" if rec_id is None else
                       f"medium {medium}" if no_medium else
                       f"release {release} (of medium {medium})" if no_release else None)
            if missing is not None:
                self.w.report.bad(line, f"track: {missing} is not in the dump; track not "
                                  "imported")
                continue
            isrcs = [r[0] for r in st.execute(isrc_sql, (rec_id,))]
            extra = {
                "number": number, "medium_format": fmt, "medium_name": medium_name,
                "recording_name": rec_name if rec_name != name else None,
                "recording_comment": rec_comment or None, "video": video == "t" or None,
                "artist_credit": credit_name, "isrcs": isrcs if len(isrcs) > 1 else None,
            }
            if self._repeated(self.w.tracks, gid, "track", line):
                continue
            self._track(gid, rec_gid, name, self.w.albums.get(release_gid), _int(disc),
                        _int(position), _int(length) or _int(rec_length),
                        isrcs[0] if isrcs else None, extra, self._credit(st, credit))
        standalone = st.execute("""
            SELECT rec.id, rec.gid, rec.name, rec.artist_credit, rec.length, rec.comment,
                   rec.video, ac.name, rec._line
              FROM recording rec LEFT JOIN artist_credit ac ON ac.id = rec.artist_credit
             WHERE NOT EXISTS (SELECT 1 FROM track t WHERE t.recording = rec.id)
        """)
        for rec_id, gid, name, credit, length, comment, video, credit_name, line in standalone:
            if self._repeated(self.w.tracks, gid, "recording", line):
                continue
            isrcs = [r[0] for r in st.execute(isrc_sql, (rec_id,))]
            extra = {"standalone_recording": True, "recording_comment": comment or None,
                     "video": video == "t" or None, "artist_credit": credit_name,
                     "isrcs": isrcs if len(isrcs) > 1 else None}
            self._track(gid, gid, name, None, None, None, _int(length),
                        isrcs[0] if isrcs else None, extra, self._credit(st, credit))

    def _repeated(self, resolver, gid: str | None, table: str, line: int) -> bool:
        """A hostile dump may repeat an MBID (unique in a real one): the first row wins,
        each repeat is a bad row (the catalog keeps one row per source id)."""
        if gid is None or resolver.get(gid) is None:
            return False
        self.w.report.bad(line, f"{table}: MBID {gid} repeated; row not imported")
        return True

    def _track(self, ext_id, mbid, name, album_rowid, disc, position, length, isrc, extra,
               credits) -> None:
        rowid = self.w.insert_track(
            ext_id=ext_id, mbid=mbid, name=name, album_rowid=album_rowid, disc_number=disc,
            track_number=position, duration_ms=length, isrc=isrc,
            extra=dumps({k: v for k, v in extra.items() if v is not None}),
        )
        self.w.link_track_artists(rowid, credits)
