"""verify --bag and repair --from on hostile folders: links out of the bag, FIFOs, absurd
Payload-Oxum, garbage torrents. Each is reported in one line, nothing outside is read,
nothing blocks, no traceback."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import bagit
import pytest
from typer.testing import CliRunner

from musicark.cli import app
from musicark.verify.report import INVALID
from musicark.verify.shard import validate_bag
from musicark.verify.sources import Sources


def _bag(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"hello")
    (root / "sub" / "b.txt").write_bytes(b"world")
    bagit.make_bag(str(root), checksums=["sha256"])
    return root


def _validate_within(bag: Path, seconds: float = 20):
    """validate_bag in a daemon thread: a read that blocks (a FIFO) fails the test, not
    the run."""
    result = []
    thread = threading.Thread(target=lambda: result.append(validate_bag(bag, workers=1)),
                              daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, "validate_bag blocked"
    return result[0]


@pytest.mark.parametrize("target", ["/dev/zero", "/etc/hostname", "/etc"])
def test_a_symlink_in_the_payload_is_reported_not_followed(tmp_path: Path, target: str
                                                           ) -> None:
    bag = _bag(tmp_path / "bag")
    (bag / "data" / "a.txt").unlink()
    (bag / "data" / "a.txt").symlink_to(target)
    report = _validate_within(bag)
    invalid = [p for p in report.problems if p.kind == INVALID]
    assert [p.path for p in invalid] == [str(bag / "data" / "a.txt")]
    assert f"a symbolic link (to '{target}')" in invalid[0].detail
    # not read: no checksum verdict on it, only the Payload-Oxum that counts files
    assert sorted(p.kind for p in report.problems) == [INVALID, "mismatch"]


def test_a_symlinked_directory_in_the_payload_is_not_silently_ignored(tmp_path: Path
                                                                      ) -> None:
    bag = _bag(tmp_path / "bag")
    (bag / "data" / "etc").symlink_to("/etc")
    report = _validate_within(bag)
    assert report.exit_code == 1
    assert [p.path for p in report.problems] == [str(bag / "data" / "etc")]


def test_a_fifo_in_the_payload_does_not_block(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    (bag / "data" / "a.txt").unlink()
    os.mkfifo(bag / "data" / "a.txt")
    report = _validate_within(bag)
    assert any("a FIFO, not a regular file" in p.detail for p in report.problems)


def test_an_absurd_payload_oxum_is_malformed_not_a_crash(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    info = bag / "bag-info.txt"
    text = "".join(line for line in info.read_text().splitlines(True)
                   if not line.startswith("Payload-Oxum"))
    info.write_text(text + f"Payload-Oxum: {'9' * 5000}.{'9' * 5000}\n")
    report = validate_bag(bag, workers=1)
    assert any(p.detail.startswith("malformed Payload-Oxum '999") and len(p.detail) < 120
               for p in report.problems)


def test_a_garbage_torrent_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(b"\x00garbage" * 100)
    result = CliRunner().invoke(app, ["verify", "--bag", str(bag), "--torrent", str(torrent)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {torrent}: not a torrent libtorrent can load")
    assert "Traceback" not in result.output


def test_repair_sources_offer_only_regular_files(tmp_path: Path) -> None:
    """A FIFO or a link to /dev/zero in a --from folder would block or never end hashing."""
    src = tmp_path / "copies"
    src.mkdir()
    os.mkfifo(src / "pipe")
    (src / "zero").symlink_to("/dev/zero")
    (src / "empty").write_bytes(b"")
    (src / "linked").symlink_to(src / "empty")  # links to files are followed
    found = Sources([src], {0}).candidates(hashlib.sha256(b"").hexdigest(), 0)
    assert sorted(p.name for p in found) == ["empty", "linked"]


def test_repair_from_a_missing_folder_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["repair", "--from", str(tmp_path / "nope"),
                                      "--archive", str(tmp_path)])
    assert result.exit_code == 2 and "Invalid value for '--from'" in result.output


def test_a_symlinked_bagit_txt_is_reported_not_read(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    outside = tmp_path / "secret.txt"
    outside.write_text("password: hunter2\n")  # read, it would be quoted as malformed
    (bag / "bagit.txt").unlink()
    (bag / "bagit.txt").symlink_to(outside)
    report = validate_bag(bag, workers=1)
    assert [p.detail for p in report.problems if p.path == str(bag / "bagit.txt")] == [
        f"a symbolic link (to '{outside}'), not a regular file: a bag holds files (not read)"]
    assert report.exit_code == 1


def test_a_payload_name_that_looks_like_rich_markup_is_printed_as_text(tmp_path: Path
                                                                        ) -> None:
    """A file 'data/[/x]' (a folder '[' holding 'x]') crashed verify's report with a
    MarkupError traceback; names are data, shown as they are."""
    root = tmp_path / "bag"
    (root / "[").mkdir(parents=True)
    (root / "[" / "x]").write_bytes(b"a")
    bagit.make_bag(str(root), checksums=["sha256"])
    (root / "data" / "[" / "x]").write_bytes(b"tampered")
    result = CliRunner().invoke(app, ["verify", "--bag", str(root)])
    assert result.exit_code == 1, result.output
    assert f"checksum {root}/data/[/x]: sha256 is" in result.stdout
