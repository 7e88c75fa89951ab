"""Synthetic catalogs for the demo, tests and benchmarks: deterministic by seed, any size.

Streamed album by album, so memory does not grow with the catalog. The popularity and listens
distribution reproduces the reference release's statistics (docs/listens-model.md): 63 % of
tracks at popularity 0, a geometric tail above it with ~0.1 % of tracks at popularity ≥ 50.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicark.config import PopularityModel
from musicark.errors import BadQuery
from musicark.popularity import expected_listens

ZERO_SHARE = 0.63  # tracks at popularity 0 (the reference's 63 %)
TAIL_DECAY = 0.1206  # geometric decay of popularity above 0: ~0.1 % of tracks at ≥ 50
EXPLICIT_SHARE = 0.135

LATIN = ["ka", "lo", "mi", "ra", "to", "ve", "sa", "ni", "el", "an", "or", "us", "é", "ø",
         "ñ", "ü", "ç", "å", "ä", "ł", "ş", "ő"]
CYRILLIC = ["ка", "ло", "ми", "ра", "то", "ве", "са", "ни", "ель", "ан", "ор", "ус", "жи", "щё"]
CJK = ["山", "川", "花", "風", "月", "夜", "星", "海", "空", "雨", "光", "心", "愛", "夢", "音"]
KANA = ["さ", "く", "ら", "ゆ", "め", "の", "う", "た", "ひ", "か", "り"]
WORDS = ["Love", "Night", "Heart", "Dream", "Fire", "Rain", "Blue", "Gold", "River", "Road",
         "Home", "Light", "Dance", "Summer", "Moon", "Stars", "Song", "Time", "Wild", "Ghost",
         "Echo", "Shadow", "Ocean", "Silver", "Midnight", "Paradise", "Forever", "Alone"]
GENRES = ["pop", "rock", "hip hop", "jazz", "classical", "electronic", "house", "techno",
          "ambient", "folk", "country", "metal", "punk", "soul", "r&b", "reggae", "latin",
          "k-pop", "j-pop", "indie", "blues", "lo-fi", "trap", "bossa nova", "chanson",
          "schlager", "afrobeats", "drum and bass", "cumbia", "fado"]
MARKET_LISTS = [
    ["AD", "AR", "AT", "AU", "BE", "BR", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "JP",
     "MX", "NL", "NO", "SE", "US"],
    ["US", "CA"], ["JP"], ["DE", "AT", "CH"], ["GB", "IE"], [],
]
COUNTRIES = ["US", "GB", "DE", "FR", "JP", "KR", "SE", "BR", "RU", "CN", "ES", "IT", "NL"]
B62 = string.digits + string.ascii_letters

TABLE_COLUMNS = [
    "track_id", "name", "artist_ids", "artists", "album_id", "album", "album_type",
    "release_date", "release_date_precision", "upc", "label", "total_tracks", "disc_number",
    "track_number", "duration_ms", "explicit", "isrc", "popularity", "listens", "markets",
    "genres", "tempo", "key", "mode",
]
FORMATS = ("api-json", "table")


def popularity_sample(n: int, rng: np.random.Generator) -> np.ndarray:
    """Popularity scores with the reference's shape (63 % zeros, geometric tail to 100)."""
    zero = rng.random(n) < ZERO_SHARE
    tail = np.minimum(rng.geometric(1 - np.exp(-TAIL_DECAY), n), 100)
    return np.where(zero, 0, tail).astype(np.int64)


def listens_sample(popularity: np.ndarray, rng: np.random.Generator,
                   model: PopularityModel | None = None) -> np.ndarray:
    """Listen counts around the model's expectation (log-normal noise, mean preserved)."""
    mean = expected_listens(model or PopularityModel(), popularity)
    sigma = 0.35
    noise = rng.lognormal(-sigma * sigma / 2, sigma, len(popularity))
    return np.rint(mean * noise).astype(np.int64)


def upc_check_digit(digits: str) -> str:
    odd = sum(int(d) for d in digits[-1::-2])
    even = sum(int(d) for d in digits[-2::-2])
    return str((10 - (odd * 3 + even) % 10) % 10)


@dataclass
class _Artist:
    id: str
    name: str
    genres: list[str]
    popularity: int
    followers: int


