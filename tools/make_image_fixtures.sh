#!/usr/bin/env bash
# Regenerates tests/fixtures/image (image decoding and preprocessing reference
# data) with Pillow and transformers' CLIPImageProcessor (slow, Pillow path).
# Developers only; `make test` never needs Python. Creates tools/.venv-image
# on first use (needs PyPI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-image"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
"$venv/bin/pip" install -q "transformers==4.37.2" "pillow==13.0.0" "numpy<2"
exec "$venv/bin/python" "$here/make_image_fixtures.py" "$@"
