"""Subsonic logins fail closed (issue #20): no user, an emptied, deleted, malformed or
unreadable users file refuse every call, at start and while running; open access is a flag
and only for loopback callers; failed logins are throttled per user and per address in
bounded memory; empty salts and passwords and replayed tokens are refused; no error shows
a server path."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from musicark.cli import app as cli
from musicark.errors import BadConfig
from musicark.serve import create_app, queries
from musicark.serve.loopback import is_loopback_address, is_loopback_host
from musicark.serve.subsonic import throttle
from musicark.serve.subsonic.throttle import LoginThrottle
from musicark.serve.subsonic.users import USERS_FILE, Users
from serve_small import matched_file, small_archive

runner = CliRunner()
USER, PASSWORD = "alice", "s3cret"


class Clock:
    """A clock the test moves: backoff is checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_archive(tmp_path_factory.mktemp("logins"))


@pytest.fixture
def path(built: Path) -> Path:
    """The archive with exactly one user, alice, whatever the last test did."""
    users = built / USERS_FILE
    if users.is_dir():
        users.rmdir()
    elif users.exists() or users.is_symlink():
        users.unlink()
    Users(built).add(USER, PASSWORD)
    return built


def _client(path: Path, address: str = "127.0.0.2", **options) -> TestClient:
    return TestClient(create_app(path, **options), raise_server_exceptions=False,
                      client=(address, 50000))


def _call(client: TestClient, method: str = "ping", **params) -> dict:
    response = client.get(f"/rest/{method}", params={"f": "json", **params})
    assert response.status_code == 200
    return response.json()["subsonic-response"]


def _error(answer: dict) -> int | None:
    return answer["error"]["code"] if answer["status"] == "failed" else None


def _break(path: Path, how: str) -> None:
    users = path / USERS_FILE
    if how == "removed":
        Users(path).remove(USER)
    elif how == "deleted":
        users.unlink()
    elif how == "emptied":
        users.write_text("")
    elif how == "garbage":
        users.write_text('{"users": {"alice": "no dict"}}')
    elif how == "nested":
        users.write_text("[" * 100_000)
    elif how == "not a file":
        users.unlink()
        users.mkdir()
    elif how == "readable by others":
        users.chmod(0o644)


@pytest.mark.parametrize("how", ["removed", "deleted", "emptied", "garbage", "nested",
                                 "not a file", "readable by others"])
def test_a_running_server_fails_closed_when_its_users_go(path: Path, how: str) -> None:
    client = _client(path)
    track, _ = matched_file(path)
    assert _error(_call(client, u=USER, p=PASSWORD)) is None
    _break(path, how)
    for anyone in ({"u": "x", "p": "y"}, {"u": USER, "p": PASSWORD}, {"u": "x"}):
        answer = _call(client, **anyone)
        assert _error(answer) == 40, (how, anyone, answer)
        assert str(path) not in answer["error"]["message"]
        stream = client.get("/rest/stream", params={**anyone, "id": f"tr-{track}"})
        assert stream.headers["content-type"].startswith("text/xml"), how


@pytest.mark.parametrize("how", ["garbage", "nested", "not a file", "readable by others"])
def test_a_broken_users_file_is_never_open_even_with_open_access(path: Path,
                                                                 how: str) -> None:
    _break(path, how)
    client = _client(path, "127.0.0.1", open_subsonic=True)
    answer = _call(client, u="x", p="y")
    assert _error(answer) == 40 and "users file" in answer["error"]["message"]
    assert "/" not in answer["error"]["message"]  # no server path
    listed = runner.invoke(cli, ["user", "list", "-a", str(path)])
    assert listed.exit_code == 8 and "refuses every Subsonic login" in listed.output


def test_open_access_is_a_flag_and_only_for_loopback_callers(path: Path) -> None:
    Users(path).remove(USER)
    assert _error(_call(_client(path, "127.0.0.1"), u="x")) == 40  # no flag: closed
    for address in ("127.0.0.2", "::1", "::ffff:127.0.0.1"):
        assert _error(_call(_client(path, address, open_subsonic=True), u="x")) is None
    for address in ("10.0.0.5", "::ffff:10.0.0.5", "2001:db8::1", "testclient"):
        assert _error(_call(_client(path, address, open_subsonic=True), u="x")) == 40
    Users(path).add(USER, PASSWORD)  # a user exists: the flag no longer opens anything
    open_client = _client(path, "127.0.0.1", open_subsonic=True)
    assert _error(_call(open_client, u="x", p="y")) == 40
    assert _error(_call(open_client, u=USER, p=PASSWORD)) is None


