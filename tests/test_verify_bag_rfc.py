"""verify --bag against RFC 8493, rule by rule (the section is in each test's name), on bags
built here. bagit-python, the Library of Congress's implementation, is asked too: where it
agrees the test says so, where it is wrong the test pins what it does (docs/fixity.md)."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import bagit
import pytest
from typer.testing import CliRunner

from musicark.cli import app
from musicark.release.bag import manifest_path
from musicark.verify.report import (
    CHECKSUM,
    EXTRA,
    INCOMPLETE,
    INVALID,
    MISMATCH,
    MISSING,
    WARNING,
)
from musicark.verify.shard import validate_bag

DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def _hex(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


def make_bag(root: Path, files: dict[str, bytes], algorithms=("sha256", "sha512"),
             declaration: bytes = DECLARATION, info: str | None = None) -> Path:
    """A BagIt 1.0 bag written to the letter: data/<name> for each file, one manifest and
    one tag manifest per algorithm, bag-info.txt with its Payload-Oxum."""
    (root / "data").mkdir(parents=True)
    for name, data in files.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "bagit.txt").write_bytes(declaration)
    oxum = f"Payload-Oxum: {sum(map(len, files.values()))}.{len(files)}\n"
    (root / "bag-info.txt").write_text(info if info is not None else oxum, encoding="utf-8")
    for algorithm in algorithms:
        (root / f"manifest-{algorithm}.txt").write_bytes("".join(
            f"{_hex(data, algorithm)}  {manifest_path(('data', *name.split('/')))}\n"
            for name, data in sorted(files.items())).encode())
    retag(root, algorithms)
    return root


def retag(root: Path, algorithms=("sha256", "sha512")) -> None:
    """Rewrite the tag manifests after a test edits a tag file."""
    tags = sorted(p.name for p in root.iterdir()
                  if p.is_file() and not p.name.startswith("tagmanifest-"))
    for algorithm in algorithms:
        (root / f"tagmanifest-{algorithm}.txt").write_text("".join(
            f"{_hex((root / t).read_bytes(), algorithm)}  {t}\n" for t in tags))


def theirs_valid(root: Path) -> bool:
    try:
        bagit.Bag(str(root)).validate()
        return True
    except (bagit.BagError, ValueError, OSError):
        return False


def kinds(report, rel: str) -> list[str]:
    return [p.kind for p in report.problems if p.path == str(report_root(report) / rel)]


def report_root(report) -> Path:
    return report.notes["root"]


def check(root: Path):
    report = validate_bag(root, workers=1)
    report.notes["root"] = root
    return report


def details(report) -> str:
    return "\n".join(p.line() for p in report.problems)


def test_a_clean_bag_is_valid_for_both(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b.txt": b"bb"})
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)
    assert theirs_valid(bag)


# 2.1.1 Bag declaration: bagit.txt

def test_2_1_1_bagit_txt_bom_is_invalid(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, declaration=b"\xef\xbb\xbf" + DECLARATION)
    report = check(bag)
    assert kinds(report, "bagit.txt") == [INVALID]
    assert "byte order mark" in details(report)
    assert not theirs_valid(bag)  # agreed


@pytest.mark.parametrize("declaration", [
    b"BagIt-Version : 1.0\nTag-File-Character-Encoding: UTF-8\n",
    b" BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
    b"BagIt-Version:  1.0\nTag-File-Character-Encoding: UTF-8\n",
    b"BagIt-Version: 1.0\nTag-File-Character-Encoding:UTF-8\n",
    b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8 \n",
])
def test_2_1_1_stray_whitespace_in_bagit_txt_is_invalid(tmp_path: Path, declaration: bytes
                                                       ) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, declaration=declaration)
    report = check(bag)
    assert report.exit_code == 1
    assert INVALID in kinds(report, "bagit.txt"), details(report)
    # bagit-python strips the whitespace and calls these valid (most of them)


@pytest.mark.parametrize("declaration", [
    b"Tag-File-Character-Encoding: UTF-8\nBagIt-Version: 1.0\n",  # order
    DECLARATION + b"Extra: line\n",  # a third line
    DECLARATION + b"\n",  # a blank third line
    b"BagIt-Version: 1.0\n",  # no encoding
    b"BagIt-Version: one\nTag-File-Character-Encoding: UTF-8\n",  # not M.N
])
def test_2_1_1_exactly_the_two_required_lines(tmp_path: Path, declaration: bytes) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, declaration=declaration)
    report = check(bag)
    assert INVALID in kinds(report, "bagit.txt"), details(report)


def test_2_1_1_crlf_line_endings_are_fine(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"},
                   declaration=DECLARATION.replace(b"\n", b"\r\n"))
    assert check(bag).exit_code == 0 and theirs_valid(bag)


# 2.1.2 Payload directory

def test_2_1_2_no_data_directory_is_invalid(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {})
    (bag / "data").rmdir()
    assert MISSING in kinds(check(bag), "data")
    assert not theirs_valid(bag)


# 2.1.3 Payload manifest

def test_2_1_3_dot_slash_paths_name_the_same_file(tmp_path: Path) -> None:
    """'./data/a.txt' is a path relative to the base directory, like 'data/a.txt'; it was
    rejected ("not under data/") and the file reported as unlisted."""
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b.txt": b"b"})
    for algorithm in ("sha256", "sha512"):
        manifest = bag / f"manifest-{algorithm}.txt"
        manifest.write_text(manifest.read_text().replace("  data/", "  ./data/")
                            .replace("data/sub/", "data/./sub//"))
    retag(bag)
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)
    assert theirs_valid(bag)  # agreed


def test_2_1_3_cr_lf_and_percent_are_percent_encoded(tmp_path: Path) -> None:
    names = {"line\nfeed.txt": b"1", "carriage\rreturn.txt": b"2", "100%.txt": b"3",
             "%25 literally.txt": b"4"}
    bag = make_bag(tmp_path / "bag", names)
    text = (bag / "manifest-sha256.txt").read_text()
    assert "line%0Afeed" in text and "100%25.txt" in text and "%2525 literally" in text
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)
    # bagit-python decodes %0A and %0D but not %25: it looks for '100%25.txt' and fails
    assert not theirs_valid(bag)


def test_2_1_3_percent_encoding_is_case_insensitive(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a\nb.txt": b"1"})
    for algorithm in ("sha256", "sha512"):
        manifest = bag / f"manifest-{algorithm}.txt"
        manifest.write_text(manifest.read_text().replace("%0A", "%0a"))
    retag(bag)
    assert check(bag).exit_code == 0


def test_2_1_3_a_bare_percent_is_read_literally_with_a_warning(tmp_path: Path) -> None:
    """bagit-python writes '100%.txt' unencoded; such bags are common, so the name is read
    as written, and the report says the manifest breaks the rule."""
    root = tmp_path / "bag"
    root.mkdir()
    (root / "100%.txt").write_bytes(b"x")
    bagit.make_bag(str(root), checksums=["sha256"])
    report = check(root)
    assert report.exit_code == 0, details(report)
    assert kinds(report, "manifest-sha256.txt") == [WARNING]
    assert "not written as %25" in details(report)


@pytest.mark.parametrize("name", ["form\x0cfeed.txt", "line\u2028separator.txt",
                                  "vertical\x0btab.txt", "next\x85line.txt"])
def test_2_1_3_only_cr_and_lf_end_a_line(tmp_path: Path, name: str) -> None:
    """str.splitlines() also cuts at form feeds, U+2028, U+0085...: a payload name holding
    one was cut in two, its file reported missing and unlisted."""
    bag = make_bag(tmp_path / "bag", {name: b"x"})
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)
    # bagit-python reads manifests through codecs.open, whose lines end at these too
    assert not theirs_valid(bag)


@pytest.mark.parametrize("path", ["data/../../outside.txt", "/etc/hostname",
                                  "data/sub/../a.txt", "data/a%00.txt".replace("%00", "\0")])
def test_2_1_3_unsafe_paths_are_invalid(tmp_path: Path, path: str) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b.txt": b"b"})
    (tmp_path / "outside.txt").write_bytes(b"secret")
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex(b'secret')}  {path}\n")
    retag(bag)
    report = check(bag)
    found = [p for p in report.problems if p.path == str(bag / "manifest-sha256.txt")]
    assert [p.kind for p in found] == [INVALID], details(report)
    assert "unsafe path" in found[0].detail
    tags = [f for f in bag.iterdir() if f.is_file() and not f.name.startswith("tagmanifest-")]
    assert report.bytes == 1 + 1 + sum(f.stat().st_size for f in tags)  # outside.txt unread


@pytest.mark.parametrize(("raw", "clean"), [
    ("data/a.txt", "data/a.txt"), ("./data/a.txt", "data/a.txt"),
    ("data//sub/./a.txt", "data/sub/a.txt"), ("data/.hidden", "data/.hidden"),
    ("data/a%0Ab%25", "data/a\nb%"), ("data/...", "data/..."),
    ("/etc/hostname", None), ("data/../x", None), ("..", None), ("./", None), ("", None),
    ("data/a\0", None), ("data/a%2F..%2F..", "data/a%2F..%2F.."), ("data/sub/", "data/sub"),
])
def test_2_1_3_path_normalisation(raw: str, clean: str | None) -> None:
    """'%2F' is not a separator (only CR, LF and % are encoded): the name keeps it."""
    from musicark.verify.bagtext import clean_path

    path, unsafe = clean_path(raw)
    assert (path if unsafe is None else None) == clean, unsafe


def test_2_1_3_a_payload_manifest_lists_only_files_in_data(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b.txt": b"b"})
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex((bag / 'bag-info.txt').read_bytes())}  bag-info.txt\n")
        fh.write(f"{_hex(b'')}  data/sub\n")
    retag(bag)
    report = check(bag)
    assert kinds(report, "manifest-sha256.txt") == [INVALID]
    assert "is not under data/" in details(report)
    assert kinds(report, "data/sub") == [INVALID]
    assert "lists a directory" in details(report)


@pytest.mark.parametrize("checksum", ["xyz", "0" * 63, "g" * 64])
def test_2_1_3_a_checksum_is_hex_of_the_algorithm_s_length(tmp_path: Path, checksum: str
                                                          ) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "manifest-sha256.txt").write_text(f"{checksum}  data/a.txt\n")
    retag(bag)
    report = check(bag)
    assert kinds(report, "manifest-sha256.txt") == [INVALID], details(report)
    assert not theirs_valid(bag)


def test_2_1_3_uppercase_hex_is_allowed(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "manifest-sha256.txt").write_text(f"{_hex(b'a').upper()}\tdata/a.txt\n")
    retag(bag)
    assert check(bag).exit_code == 0 and theirs_valid(bag)


def test_2_1_3_the_same_file_listed_twice(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex(b'a')}  data/a.txt\n")
    retag(bag)
    report = check(bag)
    assert report.exit_code == 0 and kinds(report, "manifest-sha256.txt") == [WARNING]
    # bagit-python refuses this in a 1.0 bag (a rule RFC 8493 does not state)
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex(b'b')}  data/a.txt\n")
    retag(bag)
    report = check(bag)
    assert INVALID in kinds(report, "manifest-sha256.txt")
    assert "different checksums" in details(report)


# 2.2.1 Tag manifests

def test_2_2_1_tag_manifests_cover_tag_files(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "bag-info.txt").write_text("Payload-Oxum: 1.1\nContact-Name: someone\n")
    report = check(bag)
    assert kinds(report, "bag-info.txt") == [CHECKSUM, CHECKSUM]  # sha256 and sha512
    assert not theirs_valid(bag)  # agreed


def test_2_2_1_what_a_tag_manifest_must_not_list(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    with open(bag / "tagmanifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex(b'a')}  data/a.txt\n")
        fh.write(f"{_hex((bag / 'tagmanifest-sha512.txt').read_bytes())}  "
                 "tagmanifest-sha512.txt\n")
        fh.write(f"{_hex(b'')}  missing-tag.txt\n")
    report = check(bag)
    lines = details(report)
    assert kinds(report, "tagmanifest-sha256.txt") == [INVALID, INVALID, WARNING], lines
    assert "is a payload file" in lines and "is a tag manifest" in lines
    assert kinds(report, "missing-tag.txt") == [MISSING]


def test_2_2_1_unlisted_tag_files_are_a_warning(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "notes.txt").write_text("added later")
    report = check(bag)
    assert report.exit_code == 0 and kinds(report, "notes.txt") == [WARNING]


# 2.2.2 Bag metadata: bag-info.txt

def test_2_2_2_continuation_lines_fold_into_the_value(tmp_path: Path) -> None:
    from musicark.verify.bag import inspect_bag
    from musicark.verify.report import Report

    info = ("Payload-Oxum: 1.1\nExternal-Description: a long\n  description\n\tof the bag\n"
            "Contact-Name: A. Person\r\nLabel with spaces: yes\n")
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, info=info)
    report = Report("bag")
    layout = inspect_bag(bag, report)
    assert not report.problems, [p.line() for p in report.problems]
    assert layout.info["External-Description"] == ["a long description of the bag"]
    assert layout.info["Label with spaces"] == ["yes"]
    assert theirs_valid(bag)


@pytest.mark.parametrize("line", ["  Indented-First: line", "No-Colon here",
                                  "Label :value", "Label:value", " : empty label"])
def test_2_2_2_a_line_that_is_no_element_is_invalid(tmp_path: Path, line: str) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, info=f"{line}\nPayload-Oxum: 1.1\n")
    report = check(bag)
    assert kinds(report, "bag-info.txt") == [INVALID], details(report)


def test_2_2_2_before_1_0_whitespace_around_the_colon_is_accepted(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, info="Payload-Oxum :  1.1\n",
                   declaration=DECLARATION.replace(b"1.0", b"0.97"))
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)


def test_2_2_2_payload_oxum_must_not_be_repeated(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"},
                   info="Payload-Oxum: 1.1\nPayload-Oxum: 1.1\nBagging-Date: 2026-01-01\n"
                        "Bagging-Date: 2026-01-02\n")
    report = check(bag)
    assert sorted(kinds(report, "bag-info.txt")) == [INVALID, WARNING], details(report)


def test_2_2_2_a_wrong_payload_oxum_is_a_mismatch(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, info="Payload-Oxum: 2.1\n")
    assert kinds(check(bag), "bag-info.txt") == [MISMATCH]
    assert not theirs_valid(bag)  # agreed


# 2.2.3 Fetch file: a holey bag

def _holey(tmp_path: Path) -> tuple[Path, bytes]:
    content = b"fetched later" * 10
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b c.txt": content})
    (bag / "data" / "sub" / "b c.txt").unlink()
    (bag / "fetch.txt").write_text(
        f"https://example.org/b%20c.txt {len(content)} data/sub/b c.txt\n")
    retag(bag)
    return bag, content


def test_2_2_3_a_holey_bag_is_incomplete_with_what_to_fetch(tmp_path: Path) -> None:
    """A payload file fetch.txt lists was "unsupported" and the bag damaged; it is an
    incomplete bag, and the report says where each missing file is to be fetched from."""
    bag, content = _holey(tmp_path)
    report = check(bag)
    assert report.exit_code == 1
    assert [(p.path, p.kind) for p in report.problems] == [
        (str(bag / "data/sub/b c.txt"), INCOMPLETE)], details(report)
    assert "https://example.org/b%20c.txt (130 bytes)" in report.problems[0].detail
    assert report.notes["fetch"] == [{"url": "https://example.org/b%20c.txt",
                                      "length": len(content), "path": "data/sub/b c.txt"}]
    assert not theirs_valid(bag)  # agreed: not complete
    (bag / "data" / "sub" / "b c.txt").write_bytes(content)  # fetched by someone else
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)
    assert theirs_valid(bag)


def test_2_2_3_cli_says_what_to_fetch_and_fetches_nothing(tmp_path: Path) -> None:
    bag, _ = _holey(tmp_path)
    result = CliRunner().invoke(app, ["verify", "--bag", str(bag)])
    assert result.exit_code == 1, result.output
    assert "incomplete" in result.stdout and "https://example.org/b%20c.txt" in result.stdout
    assert "1 files to fetch (130 bytes known)" in result.stdout
    assert not (bag / "data" / "sub" / "b c.txt").exists()


@pytest.mark.parametrize("entry", [
    "https://example.org/x 130 /etc/hostname",
    "https://example.org/x 130 data/../../outside",
    "https://example.org/x 130 bagit.txt",
    "https://example.org/x 130 data/not-in-the-manifests.txt",
    "example.org/x 130 data/sub/b c.txt",
    "https://example.org/x lots data/sub/b c.txt",
    "https://example.org/x",
])
def test_2_2_3_fetch_entries_are_hostile_too(tmp_path: Path, entry: str) -> None:
    bag, _ = _holey(tmp_path)
    (bag / "fetch.txt").write_text(f"{entry}\n")
    retag(bag)
    report = check(bag)
    assert kinds(report, "fetch.txt") == [INVALID], details(report)
    # a refused entry owes nothing: the absent file is plainly missing
    assert kinds(report, "data/sub/b c.txt") == [MISSING, MISSING]
    assert "fetch" not in report.notes


def test_2_2_3_a_file_listed_twice_in_fetch_txt_is_invalid(tmp_path: Path) -> None:
    bag, content = _holey(tmp_path)
    with open(bag / "fetch.txt", "a") as fh:
        fh.write(f"https://elsewhere.example/b {len(content)} data/sub/b%20c.txt\n"
                 f"https://elsewhere.example/b {len(content)} data/sub/b c.txt\n")
    retag(bag)
    report = check(bag)
    # '%20' is not decoded (RFC 8493 encodes only CR, LF and %): that is another name
    assert kinds(report, "fetch.txt") == [INVALID, INVALID]
    assert "'data/sub/b%20c.txt' is not in manifest-sha256.txt" in details(report)
    assert "line 3: 'data/sub/b c.txt' is listed twice" in details(report)
    assert report.notes["fetch"][0]["url"] == "https://example.org/b%20c.txt"  # the first


def test_2_2_3_a_fetched_file_of_the_wrong_length_is_a_mismatch(tmp_path: Path) -> None:
    bag, content = _holey(tmp_path)
    (bag / "data" / "sub" / "b c.txt").write_bytes(content + b"!")
    report = check(bag)
    assert MISMATCH in kinds(report, "data/sub/b c.txt")
    assert CHECKSUM in kinds(report, "data/sub/b c.txt")


# 2.4 Checksum algorithms

def test_2_4_md5_only_manifests_are_a_warning(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, algorithms=("md5",))
    report = check(bag)
    assert report.exit_code == 0 and kinds(report, "manifest-md5.txt") == [WARNING]
    result = CliRunner().invoke(app, ["verify", "--bag", str(bag)])
    assert result.exit_code == 0
    assert "only md5 checksums" in result.stderr and "only md5" not in result.stdout


def test_2_4_one_manifest_per_algorithm_and_unknown_ones(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "manifest-SHA256.txt").write_text(f"{'0' * 64}  data/a.txt\n")
    (bag / "manifest-whirlpool9.txt").write_text(f"{'0' * 64}  data/a.txt\n")
    retag(bag)
    report = check(bag)
    assert kinds(report, "manifest-SHA256.txt") == [INVALID], details(report)
    assert kinds(report, "manifest-whirlpool9.txt") == ["unsupported"]
    assert not kinds(report, "data/a.txt")  # the one sha256 manifest read is the good one


# 3 Complete and valid bags

def test_3_every_payload_file_in_every_payload_manifest(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "b.txt": b"b"})
    manifest = bag / "manifest-sha512.txt"
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(True)
                                if "b.txt" not in line))
    retag(bag)
    report = check(bag)
    assert kinds(report, "data/b.txt") == [EXTRA]
    assert "not listed in manifest-sha512.txt" in details(report)
    assert theirs_valid(bag)  # bagit-python is wrong here: it checks the union only


def test_3_before_1_0_one_manifest_per_file_sufficed(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "b.txt": b"b"},
                   declaration=DECLARATION.replace(b"1.0", b"0.97"))
    manifest = bag / "manifest-sha512.txt"
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(True)
                                if "b.txt" not in line))
    retag(bag)
    assert check(bag).exit_code == 0


def test_3_unlisted_payload_files_are_errors_and_missing_ones_too(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "b.txt": b"b"})
    (bag / "data" / "extra.txt").write_bytes(b"!")
    (bag / "data" / "b.txt").unlink()
    report = check(bag)
    assert kinds(report, "data/extra.txt") == [EXTRA, EXTRA]
    assert kinds(report, "data/b.txt") == [MISSING, MISSING]


# Warnings: what a file system would merge, what an operating system leaves behind

def test_names_differing_only_by_unicode_normalization_or_case(tmp_path: Path) -> None:
    nfc, nfd = (unicodedata.normalize(f, "café.txt") for f in ("NFC", "NFD"))
    bag = make_bag(tmp_path / "bag", {nfc: b"1", nfd: b"2", "Song.txt": b"3",
                                      "song.txt": b"4"})
    report = check(bag)
    assert report.exit_code == 0, details(report)
    assert sorted(p.kind for p in report.problems) == [WARNING, WARNING]
    assert "only by Unicode normalization" in details(report)
    assert "only by case" in details(report)


def test_a_name_normalized_in_transit_is_the_same_file(tmp_path: Path) -> None:
    """A bag copied through macOS may come back with its names in NFD: the manifest's NFC
    name is that file (bagit-python agrees), checked, with a warning."""
    nfc, nfd = (unicodedata.normalize(f, "café.txt") for f in ("NFC", "NFD"))
    bag = make_bag(tmp_path / "bag", {nfc: b"1"})
    os.rename(bag / "data" / nfc, bag / "data" / nfd)
    report = check(bag)
    assert report.exit_code == 0 and kinds(report, f"data/{nfd}") == [WARNING], details(report)
    assert theirs_valid(bag)
    (bag / "data" / nfd).write_bytes(b"2")
    assert CHECKSUM in kinds(check(bag), f"data/{nfd}")


@pytest.mark.parametrize("junk", [".DS_Store", "sub/Thumbs.db", "._a.txt", "desktop.ini"])
def test_os_litter_is_a_warning_on_stderr(tmp_path: Path, junk: str) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "sub/b.txt": b"b"})
    (bag / "data" / junk).write_bytes(b"\0\0\0\1Bud1")
    report = check(bag)
    assert report.exit_code == 0 and kinds(report, f"data/{junk}") == [WARNING], details(report)
    result = CliRunner().invoke(app, ["verify", "--bag", str(bag)])
    assert result.exit_code == 0, result.output
    assert "litter" in result.stderr and "litter" not in result.stdout
    # bagit-python calls the bag incomplete for it


# Hostile bags: one clear line each, nothing outside read, nothing held whole

def test_a_huge_manifest_line_is_one_clear_line(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    with open(bag / "manifest-sha256.txt", "a") as fh:
        fh.write(f"{_hex(b'a')}  data/{'x' * 5_000_000}\n")
        fh.write(f"{_hex(b'a')}  data/{'y' * 3_000_000}")  # and no line end
    retag(bag)
    report = check(bag)
    found = [p.detail for p in report.problems if p.path == str(bag / "manifest-sha256.txt")]
    assert found == ["line 2 is longer than any path could be (not read)",
                     "line 3 is longer than any path could be (not read)"]
    result = CliRunner().invoke(app, ["verify", "--bag", str(bag)])
    assert result.exit_code == 1 and len(result.output) < 2_000, result.output[:500]


def test_a_huge_bagit_txt_is_one_clear_line(tmp_path: Path) -> None:
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"},
                   declaration=DECLARATION + b"X: " + b"y" * 10_000_000)
    report = check(bag)
    assert [p.detail for p in report.problems if p.path == str(bag / "bagit.txt")] == [
        "bagit.txt is over 4 KiB: a bag declaration is two short lines"]


def test_tag_files_in_utf_16_are_read_in_their_encoding(tmp_path: Path) -> None:
    declaration = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-16\n"
    bag = make_bag(tmp_path / "bag", {"é\n.txt": b"a"}, declaration=declaration)
    for name in ("manifest-sha256.txt", "manifest-sha512.txt", "bag-info.txt"):
        path = bag / name
        path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    retag(bag)
    report = check(bag)  # the tag manifests are still UTF-8: no BOM, a UnicodeError
    assert kinds(report, "tagmanifest-sha256.txt") == [INVALID], details(report)
    assert "not utf-16 text" in details(report)
    for name in ("tagmanifest-sha256.txt", "tagmanifest-sha512.txt"):
        path = bag / name
        path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    report = check(bag)
    assert report.exit_code == 0 and not report.problems, details(report)


@pytest.mark.parametrize("encoding", ["zlib", "rot13", "hex", "no-such-thing"])
def test_2_1_1_an_encoding_that_is_not_a_text_encoding(tmp_path: Path, encoding: str) -> None:
    """'zlib' or 'rot13' are Python codecs, not character encodings: reading with them was
    a TypeError traceback."""
    declaration = f"BagIt-Version: 1.0\nTag-File-Character-Encoding: {encoding}\n".encode()
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"}, declaration=declaration)
    report = check(bag)
    assert kinds(report, "bagit.txt") == ["unsupported"], details(report)


def test_a_data_directory_that_is_a_link_out_of_the_bag_is_not_followed(tmp_path: Path
                                                                        ) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.txt").write_bytes(b"a")
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a"})
    (bag / "data" / "a.txt").unlink()
    (bag / "data").rmdir()
    (bag / "data").symlink_to(outside)
    report = check(bag)
    assert sorted(kinds(report, "data")) == [INVALID, MISSING], details(report)
    assert kinds(report, "data/a.txt") == [MISSING, MISSING]
    tags = [f for f in bag.iterdir() if f.is_file() and not f.name.startswith("tagmanifest-")]
    assert report.bytes == sum(f.stat().st_size for f in tags)  # nothing read through it
    assert not theirs_valid(bag)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_tag_lines_end_at_lf_cr_and_crlf_whatever_the_read_size(tmp_path: Path, chunk: int,
                                                                monkeypatch) -> None:
    """Lines are cut as they are read: a CRLF split between two reads is one line end, and
    a line past the limit is reported (None) and skipped, never held whole."""
    from musicark.verify import bagtext

    monkeypatch.setattr(bagtext, "CHUNK", chunk)
    text = "a\r\nb\rc\n\x0cd\u2028e\r\n" + "x" * 50 + "\nf\r\r\n" + "y" * 30 + "\r"
    path = tmp_path / "tags.txt"
    path.write_bytes(text.encode("utf-8"))
    got = list(bagtext.tag_lines(path, "utf-8", limit=20))
    assert got == [(1, "a"), (2, "b"), (3, "c"), (4, "\x0cd\u2028e"), (5, None), (6, "f"),
                   (7, ""), (8, None)]


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path: Path, monkeypatch) -> None:
    """os.walk skips a folder it cannot list without a word (tests run as root, where mode
    000 does not stop a read: the refusal is simulated)."""
    bag = make_bag(tmp_path / "bag", {"a.txt": b"a", "locked/b.txt": b"b"})
    real = os.scandir

    def scandir(path):
        if Path(path) == bag / "data" / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = check(bag)
    assert kinds(report, "data/locked") == ["unreadable"], details(report)
    assert "cannot list this folder: Permission denied" in details(report)
