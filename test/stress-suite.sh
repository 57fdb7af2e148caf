#!/usr/bin/env bash
# stress-suite.sh — the whole suite, N times in a row, beside CPU-heavy processes: the proof
# that the suite is green on a loaded 2-core machine, not only on an idle one.
#
#   test/stress-suite.sh [runs] [load-processes]     # defaults: 10 runs, 1 spinning process
#
# Each load process spins one core (`node -e 'for(;;);'`) for the whole time and is killed on
# exit, however the script ends. Each run is `npx ava --tap` (the package's ava config); the
# script prints its `ok` / `not ok` counts, the names of the failed tests, the duration, and
# how many servers this worktree's tests left running (there must be none: see
# test/helpers/server.ts). TAP files, and every test server's log lines (run-N-servers/), stay
# in $STRESS_LOG_DIR (default: a fresh /tmp folder).
# Exit status 0 only if every run was green with no server left behind.
set -u
cd "$(dirname "$0")/.."
runs=${1:-10}
loads=${2:-1}
logdir=${STRESS_LOG_DIR:-$(mktemp -d /tmp/myetcd-stress.XXXXXX)}
mkdir -p "$logdir"
guard="$PWD/dist/test/helpers/orphan-guard.js"

npx tsc -p . || exit 1

load_pids=()
stop_load() {
  for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null; done
  load_pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT TERM
for ((i = 0; i < loads; i++)); do
  node -e 'for (;;);' &
  load_pids+=("$!")
done
echo "load: ${loads} spinning process(es) (pids ${load_pids[*]}); logs in ${logdir}"

green=0
for ((r = 1; r <= runs; r++)); do
  tap="$logdir/run-$r.tap"
  servers="$logdir/run-$r-servers"
  mkdir -p "$servers"
  start=$SECONDS
  TEST_SERVER_LOG_DIR="$servers" npx ava --tap >"$tap" 2>&1
  rc=$?
  ok=$(grep -c '^ok ' "$tap")
  notok=$(grep -c '^not ok ' "$tap")
  # Servers started by this worktree's tests carry the guard in their command line.
  left=$(pgrep -f -- "--import file://$guard" | wc -l)
  printf 'run %d/%d: %d ok, %d not ok, exit %d, %d s, %d server(s) left running\n' \
    "$r" "$runs" "$ok" "$notok" "$rc" "$((SECONDS - start))" "$left"
  grep '^not ok ' "$tap" | sed 's/^/    /'
  if [ "$rc" -eq 0 ] && [ "$notok" -eq 0 ] && [ "$ok" -gt 0 ] && [ "$left" -eq 0 ]; then
    green=$((green + 1))
  fi
done
echo "green: ${green} of ${runs} runs"
[ "$green" -eq "$runs" ]
