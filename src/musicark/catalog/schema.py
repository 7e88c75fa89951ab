"""The catalog schema, as an ordered list of migrations (PRAGMA user_version counts them).

Never edit a released migration: append a new one.
"""

from __future__ import annotations

# Indexes that a bulk import may drop and rebuild (sorting once beats updating per row).
SECONDARY_INDEXES: dict[str, str] = {
    "tracks_isrc": "CREATE INDEX tracks_isrc ON tracks(isrc) WHERE isrc IS NOT NULL",
    "tracks_mbid": "CREATE INDEX tracks_mbid ON tracks(mbid) WHERE mbid IS NOT NULL",
    "tracks_album": "CREATE INDEX tracks_album ON tracks(album_rowid, disc_number, track_number)",
    "tracks_popularity": "CREATE INDEX tracks_popularity ON tracks(popularity)",
    "tracks_source": "CREATE INDEX tracks_source ON tracks(source_id)",
    "track_artists_artist": "CREATE INDEX track_artists_artist ON track_artists(artist_rowid)",
    "albums_upc": "CREATE INDEX albums_upc ON albums(upc) WHERE upc IS NOT NULL",
    "albums_mbid": "CREATE INDEX albums_mbid ON albums(mbid) WHERE mbid IS NOT NULL",
    "albums_source": "CREATE INDEX albums_source ON albums(source_id)",
    "album_artists_artist": "CREATE INDEX album_artists_artist ON album_artists(artist_rowid)",
    "artists_mbid": "CREATE INDEX artists_mbid ON artists(mbid) WHERE mbid IS NOT NULL",
    "artists_source": "CREATE INDEX artists_source ON artists(source_id)",
}

# The unique track-id index, which a fresh table import also builds at the end (see writer).
TRACKS_EXT_INDEX = "CREATE UNIQUE INDEX tracks_ext ON tracks(ext_id, source_id)"

MIGRATION_1 = """
CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    uri TEXT,
    licence TEXT,
    options TEXT,
    status TEXT NOT NULL DEFAULT 'importing',
    imported_at TEXT,
    report TEXT
);

CREATE TABLE markets (
    rowid INTEGER PRIMARY KEY,
    codes TEXT NOT NULL UNIQUE
);

CREATE TABLE artists (
    rowid INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    ext_id TEXT,
    mbid TEXT,
    name TEXT,
    sort_name TEXT,
    popularity INTEGER,
    followers INTEGER,
    extra TEXT,
    embed_extra TEXT,
    diff TEXT
);
CREATE UNIQUE INDEX artists_ext ON artists(ext_id, source_id);

CREATE TABLE artist_genres (
    artist_rowid INTEGER NOT NULL,
    position INTEGER NOT NULL,
    genre TEXT NOT NULL,
    PRIMARY KEY (artist_rowid, position)
) WITHOUT ROWID;

CREATE TABLE albums (
    rowid INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    ext_id TEXT,
    mbid TEXT,
    name TEXT,
    album_type TEXT,
    release_date TEXT,
    release_date_precision TEXT,
    upc TEXT,
    label TEXT,
    total_tracks INTEGER,
    popularity INTEGER,
    markets_rowid INTEGER,
    extra TEXT,
    embed_extra TEXT,
    diff TEXT
);
CREATE UNIQUE INDEX albums_ext ON albums(ext_id, source_id);

CREATE TABLE album_artists (
    album_rowid INTEGER NOT NULL,
    position INTEGER NOT NULL,
    artist_rowid INTEGER NOT NULL,
    PRIMARY KEY (album_rowid, position)
) WITHOUT ROWID;

CREATE TABLE tracks (
    rowid INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    ext_id TEXT,
    mbid TEXT,
    name TEXT,
    album_rowid INTEGER,
    disc_number INTEGER,
    track_number INTEGER,
    duration_ms INTEGER,
    explicit INTEGER,
    isrc TEXT,
    popularity INTEGER,
    listens INTEGER,
    markets_rowid INTEGER,
    extra TEXT,
    diff TEXT
);
CREATE UNIQUE INDEX tracks_ext ON tracks(ext_id, source_id);

CREATE TABLE track_artists (
    track_rowid INTEGER NOT NULL,
    position INTEGER NOT NULL,
    artist_rowid INTEGER NOT NULL,
    join_phrase TEXT,
    PRIMARY KEY (track_rowid, position)
) WITHOUT ROWID;

CREATE TABLE audio_features (
    track_rowid INTEGER PRIMARY KEY,
    tempo REAL,
    key INTEGER,
    mode INTEGER,
    loudness REAL,
    time_signature INTEGER,
    danceability REAL,
    energy REAL,
    valence REAL,
    acousticness REAL,
    instrumentalness REAL,
    liveness REAL,
    speechiness REAL
);

-- Contentless: the text lives in tracks/artists/albums; deletes pass the same values back.
CREATE VIRTUAL TABLE track_fts USING fts5(
    name, artists, album,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3 4'
);
-- A match in the track name weighs most, then artists, then the album.
INSERT INTO track_fts(track_fts, rank) VALUES ('rank', 'bm25(4.0, 2.0, 1.0)');

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT,
    outcome TEXT,
    detail TEXT
);
""" + ";\n".join(SECONDARY_INDEXES.values()) + ";\n"

