#!/usr/bin/env bash
# Regenerates tests/fixtures/json: the JSON files transformers 4.37.2 (LLaVA's
# pin) and 4.31.0 (mPLUG-Owl2's pin) save_pretrained writes, with the
# Python-isms jansson refuses (VERY_LARGE_INTEGER, NaN, Infinity). One venv
# per version, tools/.venv-json-437 and tools/.venv-json-431 (no torch).
# Developers only; `make test` never needs Python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
make_venv() {  # DIR PACKAGE==VERSION...
    local venv="$here/$1"
    shift
    if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
    "$venv/bin/pip" install -q "$@"
}
make_venv .venv-json-437 transformers==4.37.2 tokenizers==0.15.2 sentencepiece==0.2.0 protobuf==4.25.3 \
    "numpy<2" Pillow==10.2.0
make_venv .venv-json-431 transformers==4.31.0 tokenizers==0.13.3 sentencepiece==0.2.0 protobuf==4.25.3 \
    "numpy<2" Pillow==10.2.0
"$here/.venv-json-437/bin/python" "$here/make_json_fixtures.py" "$@"
exec "$here/.venv-json-431/bin/python" "$here/make_json_fixtures.py" "$@"
