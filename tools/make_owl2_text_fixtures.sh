#!/usr/bin/env bash
# Regenerates tests/fixtures/owl2/render_v1_{data.json,expected.jsonl,params.json} by
# running upstream's own mPLUG-Owl2 data code (X-PLUG/mPLUG-Owl at 0f3068fd:
# mplug_owl2/train/train.py LazySupervisedDataset / preprocess_multimodal /
# preprocess_v1 with --version v1, mm_utils.tokenizer_image_token, the collator)
# on CPU with its pins (tools/venv_owl2.sh) and the LLaMA-2 tokenizer.
# MPLUG_OWL_DIR: an mPLUG-Owl checkout (holding mPLUG-Owl2/); if unset, one is
# cloned into tools/.cache/mPLUG-Owl. Developers only; `make test` never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/owl2_upstream.sh"
PYTHONPATH="$owl_path" exec "$venv/bin/python" "$here/make_owl2_text_fixtures.py" "$@"
