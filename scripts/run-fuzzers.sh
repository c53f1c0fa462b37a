#!/usr/bin/env bash
# Runs every libFuzzer harness in BUILD_DIR for SECONDS each, starting from the
# committed seed corpus (tests/fuzz/corpus/NAME). New inputs go to a temporary
# folder, so the repository is never written to. A crash fails the run and
# leaves the crashing input in the temporary folder, whose path is printed.
set -euo pipefail
build=${1:?build dir}
seconds=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/vlm-fuzz.XXXXXX)
status=0
for bin in "$build"/fuzz_*; do
  name=$(basename "$bin")
  seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
  mkdir -p "$work/$name"
  printf '== fuzz %-22s %ss ... ' "$name" "$seconds"
  if "$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$work/$name/" "$work/$name" "$seeds" >"$work/$name.log" 2>&1; then
    echo "ok ($(grep -o "number_of_executed_units: [0-9]*" "$work/$name.log" | grep -o "[0-9]*$") runs)"
  else
    echo "FAILED"; tail -40 "$work/$name.log"; echo "artifacts in $work/$name"; status=1
  fi
done
[ $status -eq 0 ] && rm -rf "$work"
exit $status
