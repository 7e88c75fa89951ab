"""`musicark user ...` and the rule that the Subsonic API needs a user off loopback."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.cli import app
from musicark.serve.subsonic.auth import authenticate
from musicark.serve.subsonic.responses import SubsonicError
from musicark.serve.subsonic.users import Users, token_matches

runner = CliRunner()


def _archive(tmp_path: Path) -> Path:
    Archive.create(tmp_path / "a", name="users").close()
    return tmp_path / "a"


def test_user_add_list_key_remove(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    result = runner.invoke(app, ["user", "add", "alice", "-a", str(path), "--password-stdin",
                                 "--json"], input="s3cret\n")
    assert result.exit_code == 0, result.output
    key = json.loads(result.stdout)["api_key"]
    users_file = path / "subsonic-users.json"
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    user = Users(path).all()["alice"]
    assert user.password == "s3cret" and key not in users_file.read_text()
    assert authenticate({"apiKey": key}.get, Users(path).all()) == "alice"
    again = runner.invoke(app, ["user", "add", "alice", "-a", str(path), "--password-stdin"],
                          input="x\n")
    assert again.exit_code == 2 and "exists" in again.output
    listed = runner.invoke(app, ["user", "list", "-a", str(path), "--json"])
    assert json.loads(listed.stdout) == ["alice"]
    assert runner.invoke(app, ["user", "key", "alice", "-a", str(path)]).exit_code == 0
    assert Users(path).all()["alice"].api_key_sha256 != user.api_key_sha256
    assert runner.invoke(app, ["user", "remove", "alice", "-a", str(path)]).exit_code == 0
    assert runner.invoke(app, ["user", "remove", "alice", "-a", str(path)]).exit_code == 7
    bad = runner.invoke(app, ["user", "add", "a/b", "-a", str(path), "--password-stdin"],
                        input="x\n")
    assert bad.exit_code == 2 and "user name" in bad.output


def test_a_users_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    Users(path).add("bob", "pw")
    (path / "subsonic-users.json").chmod(0o644)
    result = runner.invoke(app, ["user", "list", "-a", str(path)])
    assert result.exit_code == 8 and "chmod 600" in result.output


def test_users_in_musicark_toml_only_when_private(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    config = path / "musicark.toml"
    config.write_text(config.read_text() + '\n[subsonic.users]\ncarol = "pw"\n')
    config.chmod(0o600)
    assert Users(path).all()["carol"].password == "pw"
    config.chmod(0o644)
    result = runner.invoke(app, ["user", "list", "-a", str(path)])
    assert result.exit_code == 8


def test_token_auth_and_wrong_password() -> None:
    import hashlib

    token = hashlib.md5(b"pwsalt").hexdigest()  # noqa: S324 - the Subsonic scheme
    assert token_matches("pw", "salt", token) and token_matches("pw", "salt", token.upper())
    assert not token_matches("pw", "salt2", token)
    users = {"u": __import__("musicark.serve.subsonic.users", fromlist=["User"]).User("u", "pw")}
    assert authenticate({"u": "u", "t": token, "s": "salt"}.get, users) == "u"
    assert authenticate({"u": "u", "p": "enc:7077"}.get, users) == "u"
    for params in ({"u": "u", "p": "no"}, {"u": "x", "p": "pw"}, {"u": "u", "p": "enc:zz"}):
        try:
            authenticate(params.get, users)
        except SubsonicError as exc:
            assert exc.code == 40
        else:
            raise AssertionError(params)


def test_serve_refuses_a_public_address_without_users(tmp_path: Path) -> None:
    path = _archive(tmp_path)
    result = runner.invoke(app, ["serve", str(path), "--host", "0.0.0.0"])
    assert result.exit_code == 8 and "musicark user add" in result.output
