#!/usr/bin/env bash
# Regenerates tests/fixtures/ola with PyTorch + transformers 4.37.2.
# Developers only; `make test` never needs Python (tools/venv_model.sh makes the venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
exec "$venv/bin/python" "$here/make_ola_fixtures.py" "$@"
