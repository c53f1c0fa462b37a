#!/usr/bin/env bash
# Regenerates tests/fixtures/lora with HF PEFT 0.8.2 on the tiny LLaVA of tests/fixtures/model/tiny_gqa.
# Developers only; `make test` never needs Python (tools/venv_model.sh makes the venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
# PEFT keeps target_modules as a set and writes it to adapter_config.json in set order: fix the string hash
export PYTHONHASHSEED=0
exec "$venv/bin/python" "$here/make_lora_fixtures.py" "$@"
