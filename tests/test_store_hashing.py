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
