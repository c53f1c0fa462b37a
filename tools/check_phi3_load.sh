#!/usr/bin/env bash
# Loads a vlm-written llava-hf folder with a Phi-3 decoder in transformers 4.41.2 (see check_phi3_load.py).
# Developers only; the venv of tools/venv_phi3.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_phi3.sh"
exec "$venv/bin/python" "$here/check_phi3_load.py" "$@"