MIGRATION_2 = """
-- The ledger: one row per distinct file content (sha256), whatever its status.
CREATE TABLE files (
    rowid INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE,
    size INTEGER,
    container TEXT,
    codec TEXT,
    bitrate INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    duration_ms INTEGER,
    fingerprint BLOB,
    tags TEXT,
    common TEXT,
    licence TEXT,
    provenance TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'quarantined', 'withdrawn')),
    reason TEXT,
    added_at TEXT NOT NULL
);
CREATE INDEX files_status ON files(status);

-- Every path a file was found at (one content may sit at many paths), and what it was then.
-- file_rowid is NULL for files that are not audio (skipped, remembered so reruns skip them).
CREATE TABLE file_paths (
    path TEXT PRIMARY KEY,
    file_rowid INTEGER,
    size INTEGER,
    mtime_ns INTEGER,
    seen_at TEXT NOT NULL,
    note TEXT
) WITHOUT ROWID;
CREATE INDEX file_paths_file ON file_paths(file_rowid);

-- Acoustic near-duplicates: sampled fingerprint terms (an inverted index, so candidates are
-- found without comparing all pairs) and the group each fingerprinted file belongs to.
CREATE TABLE fingerprint_terms (
    term INTEGER NOT NULL,
    file_rowid INTEGER NOT NULL,
    PRIMARY KEY (term, file_rowid)
) WITHOUT ROWID;
CREATE TABLE file_groups (
    file_rowid INTEGER PRIMARY KEY,
    group_rowid INTEGER NOT NULL,
    score REAL
);
CREATE INDEX file_groups_group ON file_groups(group_rowid);

CREATE TABLE track_files (
    track_rowid INTEGER NOT NULL,
    file_rowid INTEGER NOT NULL,
    method TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (track_rowid, file_rowid)
) WITHOUT ROWID;
CREATE INDEX track_files_file ON track_files(file_rowid);
"""

MIGRATION_3 = """
CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    budget_bytes REAL NOT NULL,
    options TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE plan_items (
    plan_id INTEGER NOT NULL,
    track_rowid INTEGER NOT NULL,
    tier TEXT NOT NULL,
    expected_listens REAL,
    bytes REAL,
    PRIMARY KEY (plan_id, track_rowid)
) WITHOUT ROWID;
"""

MIGRATION_4 = """
-- What was made from what: Opus encodes, tagged copies (and the patch that restores the input).
CREATE TABLE derivations (
    input_file INTEGER NOT NULL,
    kind TEXT NOT NULL,
    output_file INTEGER NOT NULL,
    params TEXT NOT NULL,
    patch_file INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (input_file, kind)
) WITHOUT ROWID;
CREATE INDEX derivations_output ON derivations(output_file);
"""

MIGRATION_5 = """
-- When matching last looked at a file (linked or not), so an ingest matches only files no
-- matching has seen yet, including those of a run that was killed before it matched.
ALTER TABLE files ADD COLUMN match_checked_at TEXT;
"""

