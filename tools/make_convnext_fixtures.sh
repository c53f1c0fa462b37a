#!/usr/bin/env bash
# Regenerates tests/fixtures/convnext by running upstream's own CLIP-ConvNeXt vision tower
# (SHI-Labs/OLA-VLM at 6032a6c: ola_vlm/model/multimodal_encoder/clip_convnext_encoder.py and
# openclip_utils.py) over a tiny random open_clip CLIP whose vision tower is timm's ConvNeXt
# (open_clip_torch 2.26.1, timm 1.0.8, torch 2.15.0 CPU: tools/venv_ola.sh).
# OLA_VLM_DIR: an OLA-VLM checkout; if unset, one is cloned into tools/.cache/OLA-VLM (from
# the mirror when this machine has one). Upstream's code is only run, never committed.
# Developers only; `make test` never needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${OLA_VLM_DIR:-}" ]; then
    OLA_VLM_DIR="$here/.cache/OLA-VLM"
    if [ ! -d "$OLA_VLM_DIR/ola_vlm" ]; then
        mkdir -p "$here/.cache"
        src=https://github.com/SHI-Labs/OLA-VLM
        [ -d /work/.mirror/SHI-Labs+OLA-VLM/repo ] && src=/work/.mirror/SHI-Labs+OLA-VLM/repo
        git clone -q "$src" "$OLA_VLM_DIR"
    fi
    git -C "$OLA_VLM_DIR" -c advice.detachedHead=false checkout -q 6032a6c
fi
export OLA_VLM_DIR
. "$here/venv_ola.sh"
exec "$venv/bin/python" "$here/make_convnext_fixtures.py" "$@"
