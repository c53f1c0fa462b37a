# User-facing targets. CMake does the building; this file only orchestrates.
#   make        build build/vlm and the library
#   make test   unit + parity tests, sanitizer runs and deterministic fuzzing (fixed runs)
#   make fuzz   open-ended fuzzing (FUZZ_SECONDS per harness)
#   make demo   Q-Instruct (mix, after) on a tiny mPLUG-Owl2 trained end to end on generated data (no downloads)
#   make demo-llava  the same on a tiny LLaVA
#   make bench  throughput against the reference implementations (needs PyPI)
#   make cuda   the CUDA build into build-cuda/ (vlm-cuda, vlm_tests_cuda; needs nvcc, not a GPU)
#   make clean
.PHONY: all deps build cuda demo demo-llava test test-unit test-sanitize test-fuzz test-cuda-build fuzz bench clean

JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 30000
NVCC ?= /usr/local/cuda/bin/nvcc

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS) -- --no-print-directory

# The CUDA backend (docs/cuda.md): compiles with nvcc alone; running its tests needs a GPU
# (scripts/gpu-check.sh). Only its two binaries are built (the CPU build is build/'s); the
# Debian packages its C files need are installed as for the CPU build (make deps).
cuda: deps
	@if [ ! -x "$(NVCC)" ]; then \
	  echo "make cuda: no nvcc at $(NVCC): install the CUDA toolkit (12.x or 13.x) or pass NVCC=/path/to/nvcc" >&2; \
	  exit 1; fi
	@cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DVLM_CUDA=ON -DCMAKE_CUDA_COMPILER=$(NVCC) >/dev/null
	@cmake --build build-cuda -j $(JOBS) --target vlm-cuda vlm_tests_cuda -- --no-print-directory

# make test's CUDA stage: where nvcc is installed (CI has it, without a GPU) the CUDA build
# must compile with -Werror; nothing of it runs here
test-cuda-build: deps
	@if [ -x "$(NVCC)" ]; then echo "== the CUDA build (compile only)"; $(MAKE) --no-print-directory cuda; \
	else echo "== no nvcc at $(NVCC): the CUDA build is not compiled"; fi

# ASan + UBSan build (clang): the parser suites and the fuzz harnesses
build-sanitize: deps
	@CC=clang cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DVLM_SANITIZE=ON >/dev/null
	@cmake --build build-sanitize -j $(JOBS) -- --no-print-directory

test-sanitize: build-sanitize
	@echo "== parser tests (and the launcher check of a build without MPI) under ASan + UBSan"
	@CK_INCLUDE_TAGS="parser launch" CK_VERBOSITY=minimal build-sanitize/vlm_tests

# make test's fuzz stage: the corpus replayed, then a fixed number of runs from a fixed seed
test-fuzz: build-sanitize
	@scripts/run-fuzzers.sh build-sanitize --runs $(FUZZ_RUNS)

# open-ended exploration, FUZZ_SECONDS per harness
fuzz: build-sanitize
	@scripts/run-fuzzers.sh build-sanitize --seconds $(FUZZ_SECONDS)

test-unit: build
	@echo "== unit, parity and end-to-end tests"
	@build/vlm_tests

# The unit run goes last so its counts line closes the output.
test: test-cuda-build test-sanitize test-fuzz test-unit

# the demo needs only the binary; demo-llava: the same stages on a tiny LLaVA
demo demo-llava: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS) --target vlm -- --no-print-directory
	@DEMO_ARCH=$(if $(filter demo-llava,$@),llava,owl2) scripts/demo.sh

# vlm.c next to the reference implementations, same machine, same run
bench: build
	@scripts/bench.sh

clean:
	rm -rf build build-sanitize build-cuda