MIGRATION_6 = """
-- Releases: each shard is a BagIt bag and a hybrid torrent; a later release only adds shards.
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    plan_id INTEGER,
    release_date TEXT,
    options TEXT NOT NULL,
    summary TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE torrents (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL,
    name TEXT NOT NULL UNIQUE,
    bucket TEXT,
    metadata INTEGER NOT NULL DEFAULT 0,
    infohash_v1 TEXT NOT NULL,
    infohash_v2 TEXT,
    piece_length INTEGER NOT NULL,
    size INTEGER NOT NULL,
    torrent_size INTEGER NOT NULL,
    num_files INTEGER NOT NULL,
    popularity_min INTEGER,
    popularity_max INTEGER,
    listens_covered REAL,
    path TEXT NOT NULL
);
CREATE TABLE release_files (
    torrent_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    file_rowid INTEGER NOT NULL,
    PRIMARY KEY (torrent_id, path)
) WITHOUT ROWID;
CREATE TABLE release_tracks (
    track_rowid INTEGER NOT NULL,
    torrent_id INTEGER NOT NULL,
    PRIMARY KEY (track_rowid, torrent_id)
) WITHOUT ROWID;
CREATE INDEX release_files_file ON release_files(file_rowid);

-- Withdrawals: what was taken out, why and when. Tombstoned items never enter new shards.
CREATE TABLE tombstones (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('track', 'file')),
    ref INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (kind, ref)
);
"""

MIGRATION_7 = """
-- A person's matching decisions (`musicark match accept|reject`): an accepted link is a
-- track_files row with method 'manual'; a rejected file is never matched automatically.
CREATE TABLE match_decisions (
    file_rowid INTEGER PRIMARY KEY,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
    track_rowid INTEGER,
    decided_at TEXT NOT NULL
);
"""

MIGRATION_8 = """
-- Why a path holds no stored file (a file with no sign of audio: 'not audio: ...'), so
-- `musicark ledger --skipped` can list every path ingest did not keep, with its reason.
ALTER TABLE file_paths ADD COLUMN reason TEXT;
"""

MIGRATION_9 = """
-- Fixity: the ledger gains the status 'damaged' (bytes that no longer match their SHA-256 or
-- size; never served or released) and per file when it was last verified and how that went.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (rowids kept).
CREATE TABLE files_fixity (
    rowid INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE,
    size INTEGER,
    container TEXT,
    codec TEXT,
    bitrate INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    duration_ms INTEGER,
    fingerprint BLOB,
    tags TEXT,
    common TEXT,
    licence TEXT,
    provenance TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'quarantined', 'withdrawn', 'damaged')),
    reason TEXT,
    added_at TEXT NOT NULL,
    match_checked_at TEXT,
    verified_at TEXT,
    fixity TEXT
);
INSERT INTO files_fixity(rowid, sha256, size, container, codec, bitrate, sample_rate, channels,
                         duration_ms, fingerprint, tags, common, licence, provenance, status,
                         reason, added_at, match_checked_at)
     SELECT rowid, sha256, size, container, codec, bitrate, sample_rate, channels, duration_ms,
            fingerprint, tags, common, licence, provenance, status, reason, added_at,
            match_checked_at FROM files;
DROP TABLE files;
ALTER TABLE files_fixity RENAME TO files;
CREATE INDEX files_status ON files(status);
CREATE INDEX files_verified ON files(verified_at);

-- Store scrubs: a run records its options and start; a killed run with the same options is
-- resumed (files verified since its start are not read again).
CREATE TABLE fixity_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    options TEXT NOT NULL,
    target INTEGER
);
"""

