"""Release: shards as BagIt bags, reproducible hybrid torrents, torrents.json, seed planning
and withdrawals."""

from musicark.release.build import create_release
from musicark.release.options import ReleaseOptions, ReleaseReport
from musicark.release.seedplan import load_seeders, load_torrents, seed_plan
from musicark.release.withdraw import tombstones, withdraw

__all__ = ["ReleaseOptions", "ReleaseReport", "create_release", "load_seeders",
           "load_torrents", "seed_plan", "tombstones", "withdraw"]
