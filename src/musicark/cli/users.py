"""`musicark user ...`: the accounts Subsonic clients log in with (thin over
musicark.serve.subsonic.users)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import ArchiveOpt, JsonOpt, app, handle_errors, out, print_json
from musicark.errors import BadQuery

user_app = typer.Typer(help="Manage the accounts Subsonic apps log in with (musicark serve "
                            "answers the Subsonic API under /rest/).", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _users(archive_opt):
    from musicark.serve.subsonic.users import Users

    located = Archive.locate(archive_opt, readonly=True)
    located.close()
    return Users(located.path)


MAX_PASSWORD = 4096


def _password(from_stdin: bool) -> str:
    """The password: stdin's one line (its line end removed; a second line is refused by
    Users.add, never dropped), or asked twice on the terminal."""
    if from_stdin:
        given = sys.stdin.read(MAX_PASSWORD + 3)
        if len(given) > MAX_PASSWORD + 2:
            raise BadQuery(f"a password is at most {MAX_PASSWORD} characters")
        return given.removesuffix("\n").removesuffix("\r")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
@handle_errors
def add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -).")],
    archive: ArchiveOpt = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin: one line (a second line "
        "is refused).")] = False,
    replace: Annotated[bool, typer.Option(help="Set a new password for an existing user.")]
    = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a Subsonic user (or reset one with --replace) and print their new API key.

    The password is stored recoverably (the Subsonic token scheme needs it) in
    ARCHIVE/subsonic-users.json, readable only by its owner (mode 0600).

    Example: echo 'secret' | musicark user add alice --password-stdin
    """
    users = _users(archive)
    key = users.add(name, _password(password_stdin), replace=replace)
    if json_out:
        print_json({"user": name, "api_key": key, "file": str(users.path)})
    else:
        out.print(f"user {name} saved in {users.path}\nAPI key (shown once): {key}",
                  highlight=False)


@user_app.command("list")
@handle_errors
def list_users(archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """List the Subsonic users (names only). With none, `musicark serve` refuses every
    Subsonic login (or, with --open-subsonic on loopback, needs none).

    Example: musicark user list
    """
    names = sorted(_users(archive).all())  # a broken users file: exit 8, logins refused
    if json_out:
        print_json(names)
    else:
        out.print("\n".join(names) if names else "no users: every Subsonic login is refused "
                  "(a server started with --open-subsonic on a loopback address lets any "
                  "app on this machine in)", highlight=False)


@user_app.command("remove")
@handle_errors
def remove(name: Annotated[str, typer.Argument(help="User name.")],
           archive: ArchiveOpt = None) -> None:
    """Remove a Subsonic user.

    Example: musicark user remove alice
    """
    _users(archive).remove(name)
    out.print(f"user {name} removed", highlight=False)


@user_app.command("key")
@handle_errors
def new_key(name: Annotated[str, typer.Argument(help="User name.")],
            archive: ArchiveOpt = None) -> None:
    """Issue a new API key (OpenSubsonic apiKey) for a user; the old one stops working.

    Example: musicark user key alice
    """
    out.print(f"API key (shown once): {_users(archive).new_key(name)}", highlight=False)
