"""The `musicark` command line (Typer): one module per group of verbs, thin over the library.

Exit codes: 0 success, 1 unexpected error, 2 bad usage or query, 3 no archive, 4 archive
exists, 5 source exists, 6 unreadable source, 7 not in catalog, 8 bad config, 9 done but
something left out (bad rows with --strict; paths ingest could not walk or read), 10 another
ingest is running, 11 fixity failure (bytes differ from
their SHA-256), 12 damaged catalog database, 130 interrupted (docs/cli.md lists them too).
`verify` and `repair` use their own: 0 all good, 1 damage found or left unrepaired, 2 could
not run (docs/fixity.md).
"""

from musicark.cli import (  # noqa: F401 - registers the verbs
    analyse,
    catalog,
    derive,
    ingest,
    listens,
    match,
    mirror,
    plan,
    release,
    serve,
    synth,
    tagging,
    users,
    verify,
)
from musicark.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
