#!/usr/bin/env bash
# gpu-check.sh: the one command for a machine with an NVIDIA GPU (issue 19's
# verification; docs/cuda.md). It prints the GPU (nvidia-smi), builds the CUDA
# build (make cuda), runs every backend kernel suite on the GPU
# (build-cuda/vlm_tests_cuda: each kernel of src/kernels/*.h against a
# plain-loop reference, at the tolerances of tests/backend, and each backward
# twice for the same bits), then the same suites under compute-sanitizer's
# memcheck, and racecheck over the kernels with shared memory (attention,
# norms, embedding, losses, window attention) when compute-sanitizer is
# installed. It exits non-zero when anything failed. About 1 to 3 minutes on
# an H100 / H200 (at most 8: each stage has a time limit).
#
# Without a GPU (no nvidia-smi, or one that lists none) it is a dry run: it
# builds, says "no GPU: the CUDA build compiles; kernel tests not run" and
# exits 0.
#
# Not yet wired (they need the model code device-clean first: docs/cuda.md,
# "What a device-clean model needs"), so this script does not run them:
#   - the transformers fixtures on the GPU (LLaVA, mPLUG-Owl2, OLA-VLM, the
#     trainer: tests/unit's parity suites), since src/model, src/train and
#     src/eval still read and write activations and parameters on the host;
#   - the benchmark (a LLaVA-7B-shaped and an mPLUG-Owl2-7B IFT step in bf16
#     next to PyTorch + transformers: tokens/s, MFU, peak memory), which
#     needs the device-clean model and the bf16 mode as well.
#
# Usage:
#   scripts/gpu-check.sh                 build (make cuda), then test on the GPU
#   scripts/gpu-check.sh --make-bundle   build, then pack the test binary and the
#                                        one library it needs beyond CUDA's into
#                                        build-gpu-bundle/ (for a GPU machine that
#                                        has the CUDA toolkit but not the build's
#                                        Debian packages)
#   scripts/gpu-check.sh --bundle DIR    no build: test with DIR's binaries
# Logs: build-cuda/gpu-check/ (and a copy under $GPU_CHECK_OUT when it is set).
set -uo pipefail
cd "$(dirname "$0")/.."

mode=build bundle=""
case "${1:-}" in
  "") ;;
  --make-bundle) mode=make-bundle ;;
  --bundle) mode=bundle bundle="${2:?--bundle needs a folder}" ;;
  *) echo "usage: scripts/gpu-check.sh [--make-bundle | --bundle DIR]" >&2; exit 2 ;;
esac

logs=build-cuda/gpu-check
mkdir -p "$logs"
failed=()
stage() { echo; echo "== $*"; }
finish() {
  if [ -n "${GPU_CHECK_OUT:-}" ]; then mkdir -p "$GPU_CHECK_OUT" && cp "$logs"/*.log "$GPU_CHECK_OUT"/ 2>/dev/null; fi
  echo
  if [ ${#failed[@]} -eq 0 ]; then echo "gpu-check: $1"; exit 0; fi
  echo "gpu-check: FAILED: ${failed[*]} (logs in $logs)"; exit 1
}

# ---- the GPU
gpu=0
stage "the GPU"
if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  gpu=1
  nvidia-smi 2>&1 | tee "$logs/nvidia-smi.log"
else
  echo "no GPU (nvidia-smi absent or lists none)"
fi

# ---- the build
tests=build-cuda/vlm_tests_cuda
if [ "$mode" = bundle ]; then
  tests="$bundle/vlm_tests_cuda"
  [ -x "$tests" ] || { echo "gpu-check: no $tests (make it with --make-bundle)" >&2; exit 2; }
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  stage "make cuda"
  start=$(date +%s)
  if ! timeout 300 make cuda 2>&1 | tee "$logs/build.log" | tail -3; then
    failed+=("build"); finish "unreachable"
  fi
  echo "built in $(( $(date +%s) - start )) s"
fi
if [ "$mode" = make-bundle ]; then
  rm -rf build-gpu-bundle && mkdir -p build-gpu-bundle/lib
  cp build-cuda/vlm_tests_cuda build-gpu-bundle/
  # the libraries it needs that a CUDA machine may lack: all but glibc's, the C++ runtime and CUDA's own
  ldd build-cuda/vlm_tests_cuda | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libcu[a-zA-Z]*)\.so' |
    xargs -r -I{} cp -L {} build-gpu-bundle/lib/
  ls -l build-gpu-bundle build-gpu-bundle/lib
  finish "bundle in build-gpu-bundle/ (run: scripts/gpu-check.sh --bundle build-gpu-bundle)"
fi
if [ "$gpu" = 0 ]; then
  finish "no GPU: the CUDA build compiles; kernel tests not run"
fi

# CUDA's libraries where the toolkit keeps them (the test binary links cuBLAS dynamically)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done

# ---- the kernel suites; BT_VERBOSE prints each comparison's error (the measured tolerances)
stage "kernel suites (vlm_tests_cuda)"
BT_VERBOSE=1 CK_VERBOSITY=verbose timeout 180 "$tests" >"$logs/kernels.log" 2>&1
rc=$?
grep -E '^(vlm_tests_cuda|[0-9]+%:)|:[EF]:' "$logs/kernels.log"
[ $rc -eq 0 ] || { failed+=("kernel suites (exit $rc)"); tail -20 "$logs/kernels.log"; }

# ---- compute-sanitizer: memory errors everywhere, shared-memory races where shared memory is used
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
  stage "compute-sanitizer memcheck"
  timeout 150 "$sanitizer" --tool memcheck --error-exitcode 3 "$tests" >"$logs/memcheck.log" 2>&1
  rc=$?
  grep -E 'ERROR SUMMARY|[0-9]+%:' "$logs/memcheck.log"
  [ $rc -eq 0 ] || { failed+=("memcheck (exit $rc)"); grep -m 20 -E 'Invalid|at 0x|by thread' "$logs/memcheck.log"; }
  for suite in backend_attention backend_dense backend_movers backend_losses backend_vision; do
    stage "compute-sanitizer racecheck: $suite"
    CK_RUN_SUITE=$suite timeout 90 "$sanitizer" --tool racecheck --error-exitcode 3 "$tests" >"$logs/racecheck-$suite.log" 2>&1
    rc=$?
    grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|[0-9]+%:' "$logs/racecheck-$suite.log"
    [ $rc -eq 0 ] || { failed+=("racecheck $suite (exit $rc)"); grep -m 20 -E 'hazard|Race' "$logs/racecheck-$suite.log"; }
  done
else
  echo "(compute-sanitizer not found: memcheck and racecheck skipped)"
fi

finish "every CUDA kernel suite passed on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
