"""Rebuilding a store file from what the archive itself holds, for repair. Each recipe
writes candidate bytes to a temporary path; repair installs them only if they hash to the
SHA-256 the ledger expects (encodes, tags and patches are deterministic, so a rebuild of good
inputs gives the very same bytes; anything else is not a repair).

- an untagged original: its tagged copy + restore patch (zstd --patch-from);
- a tagged copy: its original, tagged again with the recorded fields;
- a restore patch: made again from the original and its tagged copy;
- an Opus derivative: encoded again from its original (bit-exact encodes).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from musicark.derive.opus import KIND as OPUS
from musicark.derive.opus import encode_file
from musicark.derive.patch import apply_patch, make_patch
from musicark.derive.tagging import FIELD_ORDER
from musicark.derive.tags import KIND as TAGGED
from musicark.derive.tags import extension, write_tags
from musicark.ingest.store import Store

Recipe = tuple[str, Callable[[Path], None]]  # (how, write candidate bytes to this path)


def recipes(conn, store: Store, rowid: int) -> Iterator[Recipe]:
    """Every way the archive could rebuild ledger file `rowid` from other files it holds."""
    def sha(r: int) -> str:
        return conn.execute("SELECT sha256 FROM files WHERE rowid = ?", (r,)).fetchone()[0]

    for output, patch in conn.execute(
            "SELECT output_file, patch_file FROM derivations WHERE input_file = ? AND kind = ? "
            "AND patch_file IS NOT NULL", (rowid, TAGGED)):
        tagged, patch_sha = sha(output), sha(patch)
        yield (f"restore patch sha256:{patch_sha} applied to tagged copy sha256:{tagged}",
               lambda out, t=tagged, p=patch_sha: out.write_bytes(apply_patch(
                   store.path_for(t).read_bytes(), store.path_for(p).read_bytes())))
    for input_file, kind, params in conn.execute(
            "SELECT input_file, kind, params FROM derivations WHERE output_file = ? "
            "AND input_file != output_file", (rowid,)):
        source = sha(input_file)
        if kind == TAGGED:
            container, codec = conn.execute("SELECT container, codec FROM files WHERE rowid = ?",
                                            (input_file,)).fetchone()
            recorded = json.loads(params)  # stored with sorted keys
            fields = {k: recorded[k] for k in sorted(
                recorded, key=lambda k: (FIELD_ORDER.index(k) if k in FIELD_ORDER
                                         else len(FIELD_ORDER), k))}
            yield (f"tagged again from sha256:{source}",
                   lambda out, s=source, f=fields, e=extension(container, codec):
                   _retag(store, s, f, e, out))
        elif kind == OPUS:
            yield (f"encoded again from sha256:{source}",
                   lambda out, s=source: _reencode(store, s, out))
    for input_file, output in conn.execute(
            "SELECT input_file, output_file FROM derivations WHERE patch_file = ?", (rowid,)):
        original, tagged = sha(input_file), sha(output)
        yield (f"patch made again from sha256:{original} and sha256:{tagged}",
               lambda out, o=original, t=tagged: out.write_bytes(make_patch(
                   store.path_for(o).read_bytes(), store.path_for(t).read_bytes())))


def _retag(store: Store, source: str, fields: dict, ext: str, out: Path) -> None:
    # mutagen picks the format from the name: tag a copy named with the right extension.
    named = out.with_name(out.name + ext)
    try:
        shutil.copyfile(store.path_for(source), named)
        named.chmod(0o644)
        write_tags(named, fields)
        named.replace(out)
    finally:
        named.unlink(missing_ok=True)


def _reencode(store: Store, source: str, out: Path) -> None:
    named = out.with_name(out.name + ".opus")
    try:
        encode_file(store.path_for(source), named)
        named.replace(out)
    finally:
        named.unlink(missing_ok=True)
