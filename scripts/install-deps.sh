#!/usr/bin/env bash
# Installs the Debian packages vlm.c builds and tests with, and only those missing.
# Idempotent: a second run installs nothing and prints nothing but the check.
set -euo pipefail

PACKAGES=(
  cmake make gcc g++ pkg-config     # build
  clang libclang-rt-14-dev          # libFuzzer + ASan/UBSan runtimes for the parser fuzzers
  check                             # C unit-test framework (libcheck)
  jq                                # the reference for `vlm data mix` (the recipes merge with jq -s add)
  libopenblas-openmp-dev            # matrix products (the OpenMP build: one thread pool with ours)
  libopenblas-pthread-dev           # ... and the pthread build, for the clang sanitizer build
  libjansson-dev                    # JSON (headers, configs, datasets)
  libzip-dev                        # zip container of PyTorch .bin checkpoints
  zlib1g-dev                        # crc32 of the zip records vlm writes (torch.save format)
  libpcre2-dev                      # BPE pre-tokenization regexes
  libjpeg62-turbo-dev libpng-dev libgif-dev   # image decoding, bit-exact with Pillow
  sentencepiece                     # spm_train: the demo trains its small tokenizer with it
  openmpi-bin libopenmpi-dev        # several processes per run (mpirun); the build works without them
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: not root and no sudo; please install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
