# musicark: `make demo` and `make test` work on a fresh machine (Debian + Python 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-archive
# sqlite3: the benchmark's reference; libchromaprint-tools: fpcalc and libchromaprint1;
# transmission-cli, aria2: other clients that must parse our v1 torrents (Debian 12's
# versions predate BitTorrent v2);
# zstd: the CLI that restores originals from a release's patches (tested);
# chromium: the browser the web UI's Playwright tests drive (never a downloaded one);
# ffmpeg: the second loudness meter the analysis tests agree with (`ffmpeg -af ebur128`).
APT_PACKAGES := sqlite3 libchromaprint-tools transmission-cli aria2 zstd chromium ffmpeg
# References the benchmarks measure against.
BENCH_PACKAGES := ffmpeg mktorrent wrk

.PHONY: demo test bench lint system-deps install clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(BIN)/python -m musicark.demo $(DEMO_DIR)   # ends serving the web UI: Ctrl-C stops

test: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/pytest -q

bench: install
	$(MAKE) system-deps APT_PACKAGES="$(BENCH_PACKAGES)"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
