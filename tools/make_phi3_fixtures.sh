#!/usr/bin/env bash
# Regenerates tests/fixtures/phi3 with PyTorch + transformers 4.41.2 (Phi3ForCausalLM).
# Developers only; `make test` never needs Python (tools/venv_phi3.sh makes the venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_phi3.sh"
exec "$venv/bin/python" "$here/make_phi3_fixtures.py" "$@"
