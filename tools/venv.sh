#!/usr/bin/env bash
# Creates tools/.venv with the pinned reference packages (developers only;
# `make test` never needs Python). Usage: tools/venv.sh PACKAGE==VERSION...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/.venv/bin/python" ]; then python3 -m venv "$here/.venv"; fi
"$here/.venv/bin/pip" install -q "$@"
