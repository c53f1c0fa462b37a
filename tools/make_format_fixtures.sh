#!/usr/bin/env bash
# Regenerates tests/fixtures/formats and the fuzz seed corpus with the real
# torch / safetensors, and checks that files written by `build/vlm convert`
# load in Python safetensors. Run `make` first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/venv.sh" torch==2.15.0 safetensors==0.8.0 numpy==2.4.6
exec "$here/.venv/bin/python" "$here/make_format_fixtures.py" "$@"
