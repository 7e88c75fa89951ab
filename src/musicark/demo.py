"""`make demo`: the main job on an embedded default, shown as the commands a user would type.

Creates an archive, synthesizes a 100k-track catalog, imports it, prints statistics (and
charts), a search, a lookup and a shuffle; then renders tagged audio for some of its tracks,
ingests it (store, ledger, fingerprints) and matches it to the catalog; plans what to keep
for a 100 GB budget, encodes the long tail to Opus, tags copies with restore patches, and
publishes a release: BagIt shards with hybrid torrents and torrents.json, then a seed plan;
audits it all (`verify`); and last serves the archive's web UI until Ctrl-C (DEMO_SERVE=0
skips that).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

DEMO_MARKER = ".musicark-demo"


def run(*args: str, env: dict[str, str]) -> str:
    print(f"\n$ musicark {shlex.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "musicark", *args], env=env,
                            stdout=subprocess.PIPE, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"demo step failed (exit {result.returncode}): "
                         f"musicark {shlex.join(args)}")
    return result.stdout


def main(target: str = "demo-archive", tracks: int = 100_000) -> None:
    base = Path(target).absolute()
    if base.exists():
        if not (base / DEMO_MARKER).exists():
            raise SystemExit(f"{base} exists and was not made by the demo; choose DEMO_DIR=...")
        shutil.rmtree(base)
    base.mkdir(parents=True)
    (base / DEMO_MARKER).write_text("made by `make demo`; safe to delete\n")
    archive = base / "archive"
    env = {**os.environ, "MUSICARK_ARCHIVE": str(archive), "COLUMNS": "110"}
    run("init", str(archive), "--name", "musicark demo", env=env)
    catalog = base / "synthetic-catalog.jsonl"
    run("synth", "catalog", "--tracks", str(tracks), "--format", "api-json", str(catalog), env=env)
    run("catalog", "import", "--format", "api-json", str(catalog), "--licence", "CC0-1.0", env=env)
    run("stats", "--plots", str(base / "charts"), env=env)
    run("search", "love night", "-n", "5", env=env)
    found = run("search", "midnight", "-n", "1", "--json", env=env)
    import json

    isrc = json.loads(found)[0]["isrc"] if json.loads(found) else None
    if isrc:
        run("lookup", isrc, env=env)
    run("shuffle", "-n", "5", env=env)
    music = base / "music"
    run("synth", "audio", "--tracks", "24", "--catalog-tracks", str(tracks), str(music), env=env)
    run("ingest", str(music), "--licence", "CC0-1.0", "--provenance", "musicark demo", env=env)
    run("match", env=env)
    run("ledger", "-n", "8", env=env)
    run("plan", "coverage", "--plot", str(base / "charts" / "plan-coverage.png"), env=env)
    run("plan", "create", "--budget", "100GB", env=env)
    run("derive", env=env)
    run("tag", env=env)
    run("release", "create", "demo-1", "--buckets", "50,20,0", env=env)
    torrents = archive / "releases" / "demo-1" / "torrents.json"
    run("seed-plan", str(torrents), "--max-tb", "0.00002", env=env)
    run("verify", env=env)  # the store, the release's bags and torrents, the catalog
    print(f"\nThe demo archive is in {archive} (charts in {base / 'charts'}).")
    print(f"Its release: torrents in {torrents.parent / 'torrents'}, list in {torrents}, "
          f"BagIt shards in {torrents.parent / 'shards'}.")
    launcher = Path(sys.executable).parent / "activate"
    print(f"Try, in a shell: . {launcher}; export MUSICARK_ARCHIVE={archive}; "
          "musicark search 'your words'")
    if os.environ.get("DEMO_SERVE", "1") != "0":
        port = os.environ.get("DEMO_PORT", "8377")
        print(f"\n$ musicark serve {archive} --port {port}", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "musicark", "serve", str(archive),
                            "--port", port], env=env, check=False)
        except KeyboardInterrupt:
            print("\nstopped serving; the archive stays in place")


if __name__ == "__main__":
    main(*sys.argv[1:2])
