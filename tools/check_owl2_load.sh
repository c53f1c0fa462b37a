#!/usr/bin/env bash
# Loads a vlm-written mPLUG-Owl2 folder with upstream's code (see check_owl2_load.py).
# Developers only; uses the venv and upstream checkout of make_owl2_fixtures.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/owl2_upstream.sh"
PYTHONPATH="$owl_path" exec "$venv/bin/python" "$here/check_owl2_load.py" "$@"
