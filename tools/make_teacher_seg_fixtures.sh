#!/usr/bin/env bash
# Regenerates tests/fixtures/teachers_seg (OLA-VLM's seg teacher: OneFormer's Swin
# backbone) with PyTorch + transformers 4.41.2 + Pillow 10.4.0 in tools/.venv-ola
# (tools/venv_ola.sh). Developers only; `make test` never needs Python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_ola.sh"
exec "$venv/bin/python" "$here/make_teacher_seg_fixtures.py" "$@"
