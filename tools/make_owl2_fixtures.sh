#!/usr/bin/env bash
# Regenerates tests/fixtures/owl2 by running upstream's own mPLUG-Owl2 code
# (X-PLUG/mPLUG-Owl at 0f3068fd) on CPU with its pins (tools/venv_owl2.sh).
# MPLUG_OWL_DIR: an mPLUG-Owl checkout (holding mPLUG-Owl2/); if unset, one is
# cloned into tools/.cache/mPLUG-Owl. Developers only; `make test` never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/owl2_upstream.sh"
PYTHONPATH="$owl_path" exec "$venv/bin/python" "$here/make_owl2_fixtures.py" "$@"
