#!/usr/bin/env bash
# Regenerates tests/fixtures/owl2_lora: HF PEFT 0.4.0 (mPLUG-Owl2's pin) LoRA on the tiny mPLUG-Owl2
# of tests/fixtures/owl2, wrapped as upstream's mplug_owl2/train/train.py does with --lora_enable True,
# running upstream's own code (X-PLUG/mPLUG-Owl at 0f3068fd) on CPU with its pins (tools/venv_owl2.sh).
# MPLUG_OWL_DIR: an mPLUG-Owl checkout (holding mPLUG-Owl2/); if unset, one is cloned into
# tools/.cache/mPLUG-Owl. Developers only; `make test` never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/owl2_upstream.sh"
# upstream's find_all_linear_names returns list(set): fix the string hash so that adapter_config.json's
# target_modules (PEFT 0.4.0 keeps the list as given) comes out in the same order every run
export PYTHONHASHSEED=0
PYTHONPATH="$owl_path" exec "$venv/bin/python" "$here/make_owl2_lora_fixtures.py" "$@"
