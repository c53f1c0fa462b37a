#!/usr/bin/env bash
# Regenerates tests/fixtures/trainer with transformers 4.37.2's Trainer.
# Developers only; `make test` never needs Python (tools/venv_model.sh makes the venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
exec "$venv/bin/python" "$here/make_trainer_fixtures.py" "$@"
