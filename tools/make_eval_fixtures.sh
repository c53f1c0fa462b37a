#!/usr/bin/env bash
# Regenerates tests/fixtures/eval (SRCC / PLCC cases from scipy). Developers
# only; `make test` never needs Python. Uses tools/.venv-model, creating it
# with the pinned packages when absent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-model"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
    "$venv/bin/pip" install -q "torch==2.15.0" "transformers==4.37.2" "numpy<2" "scipy==1.17.1" "safetensors==0.8.0"
fi
exec "$venv/bin/python" "$here/make_eval_fixtures.py" "$@"