MIGRATION_10 = """
-- Listens (scrobbles, histories, radio logs): counted per listened item, source and month.
CREATE TABLE listen_sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- The raw files imported, by SHA-256: provenance, and why re-importing a file is a no-op.
CREATE TABLE listen_files (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    report TEXT NOT NULL
);
-- What was listened to, as the source named it (one row per distinct artist, title, album and
-- identifiers), and the catalog track it matched (NULL: not yet; `listens rematch` retries).
CREATE TABLE listen_keys (
    id INTEGER PRIMARY KEY,
    khash INTEGER NOT NULL UNIQUE,
    artist TEXT,
    title TEXT,
    album TEXT,
    duration_ms INTEGER,
    mbid TEXT,
    isrc TEXT,
    ext_id TEXT,
    track_rowid INTEGER,
    method TEXT,
    score REAL,
    matched_at TEXT
);
CREATE INDEX listen_keys_track ON listen_keys(track_rowid) WHERE track_rowid IS NOT NULL;
-- The compact table: listens per item, source and month (yyyymm).
CREATE TABLE listen_counts (
    key_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    month INTEGER NOT NULL,
    listens INTEGER NOT NULL,
    PRIMARY KEY (key_id, source_id, month)
) WITHOUT ROWID;
-- Listen identities seen (source user, timestamp, track), per source and month: sorted
-- 64-bit hashes, so a listen imported twice (two exports of one history) counts once.
CREATE TABLE listen_seen (
    source_id INTEGER NOT NULL,
    month INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (source_id, month)
) WITHOUT ROWID;
"""

MIGRATION_11 = """
-- Mirrors: releases fetched with any BitTorrent client and imported (`musicark mirror`).
-- Not `releases`: the publisher's release is not this archive's own (its own `release
-- create` of the same plan must find the tracks unreleased), and its shards stay where the
-- client put them.
CREATE TABLE mirror_releases (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    catalog TEXT CHECK (catalog IN ('snapshot', 'minimal')),
    snapshot_sha256 TEXT,
    listing TEXT,
    imported_at TEXT NOT NULL
);
CREATE TABLE mirror_shards (
    name TEXT PRIMARY KEY,
    release TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('verified', 'incomplete', 'damaged')),
    files_total INTEGER NOT NULL,
    files_good INTEGER NOT NULL,
    bytes_total INTEGER NOT NULL,
    bytes_good INTEGER NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    problems TEXT,
    stamp TEXT,
    checked_at TEXT NOT NULL
);
"""

MIGRATION_12 = """
-- Content known by its SHA-256 but not held here: status 'absent'. A mirror holds an Opus
-- encode but not the original it was made from; the original's ledger row (facts from the
-- publisher's snapshot) keeps the derivation and the track link, so the mirror's own release
-- of the same plan ships the same files (and infohashes) as the publisher's. Rebuilt as in
-- migration 9: SQLite cannot change a CHECK constraint in place.
CREATE TABLE files_absent (
    rowid INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE,
    size INTEGER,
    container TEXT,
    codec TEXT,
    bitrate INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    duration_ms INTEGER,
    fingerprint BLOB,
    tags TEXT,
    common TEXT,
    licence TEXT,
    provenance TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'quarantined', 'withdrawn', 'damaged', 'absent')),
    reason TEXT,
    added_at TEXT NOT NULL,
    match_checked_at TEXT,
    verified_at TEXT,
    fixity TEXT
);
INSERT INTO files_absent(rowid, sha256, size, container, codec, bitrate, sample_rate, channels,
                         duration_ms, fingerprint, tags, common, licence, provenance, status,
                         reason, added_at, match_checked_at, verified_at, fixity)
     SELECT rowid, sha256, size, container, codec, bitrate, sample_rate, channels, duration_ms,
            fingerprint, tags, common, licence, provenance, status, reason, added_at,
            match_checked_at, verified_at, fixity FROM files;
DROP TABLE files;
ALTER TABLE files_absent RENAME TO files;
CREATE INDEX files_status ON files(status);
CREATE INDEX files_verified ON files(verified_at);
"""

MIGRATION_13 = """
-- Full decode checks (`musicark verify store --decode`): when each audio file of the store was
-- last decoded to its end, and what came of it. A side table, not columns of `files`: files
-- is rebuilt whenever a CHECK changes (migrations 9 and 12), and a row here says nothing about
-- the bytes (their SHA-256 outcome stays in files.verified_at and files.fixity).
CREATE TABLE decode_checks (
    file_id INTEGER PRIMARY KEY,  -- files.rowid
    checked_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'undecodable')),
    reason TEXT  -- the decoder's reason when undecodable
);
CREATE INDEX decode_checks_outcome ON decode_checks(outcome);
"""

