"""The store's one-pass copy and hashing: exact digests at chunk edges, and a source cut
while it is read reported as changed (read, never mapped: no SIGBUS)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from musicark.ingest import store as store_module
from musicark.ingest.store import CHUNK, SourceChanged, Store, sha256_file


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_digests_at_chunk_edges(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(src) == (expected, size)
    for link in (False, True):
        sha, stored = Store(tmp_path / f"store-{link}").put(src, link=link)
        assert (sha, stored) == (expected, size)
        path = Store(tmp_path / f"store-{link}").path_for(sha)
        assert path.read_bytes() == data and oct(path.stat().st_mode & 0o777) == "0o444"


@pytest.mark.parametrize("link", [False, True])
def test_a_source_cut_while_hashed_is_reported_as_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: bool) -> None:
    src = tmp_path / "big.flac"
    src.write_bytes(os.urandom(4 * CHUNK))
    scanned = os.stat(src)
    real_preadv = os.preadv
    calls = []

    def cut_after_the_first_chunk(fd, buffers, offset):
        calls.append(offset)
        if len(calls) == 2:
            os.truncate(src, CHUNK + 10)  # another program rewrites the file meanwhile
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(store_module.os, "preadv", cut_after_the_first_chunk)
    store = Store(tmp_path / "store")
    with pytest.raises(SourceChanged, match=r"size 4,194,304 became 1,048,586"):
        store.put(src, link=link, scanned=scanned)
    assert len(calls) >= 2
    assert not list((tmp_path / "store").rglob("sha256/*/*/*"))
    assert not list((tmp_path / "store" / "tmp").glob("*.part"))


def test_ingest_syncs_the_store_before_each_ledger_commit(
        archive, tmp_path: Path, testdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local workers leave their renames' directories unsynced; the writer syncs the store
    once before committing the rows that name those objects."""
    import shutil

    from musicark.ingest.pipeline import ingest

    src = tmp_path / "in"
    src.mkdir()
    for f in (testdata / "audio" / "music" / "librosa-data").glob("*.ogg"):
        shutil.copy(f, src)
    synced_inside_a_transaction = []
    real_sync = Store.sync

    def recording_sync(self) -> None:
        synced_inside_a_transaction.append(archive.conn.in_transaction)
        real_sync(self)

    monkeypatch.setattr(Store, "sync", recording_sync)
    report = ingest(archive, [src], workers=2, fingerprint=False, match=False)
    assert report.ingested == 16
    assert synced_inside_a_transaction and all(synced_inside_a_transaction)
    rows = archive.conn.execute("SELECT sha256 FROM files").fetchall()
    assert all(Store(archive.store_path).has(sha) for (sha,) in rows)
