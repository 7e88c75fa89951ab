"""Mirrors: a release fetched with any BitTorrent client becomes a working, verifiable
archive (`musicark mirror import`, `musicark mirror status`).

musicark downloads nothing: the operator fetches the torrents with the client they use and
points `import_mirror` at the result. Each shard is checked with the fixity check
(`musicark.verify`: the bag and its torrent, one read per file); verified shards are
registered into the store by link, the catalog comes from the release's metadata snapshot
(merged by source and id) or, without it, a minimal one from files.jsonl.
"""

from musicark.mirror.run import MirrorReport, import_mirror
from musicark.mirror.status import mirror_status

__all__ = ["MirrorReport", "import_mirror", "mirror_status"]
