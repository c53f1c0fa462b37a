#!/usr/bin/env bash
# Regenerates tests/fixtures/text/hf (small tokenizer.json files trained by HF
# tokenizers, with HF's ids for the test corpus). Developers only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/venv.sh" tokenizers==0.22.1
exec "$here/.venv/bin/python" "$here/make_hf_tokenizer_fixtures.py" "$@"
