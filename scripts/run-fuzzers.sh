#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD_DIR from the committed seed corpus
# (tests/fuzz/corpus/NAME), in one of two modes:
#   run-fuzzers.sh BUILD_DIR SECONDS    open-ended exploration for SECONDS each (make fuzz)
#   run-fuzzers.sh BUILD_DIR --runs N   make test's stage: every seed replayed alone (each
#                                       must pass), then N runs of exploration from a fixed
#                                       seed in one process: the same inputs every time, so
#                                       the stage passes or fails by the code, never by luck
# New inputs go to a temporary folder, so the repository is never written to.
# A crash fails the run and leaves the crashing input in the temporary folder,
# whose path is printed. The limits are sized for ASan on a slow 2-core
# machine: the slowest seed takes well under a second there.
set -euo pipefail
build=${1:?build dir}
mode=${2:-20}
runs=
if [ "$mode" = --runs ]; then
  runs=${3:?--runs N}
fi
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/vlm-fuzz.XXXXXX)
limits=(-timeout=60 -rss_limit_mb=4096 -max_len=65536)
status=0
for bin in "$build"/fuzz_*; do
  name=$(basename "$bin")
  seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
  mkdir -p "$work/$name"
  log="$work/$name.log"
  if [ -n "$runs" ]; then
    printf '== fuzz %-22s %s seeds, %s runs ... ' "$name" "$(ls "$seeds" | wc -l)" "$runs"
    # -reload=0: no timed re-reading of the corpus folder; -seed: the same mutations each time
    if "$bin" "${limits[@]}" -artifact_prefix="$work/$name/" "$seeds"/* >"$log" 2>&1 &&
       "$bin" "${limits[@]}" -runs="$runs" -seed=1 -reload=0 -print_final_stats=1 \
         -artifact_prefix="$work/$name/" "$work/$name" "$seeds" >>"$log" 2>&1; then
      echo "ok ($(grep -o "DONE *cov: [0-9]* ft: [0-9]*" "$log" | sed 's/DONE *//'))"
    else
      echo "FAILED"; tail -40 "$log"; echo "artifacts in $work/$name"; status=1
    fi
  else
    printf '== fuzz %-22s %ss ... ' "$name" "$mode"
    if "$bin" "${limits[@]}" -max_total_time="$mode" -print_final_stats=1 \
         -artifact_prefix="$work/$name/" "$work/$name" "$seeds" >"$log" 2>&1; then
      echo "ok ($(grep -o "number_of_executed_units: [0-9]*" "$log" | grep -o "[0-9]*$") runs)"
    else
      echo "FAILED"; tail -40 "$log"; echo "artifacts in $work/$name"; status=1
    fi
  fi
done
[ $status -eq 0 ] && rm -rf "$work"
exit $status
