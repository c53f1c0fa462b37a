#!/usr/bin/env bash
# Regenerates tests/fixtures/trainer with transformers 4.37.2's Trainer.
# Developers only; `make test` never needs Python. Creates tools/.venv-model
# on first use (needs PyPI; torch is large).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-model"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
    "$venv/bin/pip" install -q "torch==2.15.0" "transformers==4.37.2" "numpy<2" "safetensors==0.8.0" "accelerate==0.26.1"
fi
# transformers 4.37's Trainer passes arguments that accelerate >= 1.0 no longer takes
"$venv/bin/python" -c 'import accelerate, sys; sys.exit(accelerate.__version__ != "0.26.1")' 2>/dev/null ||
    "$venv/bin/pip" install -q "accelerate==0.26.1"
exec "$venv/bin/python" "$here/make_trainer_fixtures.py" "$@"