def test_what_counts_as_loopback() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]",
                 "::ffff:127.0.0.2", "localhost"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "::2", "name.invalid"):
        assert not is_loopback_host(host), host
    assert not is_loopback_address("testclient") and not is_loopback_address(None)


def test_serve_checks_users_and_the_flag_at_start(path: Path, monkeypatch) -> None:
    started = []
    def run(web, sock, **kw) -> None:  # what serve would hand uvicorn, on the bound socket
        sock.close()
        started.append((web, kw))

    monkeypatch.setattr("musicark.serve.listen.run", run)
    args = ["serve", str(path), "--port", "0"]
    Users(path).remove(USER)
    public = runner.invoke(cli, [*args, "--host", "10.1.2.3"])
    assert public.exit_code == 8 and "musicark user add" in public.output
    flagged = runner.invoke(cli, [*args, "--host", "0.0.0.0", "--open-subsonic"])
    assert flagged.exit_code == 8 and "loopback" in flagged.output
    closed = runner.invoke(cli, [*args, "--host", "127.0.0.2"])
    assert closed.exit_code == 0 and "every Subsonic login is refused" in closed.output
    opened = runner.invoke(cli, [*args, "--host", "127.0.0.2", "--open-subsonic"])
    assert opened.exit_code == 0, opened.output
    assert [w.state.subsonic.logins.open_access for w, _ in started] == [False, True]
    (path / USERS_FILE).write_text("{")
    broken = runner.invoke(cli, [*args, "--host", "127.0.0.1", "--open-subsonic"])
    assert broken.exit_code == 8 and "not a users file" in broken.output
    assert len(started) == 2
    listed = runner.invoke(cli, ["user", "list", "-a", str(path)])
    assert listed.exit_code == 8
    (path / USERS_FILE).unlink()
    listed = runner.invoke(cli, ["user", "list", "-a", str(path)])
    assert listed.exit_code == 0 and "every Subsonic login is refused" in listed.output


def test_failed_logins_back_off_per_user_and_per_address(path: Path, caplog) -> None:
    Users(path).add("bob", "bobpw")
    key = Users(path).new_key(USER)
    web = create_app(path)
    clock = Clock()
    web.state.subsonic.logins.throttle.clock = clock
    at = {a: TestClient(web, client=(a, 1)) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3",
                                                       "10.0.0.4", "10.0.0.5", "10.0.0.6")}
    caplog.set_level(logging.WARNING, "musicark.serve.subsonic")
    waits = []
    for _ in range(throttle.FREE + 3):  # guesses at alice from one address
        assert _error(_call(at["10.0.0.2"], u=USER, p="guess")) == 40
        probe = _call(at["10.0.0.2"], u="bob", p="bobpw")  # refused unchecked while waiting
        waits.append(probe["error"]["message"][-6:] if _error(probe) else None)
        clock.now += throttle.CAP  # past any wait, well within FORGET
    assert waits == [None] * throttle.FREE + ["in 1 s", "in 2 s", "in 4 s"]
    assert "failed Subsonic login for 'alice' from 10.0.0.2" in caplog.text
    # alice is throttled from every address; bob is not, except from the guessing address
    clock.now -= throttle.CAP
    assert "too many" in _call(at["10.0.0.3"], u=USER, p=PASSWORD)["error"]["message"]
    assert _error(_call(at["10.0.0.3"], u="bob", p="bobpw")) is None
    assert _error(_call(at["10.0.0.3"], apiKey=key)) is None  # keys: by address only
    assert "too many" in _call(at["10.0.0.2"], u="bob", p="bobpw")["error"]["message"]
    clock.now += throttle.CAP
    assert _error(_call(at["10.0.0.3"], u=USER, p=PASSWORD)) is None
    # unknown names share one entry (the throttle does not tell which names exist)
    for i in range(throttle.FREE + 1):
        _call(at["10.0.0.4" if i % 2 else "10.0.0.5"], u=f"nobody{i}", p="x")
    assert "too many" in _call(at["10.0.0.6"], u="nobody", p="x")["error"]["message"]
    assert _error(_call(at["10.0.0.6"], u="bob", p="bobpw")) is None


