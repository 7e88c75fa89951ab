"""A real BitTorrent transfer on 127.0.0.1 between two libtorrent sessions, for tests."""

from __future__ import annotations

import time
from pathlib import Path

import libtorrent as lt


def session() -> lt.session:
    return lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,
                       "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                       "allow_multiple_connections_per_ip": True})


def add(peer: lt.session, info: lt.torrent_info, save: Path) -> lt.torrent_handle:
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(save)
    return peer.add_torrent(params)


def transfer(torrent: Path, seed_from: Path, download_to: Path, timeout: float = 60) -> None:
    """Seed `torrent` from the folder holding its content, download it into another folder
    through a second session, and wait until the download is complete and checked."""
    info = lt.torrent_info(str(torrent))
    seeder, leecher = session(), session()
    seeding = add(seeder, info, seed_from)
    deadline = time.monotonic() + timeout
    while not seeding.status().is_seeding:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    getting = add(leecher, lt.torrent_info(info), download_to)
    getting.connect_peer(("127.0.0.1", seeder.listen_port()))
    while not getting.status().is_seeding:
        assert time.monotonic() < deadline, getting.status().state
        time.sleep(0.05)
    leecher.remove_torrent(getting)