class CatalogSynth:
    """Generates albums with their tracks and artists, reproducibly from a seed."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.rand = random.Random(seed)
        self.seed = seed
        self.artists: list[_Artist] = []
        self.serial = 0

    def _id(self) -> str:
        self.serial += 1
        digest = hashlib.blake2b(f"{self.seed}:{self.serial}".encode(), digest_size=16).digest()
        x = int.from_bytes(digest, "big")
        out = []
        for _ in range(22):
            x, r = divmod(x, 62)
            out.append(B62[r])
        return "".join(out)

    def _name(self, words: int) -> str:
        r = self.rand.random()
        if r < 0.55:
            return " ".join(self.rand.choice(WORDS) for _ in range(words))
        if r < 0.75:
            parts = ["".join(self.rand.choices(LATIN, k=self.rand.randint(2, 4))).capitalize()
                     for _ in range(words)]
            return " ".join(parts)
        if r < 0.87:
            parts = ["".join(self.rand.choices(CYRILLIC, k=self.rand.randint(2, 3))).capitalize()
                     for _ in range(words)]
            return " ".join(parts)
        return "".join(self.rand.choices(CJK + KANA, k=self.rand.randint(2, 5)))

    def _artist(self) -> _Artist:
        # A new artist for about 1 in 4 albums; otherwise a known one (reference: 0.26/album).
        if not self.artists or self.rand.random() < 0.26:
            genres = self.rand.sample(GENRES, self.rand.choice([0, 1, 1, 2, 3]))
            artist = _Artist(self._id(), self._name(self.rand.choice([1, 2, 2, 3])), genres,
                             int(popularity_sample(1, self.rng)[0]),
                             int(self.rng.pareto(1.2) * 50))
            if len(self.artists) < 200_000:
                self.artists.append(artist)
            else:
                self.artists[self.rand.randrange(len(self.artists))] = artist
            return artist
        return self.rand.choice(self.artists)

    def albums(self, tracks: int) -> Iterator[dict]:
        """Yield albums (dicts with their tracks) until `tracks` tracks have been made."""
        made = 0
        while made < tracks:
            kind = self.rand.choices(["single", "album", "compilation"], [0.72, 0.25, 0.03])[0]
            count = {"single": self.rand.choice([1, 1, 1, 2, 3]),
                     "album": self.rand.randint(7, 16),
                     "compilation": self.rand.randint(10, 25)}[kind]
            count = min(count, tracks - made)
            artist = self._artist()
            year = int(np.clip(self.rng.normal(2012, 9), 1950, 2025))
            precision = self.rand.choices(["day", "month", "year"], [0.85, 0.05, 0.10])[0]
            date = {"day": f"{year}-{self.rand.randint(1, 12):02d}-{self.rand.randint(1, 28):02d}",
                    "month": f"{year}-{self.rand.randint(1, 12):02d}", "year": str(year)}[precision]
            upc_body = f"{self.rand.randrange(10**11):011d}"
            registrant = "".join(self.rand.choices(string.ascii_uppercase + string.digits, k=3))
            country = self.rand.choice(COUNTRIES)
            pops = popularity_sample(count, self.rng)
            listens = listens_sample(pops, self.rng)
            whole = self.rng.random(count) < 0.25
            jitter = self.rng.integers(-1500, 1500, count)
            minutes = self.rng.integers(1, 8, count) * 60_000 + jitter
            free = np.clip(self.rng.lognormal(np.log(205_000), 0.35, count), 20_000, 1_800_000)
            durations = np.where(whole, minutes, free).astype(np.int64)
            explicit = self.rng.random(count) < EXPLICIT_SHARE
            market = self.rand.choices(MARKET_LISTS, [0.6, 0.1, 0.08, 0.08, 0.08, 0.06])[0]
            album = {
                "id": self._id(), "name": self._name(self.rand.choice([1, 2, 3])),
                "album_type": kind, "release_date": date, "release_date_precision": precision,
                "upc": upc_body + upc_check_digit(upc_body), "label": f"{artist.name} Records"
                if self.rand.random() < 0.2 else self.rand.choice(["Indie", "Self-released",
                                                                   "Nordic Tone", "東京レコード"]),
                "total_tracks": count, "artist": artist, "markets": market, "tracks": [],
            }
            for i in range(count):
                credited = [artist]
                if self.rand.random() < 0.25:
                    credited.append(self._artist())
                album["tracks"].append({
                    "id": self._id(), "name": self._name(self.rand.choice([1, 2, 2, 3, 4])),
                    "artists": credited, "disc_number": 1, "track_number": i + 1,
                    "duration_ms": int(durations[i]), "explicit": bool(explicit[i]),
                    "isrc": f"{country}{registrant}{year % 100:02d}"
                            f"{self.rand.randrange(10**5):05d}",
                    "popularity": int(pops[i]), "listens": int(listens[i]),
                    "tempo": round(float(self.rng.normal(120, 25)), 3),
                    "key": int(self.rng.integers(0, 12)), "mode": int(self.rng.random() < 0.62),
                })
            made += count
            yield album


def _api_lines(album: dict) -> Iterator[dict]:
    embed_artist = lambda a: {"id": a.id, "name": a.name, "type": "artist"}  # noqa: E731
    album_obj = {
        "id": album["id"], "name": album["name"], "album_type": album["album_type"],
        "release_date": album["release_date"],
        "release_date_precision": album["release_date_precision"],
        "total_tracks": album["total_tracks"], "type": "album",
        "artists": [embed_artist(album["artist"])], "available_markets": album["markets"],
    }
    for t in album["tracks"]:
        yield {
            "type": "track", "id": t["id"], "name": t["name"], "album": album_obj,
            "artists": [embed_artist(a) for a in t["artists"]],
            "disc_number": t["disc_number"], "track_number": t["track_number"],
            "duration_ms": t["duration_ms"], "explicit": t["explicit"],
            "external_ids": {"isrc": t["isrc"]}, "popularity": t["popularity"],
            "available_markets": album["markets"],
        }


def _table_row(album: dict, t: dict) -> list:
    return [
        t["id"], t["name"], ";".join(a.id for a in t["artists"]),
        ";".join(a.name for a in t["artists"]), album["id"], album["name"], album["album_type"],
        album["release_date"], album["release_date_precision"], album["upc"], album["label"],
        album["total_tracks"], t["disc_number"], t["track_number"], t["duration_ms"],
        "true" if t["explicit"] else "false", t["isrc"], t["popularity"], t["listens"],
        ";".join(album["markets"]), ";".join(album["artist"].genres), t["tempo"], t["key"],
        t["mode"],
    ]


def write_catalog(
    out: Path, tracks: int, fmt: str = "table", *, seed: int = 0,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Write a synthetic catalog of `tracks` tracks; returns the number written.

    `table` writes CSV (list columns joined by `;`), `api-json` writes JSONL: artist lines
    (with genres, followers, popularity) then track lines embedding their album and artists.
    """
    if fmt not in FORMATS:
        raise BadQuery(f"unknown synthetic format {fmt!r}; use one of {', '.join(FORMATS)}")
    if tracks < 0:
        raise BadQuery("tracks must not be negative")
    if not out.parent.is_dir():
        raise BadQuery(f"{out.parent}: no such directory to write the catalog in")
    synth = CatalogSynth(seed)
    tmp = out.with_name(f".{out.name}.partial")
    written = 0
    seen_artists: set[str] = set()
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh) if fmt == "table" else None
        if writer:
            writer.writerow(TABLE_COLUMNS)
        for album in synth.albums(tracks):
            if writer:
                writer.writerows(_table_row(album, t) for t in album["tracks"])
            else:
                for t in album["tracks"]:
                    for a in t["artists"]:
                        if a.id not in seen_artists:
                            seen_artists.add(a.id)
                            fh.write(json.dumps({
                                "type": "artist", "id": a.id, "name": a.name,
                                "genres": a.genres, "popularity": a.popularity,
                                "followers": {"href": None, "total": a.followers},
                            }, ensure_ascii=False) + "\n")
                for line in _api_lines(album):
                    fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += len(album["tracks"])
            if written % 10_000 < len(album["tracks"]):
                progress(written, tracks)
    os.replace(tmp, out)
    progress(written, tracks)
    return written