def test_the_throttle_is_bounded_and_caps_its_wait() -> None:
    clock = Clock()
    gate = LoginThrottle(clock)
    for i in range(throttle.MAX_ADDRESSES + 500):
        gate.failed(None, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(gate._addresses.rows) == throttle.MAX_ADDRESSES
    for _ in range(40):
        gate.failed("alice", "2001:db8::1")
    assert gate.wait("alice", "2001:db8::2") == throttle.CAP  # the same /64, and alice
    assert gate.wait(None, "2001:db8:0:1::1") == 0
    clock.now += throttle.FORGET + 1
    assert gate.wait("alice", "2001:db8::1") == 0
    for _ in range(10):  # a local reverse proxy makes every caller 127.0.0.1: users only
        gate.failed(None, "127.0.0.1")
    assert gate.wait(None, "127.0.0.1") == 0 and len(gate._addresses.rows) <= 10_000


def test_empty_salt_token_and_password_are_refused(path: Path) -> None:
    client = _client(path)
    token = hashlib.md5(PASSWORD.encode()).hexdigest()  # noqa: S324 - md5(password + "")
    for params in ({"t": token, "s": ""}, {"t": "", "s": "abcdef"}, {"p": ""},
                   {"p": "enc:"}, {"t": "\u00e9" * 32, "s": "abcdef"}):
        assert _error(_call(client, u=USER, **params)) == 40, params
    with pytest.raises(Exception, match="must not be empty"):
        Users(path).add("carol", "")


def test_a_replayed_token_from_another_address_is_refused(path: Path) -> None:
    web = create_app(path)
    first = TestClient(web, client=("10.0.0.1", 1))
    second = TestClient(web, client=("10.0.0.9", 1))
    salt = "c0ffee42"
    token = hashlib.md5((PASSWORD + salt).encode()).hexdigest()  # noqa: S324
    assert _error(_call(first, u=USER, t=token, s=salt)) is None
    assert _error(_call(first, u=USER, t=token, s=salt)) is None  # a seek re-sends its URL
    replay = _call(second, u=USER, t=token.upper(), s=salt)
    assert _error(replay) == 40 and "another address" in replay["error"]["message"]
    salt2 = "5a1t5a1t"
    token2 = hashlib.md5((PASSWORD + salt2).encode()).hexdigest()  # noqa: S324
    assert _error(_call(second, u=USER, t=token2, s=salt2)) is None


def test_errors_never_show_server_paths(path: Path, monkeypatch) -> None:
    client = _client(path)
    _, sha = matched_file(path)
    where = f"{path}/store/{sha[:2]}"

    def broken(archive, sha256):
        raise BadConfig(f"{where}: cannot read (see /var/lib/secret/x.db)")

    monkeypatch.setattr(queries, "stored_file", broken)
    track, _ = matched_file(path)
    for url in (f"/api/v1/files/{sha}", f"/audio/{sha}",
                f"/rest/stream?u={USER}&p={PASSWORD}&id=tr-{track}&f=json"):
        text = client.get(url).text
        assert "cannot read" in text and "ARCHIVE/store" in text, url
        assert str(path) not in text and "/var/lib" not in text, url


@pytest.mark.parametrize(("given", "code"), [("pw\n", 0), ("pw\r\n", 0), ("pw", 0),
                                              ("pw\nsecond\n", 2), ("pw\rx", 2), ("\n", 2),
                                              ("x" * 5000, 2)])
def test_password_stdin_is_one_line(tmp_path: Path, built: Path, given: str,
                                    code: int) -> None:
    result = runner.invoke(cli, ["user", "add", "dave", "-a", str(built), "--password-stdin",
                                 "--replace"], input=given)
    assert result.exit_code == code, result.output
    if code == 0:
        assert Users(built).all()["dave"].password == "pw"
    else:
        assert "dave" not in Users(built).all() or Users(built).all()["dave"].password == "pw"


def test_worker_processes_get_the_flag_from_the_environment(path: Path, monkeypatch) -> None:
    from musicark.serve.app import OPEN_SUBSONIC_ENV, SERVE_ENV, from_environment

    monkeypatch.setenv(SERVE_ENV, str(path))
    for value, expected in (("1", True), ("0", False), ("", False)):
        monkeypatch.setenv(OPEN_SUBSONIC_ENV, value)
        assert from_environment().state.subsonic.logins.open_access is expected
