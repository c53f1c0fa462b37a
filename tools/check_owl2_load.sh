#!/usr/bin/env bash
# Loads a vlm-written mPLUG-Owl2 folder with upstream's code (see check_owl2_load.py).
# Developers only; uses the venv and upstream checkout of make_owl2_fixtures.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_owl2.sh"
owl=${MPLUG_OWL_DIR:-$here/.cache/mPLUG-Owl}
[ -d "$owl/mPLUG-Owl2" ] || { echo "no upstream checkout at $owl: run tools/make_owl2_fixtures.sh first" >&2; exit 2; }
PYTHONPATH="$owl/mPLUG-Owl2" exec "$venv/bin/python" "$here/check_owl2_load.py" "$@"