MIGRATION_14 = """
-- The search index's terms (catalog/terms.py): a prefix longer than the FTS prefix indexes
-- becomes an OR of its terms, which FTS5 streams instead of merging every doclist first.
-- `structure` is the FTS5 structure record the terms were read from: any later write to the
-- index changes it, and search then falls back to the plain prefix query until a refresh.
CREATE TABLE search_terms (
    term TEXT PRIMARY KEY,
    docs INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE search_terms_state (
    structure BLOB
);
CREATE VIRTUAL TABLE temp.track_fts_vocab_14 USING fts5vocab(main, track_fts, row);
INSERT INTO search_terms(term, docs) SELECT term, doc FROM temp.track_fts_vocab_14;
INSERT INTO search_terms_state(structure) SELECT block FROM track_fts_data WHERE id = 10;
DROP TABLE temp.track_fts_vocab_14;
"""

MIGRATION_15 = """
-- Ingest runs and the paths each run did not walk or read (a folder it could not list, an
-- unreadable, vanished or special file, the archive's own folder...), with the reason:
-- `musicark ledger --skipped` lists them per run. Paths not stored because nothing in them
-- looked like audio stay in file_paths (reason set, no file): reruns skip those.
-- Paths (here and in file_paths) are TEXT when their bytes are UTF-8, else a BLOB of the
-- bytes (ingest/paths.py); the Python step of this migration rekeys escaped paths.
-- ingest_runs.paths: a JSON list of the given paths, as shown; outcome: ok or interrupted,
-- NULL while running (or killed). ingest_skips.path: TEXT or BLOB, as file_paths.path.
-- (No comments inside the statements: catalog restore re-creates these tables from them.)
CREATE TABLE IF NOT EXISTS ingest_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    paths TEXT NOT NULL,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS ingest_skips (
    run_id INTEGER NOT NULL REFERENCES ingest_runs(id),
    path NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
"""


def _rekey_paths(conn) -> None:
    from musicark.ingest.paths import rekey_escaped_paths

    rekey_escaped_paths(conn)


# Python steps run after a migration's SQL, in its transaction (same version number).
MIGRATION_STEPS = {15: _rekey_paths}

MIGRATION_16 = """
-- Audio analysis (`musicark analyse`, docs/analysis.md): loudness, ReplayGain 2.0 and quality
-- measures per file, the flags they raise, and album gains. Side tables, not columns of
-- `files` (rebuilt whenever a CHECK changes, as migrations 9 and 12 did). `version` is the
-- analysis method's: a newer method analyses older rows again. `blocks` holds the file's
-- 400 ms gating-block loudness histogram, from which an album's gain is computed without
-- decoding its tracks again.
CREATE TABLE analyses (
    file_id INTEGER PRIMARY KEY,  -- files.rowid
    analysed_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    reason TEXT,  -- why the analysis failed
    integrated_lufs REAL,  -- NULL: digital silence
    lra_lu REAL,
    true_peak_dbtp REAL,
    sample_peak_dbfs REAL,
    track_gain_db REAL,  -- ReplayGain 2.0: to -18 LUFS
    track_peak REAL,  -- linear true peak
    cutoff_hz REAL,  -- a lossy encoder's low-pass found in a lossless file
    cutoff_confidence REAL,
    measures TEXT,  -- JSON: every measured value (docs/analysis.md)
    blocks BLOB
);
CREATE INDEX analyses_at ON analyses(analysed_at);
CREATE TABLE analysis_flags (
    file_id INTEGER NOT NULL,
    flag TEXT NOT NULL,
    value REAL,  -- the measure that raised it
    PRIMARY KEY (file_id, flag)
) WITHOUT ROWID;
CREATE INDEX analysis_flags_flag ON analysis_flags(flag, file_id);
CREATE TABLE album_loudness (
    album_id INTEGER PRIMARY KEY,  -- albums.rowid; only albums whose tracks are all held
    computed_at TEXT NOT NULL,
    integrated_lufs REAL,
    gain_db REAL,  -- ReplayGain 2.0 album gain
    peak REAL,  -- the loudest track's linear true peak
    tracks INTEGER NOT NULL
);
"""

MIGRATIONS: list[str] = [MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5,
                         MIGRATION_6, MIGRATION_7, MIGRATION_8, MIGRATION_9, MIGRATION_10,
                         MIGRATION_11, MIGRATION_12, MIGRATION_13, MIGRATION_14,
                         MIGRATION_15, MIGRATION_16]
