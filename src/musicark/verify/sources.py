"""Where repair looks for good bytes (`repair --from DIR`): another musicark archive (its
store is looked up by SHA-256 directly), a release directory, a single shard, or any folder.
Candidates are found by size first (one directory walk per source), then hashed."""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from musicark.config import CONFIG_NAME
from musicark.ingest.store import Store, sha256_file


class Sources:
    def __init__(self, dirs: list[Path], wanted_sizes: set[int]) -> None:
        self.dirs = [Path(d).expanduser().absolute() for d in dirs]
        self.wanted = wanted_sizes
        self._by_size: dict[int, list[Path]] | None = None
        self.hashed = 0  # candidate files read

    def _index(self) -> dict[int, list[Path]]:
        if self._by_size is None:
            self._by_size = defaultdict(list)
            for root in self.dirs:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames[:] = [d for d in dirnames if d not in ("damaged", "tmp")]
                    for name in filenames:
                        path = Path(dirpath, name)
                        try:
                            info = path.stat()  # symlinked files are followed, on purpose
                        except OSError:
                            continue
                        # only regular files: a FIFO would block the hash forever, a link
                        # to /dev/zero would never end
                        if stat.S_ISREG(info.st_mode) and info.st_size in self.wanted:
                            self._by_size[info.st_size].append(path)
        return self._by_size

    def candidates(self, sha256: str, size: int | None) -> Iterator[Path]:
        """Files in the sources that may hold these bytes: archives' stores first."""
        for root in self.dirs:
            if (root / CONFIG_NAME).is_file():
                direct = Store(root / "store").path_for(sha256)
                if direct.is_file():
                    yield direct
        if size is not None:
            yield from self._index().get(size, [])

    def find(self, sha256: str, size: int | None, exclude: set[int]) -> Path | None:
        """The first candidate whose bytes hash to `sha256` (inodes in `exclude` skipped:
        the damaged file itself, reached through a hardlink)."""
        for path in self.candidates(sha256, size):
            try:
                if path.stat().st_ino in exclude:
                    continue
                self.hashed += 1
                if sha256_file(path)[0] == sha256:
                    return path
            except OSError:
                continue
        return None
