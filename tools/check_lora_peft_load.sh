#!/usr/bin/env bash
# Loads a vlm-written LoRA folder with PEFT (see check_lora_peft_load.py).
# Developers only; the venv of tools/venv_model.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
exec "$venv/bin/python" "$here/check_lora_peft_load.py" "$@"
