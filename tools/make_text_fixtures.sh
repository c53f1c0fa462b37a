#!/usr/bin/env bash
# Regenerates tests/fixtures/text (tokenizer and chat-template reference data)
# with the pinned upstream tokenizer stacks. Developers only; `make test` never
# needs Python. Creates tools/.venv-text on first use (needs PyPI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-text"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
"$venv/bin/pip" install -q \
    "transformers==4.37.2" "sentencepiece==0.1.99" "tokenizers==0.15.2" \
    "tiktoken==0.7.0" "blobfile==3.3.0" protobuf "numpy<2"
exec "$venv/bin/python" "$here/make_text_fixtures.py" "$@"
