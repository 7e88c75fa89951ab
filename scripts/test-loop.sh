#!/usr/bin/env bash
# Show that `make test` neither fails nor hangs by chance: clone this repository's HEAD
# fresh into a temporary folder and run `make test` there N times in a row (default 10),
# each under a time budget. Prints each run's result, time and the load average, keeps each
# run's log, and exits non-zero if any run failed or hung.
#
#   scripts/test-loop.sh [N]
#
# RUN_BUDGET    one run's budget (default 60m, as .ci/run); past it the run counts as hung
# MUSICARK_TESTDATA   the shared test material (default: ../shared/testdata beside this
#               repository), linked as ../shared/testdata beside the clone
# KEEP=1        keep the clone and the logs (always kept when a run failed or hung)
# Only committed work is tested: the clone has HEAD, not the working tree.
set -uo pipefail

runs=${1:-10}
budget=${RUN_BUDGET:-60m}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
head=$(git -C "$repo" rev-parse HEAD) || exit 2
export MUSICARK_TESTDATA=${MUSICARK_TESTDATA:-$(cd "$repo/.." && pwd)/shared/testdata}
work=$(mktemp -d "${TMPDIR:-/tmp}/musicark-test-loop.XXXXXX") || exit 2
clone=$work/musicark
failed=0

cleanup() {
  if [ "$failed" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "logs and clone kept in $work"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted"; failed=1; exit 130' INT TERM

git clone -q --no-checkout "$repo" "$clone" && git -C "$clone" checkout -q "$head" || exit 2
# The layout the README describes: the test material in ../shared/testdata beside the clone.
if [ -d "$MUSICARK_TESTDATA" ]; then
  mkdir -p "$work/shared" && ln -s "$MUSICARK_TESTDATA" "$work/shared/testdata"
fi
echo "make test x$runs on a fresh clone of $head (${head:0:10}) in $clone"
echo "run budget $budget; test material: $MUSICARK_TESTDATA; $(nproc) cores"

for i in $(seq 1 "$runs"); do
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  began=$(date +%s)
  log=$work/run-$i.log
  timeout --kill-after=60s "$budget" make -C "$clone" test >"$log" 2>&1
  status=$?
  took=$(( $(date +%s) - began ))
  case $status in
    0) result=pass ;;
    124 | 137) result=HUNG; failed=1 ;;
    *) result=FAIL; failed=1 ;;
  esac
  summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$log" | tail -1)
  printf 'run %2d/%d: %-4s %5ds  load %s -> %s  %s\n' "$i" "$runs" "$result" "$took" \
    "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$summary"
done

if [ "$failed" -ne 0 ]; then
  echo "FAILED: at least one run failed or hung (logs: $work/run-N.log)"
  exit 1
fi
echo "all $runs runs passed"
