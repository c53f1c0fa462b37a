#!/usr/bin/env bash
# Regenerates tests/fixtures/model/rope_llama3.json with transformers 4.44.2's
# "llama3" rope (the model venv's torch, transformers 4.44.2 beside it in
# tools/.tf-4.44.2, since the venv pins 4.37.2). Developers only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
target="$here/.tf-4.44.2"
if [ ! -d "$target/transformers" ]; then
    "$venv/bin/pip" install -q --target "$target" --no-deps "transformers==4.44.2"
    "$venv/bin/pip" install -q --target "$target" "tokenizers>=0.19,<0.20" "huggingface_hub>=0.23"
    printf '*\n' > "$target/.gitignore"
fi
PYTHONPATH="$target" exec "$venv/bin/python" "$here/make_rope_fixtures.py" "$@"
