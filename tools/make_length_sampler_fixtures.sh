#!/usr/bin/env bash
# Regenerates tests/fixtures/owl2/length_sampler.json: transformers 4.31.0's --group_by_length
# sampler over upstream mPLUG-Owl2's dataset (tools/make_length_sampler_fixtures.py). MPLUG_OWL_DIR:
# an mPLUG-Owl checkout (holding mPLUG-Owl2/); if unset, one is cloned into tools/.cache/mPLUG-Owl.
# Developers only; `make test` never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/owl2_upstream.sh"
PYTHONPATH="$owl_path" exec "$venv/bin/python" "$here/make_length_sampler_fixtures.py" "$@"
