"""A shard as a BagIt bag (RFC 8493) whose payload files are hardlinks into the store.

Checksums come from the ledger: the store is content-addressed by SHA-256, so writing the
manifest reads no payload byte. Tag files are written in a fixed order and format, so the
same shard always gives the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from musicark import __version__
from musicark.ingest.store import Store
from musicark.release.items import dumps, tracks_json
from musicark.release.shards import Shard

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


@dataclass
class BagFiles:
    """Every file of a bag: relative path parts and where its bytes are (for hashing)."""

    entries: list[tuple[tuple[str, ...], Path]]
    linked: int
    copied: int


def manifest_path(parts: tuple[str, ...]) -> str:
    """A path as RFC 8493 writes it in manifests: '/'-separated, CR, LF and % encoded."""
    text = "/".join(parts)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def link_or_copy(src: Path, dest: Path, made: set[Path] | None = None) -> bool:
    """Hardlink `src` to `dest` (True); copy when a link cannot serve (other filesystem).

    `made` remembers the directories already created: one mkdir per directory, not per file.
    """
    if made is None or dest.parent not in made:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if made is not None:
            made.add(dest.parent)
    try:
        os.link(src, dest)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    shutil.copyfile(src, dest)
    return False


def write_bag(root: Path, shard: Shard, store: Store, *, group: str,
              on: date | None) -> BagFiles:
    """Write the bag for `shard` at `root` (which must not exist yet)."""
    root.mkdir(parents=True)
    entries: list[tuple[tuple[str, ...], Path]] = []
    manifest, tag_files, lines = [], {}, []
    linked = [0, 0]  # hardlinked, copied
    payload_bytes = 0
    made: set[Path] = set()

    def place(sha256: str, rel: tuple[str, ...]) -> None:
        dest = root.joinpath(*rel)
        linked[0 if link_or_copy(store.path_for(sha256), dest, made) else 1] += 1
        entries.append((rel, dest))

    for parts, item in sorted(shard.entries, key=lambda e: e[0]):
        rel = ("data", *parts)
        place(item.sha256, rel)
        manifest.append(f"{item.sha256}  {manifest_path(rel)}\n")
        payload_bytes += item.size
        restore = None
        if item.patch_sha256:
            patch_rel = ("restore", f"{item.untagged_sha256}.zst")
            place(item.patch_sha256, patch_rel)
            tag_files[patch_rel] = item.patch_sha256
            restore = {"patch": "/".join(patch_rel), "sha256": item.untagged_sha256,
                       "patch_sha256": item.patch_sha256}
        lines.append(dumps({"path": "/".join(rel), "sha256": item.sha256, "size": item.size,
                            "tier": item.tier, "source_sha256": item.source_sha256,
                            "licence": item.licence, "restore": restore,
                            "tracks": tracks_json(item)}) + "\n")
    pops = [item.popularity for _, item in shard.entries if item.popularity is not None]
    info = [("Bag-Software-Agent", f"musicark {__version__}"),
            ("Bag-Group-Identifier", group),
            ("External-Identifier", shard.name),
            ("Payload-Oxum", f"{payload_bytes}.{len(manifest)}")]
    if on is not None:
        info.append(("Bagging-Date", on.isoformat()))
    if pops:
        info.append(("Musicark-Popularity-Range", f"{min(pops)}-{max(pops)}"))
    info.append(("Internal-Sender-Description",
                 "Audio preserved by musicark; files.jsonl names the recordings of each "
                 "payload file; restore/ holds zstd patches that rebuild untagged originals "
                 "(zstd -d --patch-from=<payload file> <patch>)."))
    texts = {("bagit.txt",): BAGIT_TXT,
             ("bag-info.txt",): "".join(f"{k}: {v}\n" for k, v in info),
             ("manifest-sha256.txt",): "".join(manifest),
             ("files.jsonl",): "".join(lines)}
    for rel, text in texts.items():
        data = text.encode("utf-8")
        path = root.joinpath(*rel)
        path.write_bytes(data)
        tag_files[rel] = hashlib.sha256(data).hexdigest()
        entries.append((rel, path))
    tagmanifest = "".join(f"{sha}  {manifest_path(rel)}\n"
                          for rel, sha in sorted(tag_files.items()))
    path = root / "tagmanifest-sha256.txt"
    path.write_bytes(tagmanifest.encode("utf-8"))
    entries.append((("tagmanifest-sha256.txt",), path))
    entries.sort(key=lambda e: e[0])
    return BagFiles(entries, *linked)
