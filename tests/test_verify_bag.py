"""BagIt validation, cross-checked against bagit-python (the Library of Congress's library):
for every kind of damage both must reject the bag, and ours must name the file and the
problem; clean bags pass both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bagit
import pytest

from musicark.verify.shard import validate_bag


def _bag(root: Path) -> Path:
    root.mkdir()
    (root / "a.txt").write_text("hello")
    (root / "sub").mkdir()
    (root / "sub" / "b c.txt").write_text("x" * 100_000)
    (root / "new\nline.txt").write_text("a name with a line feed")
    bagit.make_bag(str(root), {"Source-Organization": "musicark tests"},
                   checksums=["sha256", "sha512"])
    return root


def _theirs_valid(root: Path) -> bool:
    try:
        bagit.Bag(str(root)).validate()
        return True
    except (bagit.BagError, bagit.BagValidationError):
        return False


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (damage, the file our report must name, the kind it must say)
    "payload byte flipped": (lambda b: _flip(b / "data/sub/b c.txt"), "data/sub/b c.txt",
                             "checksum"),
    "payload truncated": (lambda b: (b / "data/a.txt").write_text("hel"), "data/a.txt",
                          "checksum"),
    "payload deleted": (lambda b: (b / "data/a.txt").unlink(), "data/a.txt", "missing"),
    "encoded name deleted": (lambda b: (b / "data/new\nline.txt").unlink(),
                             "data/new\nline.txt", "missing"),
    "file not in the manifests": (lambda b: (b / "data/extra.bin").write_bytes(b"x"),
                                  "data/extra.bin", "extra"),
    "manifest entry changed": (lambda b: _edit(b / "manifest-sha512.txt", "data/a.txt",
                                               "data/z.txt"), "data/z.txt", "missing"),
    "Payload-Oxum wrong": (lambda b: _edit(b / "bag-info.txt", "Payload-Oxum: ",
                                           "Payload-Oxum: 1"), "bag-info.txt", "mismatch"),
    "tag file altered": (lambda b: _edit(b / "bag-info.txt", "musicark tests", "someone"),
                         "bag-info.txt", "checksum"),
    "bagit.txt deleted": (lambda b: (b / "bagit.txt").unlink(), "bagit.txt", "missing"),
    "fetch.txt present": (lambda b: (b / "fetch.txt").write_text(
        "http://example.org/x 3 data/x.txt\nhttp://example.org/y - data/y.txt\n"),
        "fetch.txt", "invalid"),
}


def test_a_clean_bag_passes_both_validators(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    report = validate_bag(bag)
    assert _theirs_valid(bag)
    assert report.exit_code == 0 and not report.problems, [p.line() for p in report.problems]
    assert report.files == 3 + 4  # payload files + bagit.txt, bag-info and two manifests


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_is_found_by_both_and_named(tmp_path: Path, case: str) -> None:
    bag = _bag(tmp_path / "bag")
    damage, rel, kind = DAMAGE[case]
    damage(bag)
    report = validate_bag(bag)
    # bagit-python takes a bag whose fetch.txt names files no manifest lists as valid;
    # RFC 8493 2.2.3 wants every fetched file in every payload manifest.
    assert _theirs_valid(bag) == (case == "fetch.txt present")
    assert report.exit_code == 1
    found = [p for p in report.problems if p.path == str(bag / rel) and p.kind == kind]
    assert found, [p.line() for p in report.problems]


def test_a_line_feed_in_a_name_is_decoded_and_checked(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    _flip(bag / "data" / "new\nline.txt")
    problems = validate_bag(bag).problems
    assert {p.path for p in problems} == {str(bag / "data" / "new\nline.txt")}
    assert {p.kind for p in problems} == {"checksum"}
    assert len(problems) == 2  # one per manifest algorithm: sha256 and sha512


def test_unsafe_manifest_paths_are_invalid(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag")
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write("0" * 64 + "  data/../../etc/passwd\n")
    report = validate_bag(bag)
    assert any(p.kind == "invalid" and "unsafe path" in p.detail for p in report.problems)
    assert not _theirs_valid(bag)
