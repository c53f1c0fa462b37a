#!/usr/bin/env bash
# Regenerates tests/fixtures/teachers (depth: upstream OLA-VLM's own Depth-Anything-v2 code from a
# checkout made at run time, never committed; gen: transformers 4.41.2's CLIPVisionModelWithProjection
# and CLIPImageProcessor) in tools/.venv-ola (tools/venv_ola.sh). Developers only; `make test` never
# needs Python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_ola.sh"
ola="$here/.cache/OLA-VLM"
if [ ! -d "$ola/ola_vlm" ]; then
    mkdir -p "$here/.cache"
    git clone -q "${OLA_VLM_REPO:-https://github.com/SHI-Labs/OLA-VLM}" "$ola"
fi
git -C "$ola" -c advice.detachedHead=false checkout -q 6032a6c
export OLA_VLM_DIR="$ola"
exec "$venv/bin/python" "$here/make_teacher_vit_fixtures.py" "$@"
