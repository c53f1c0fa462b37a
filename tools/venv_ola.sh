# Sourced by the OLA-VLM teacher and encoder fixture scripts (make_convnext_fixtures,
# make_teacher_*_fixtures): creates tools/.venv-ola on first use with OLA-VLM's own
# pins where its setup.py has them (timm 1.0.8, numpy 1.26.x, tokenizers 0.19.1 and so
# transformers 4.41.2, which has Dinov2, Depth-Anything, OneFormer and Swin), open_clip
# of the same months (2.26.1), OpenCV for Depth-Anything-v2's own preprocessing, and
# torch 2.15.0 as the other venvs; sets $venv. Needs PyPI; torch is large. Developers
# only; `make test` never needs it.
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-ola"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
"$venv/bin/python" -c 'import torch, transformers, timm, open_clip, cv2, numpy, safetensors, PIL, sys
sys.exit(torch.__version__.split("+")[0] != "2.15.0" or transformers.__version__ != "4.41.2"
         or timm.__version__ != "1.0.8" or open_clip.__version__ != "2.26.1" or numpy.__version__ != "1.26.4")' 2>/dev/null ||
    "$venv/bin/pip" install -q "torch==2.15.0" "torchvision" "transformers==4.41.2" "tokenizers==0.19.1" "numpy==1.26.4" \
        "safetensors==0.8.0" "huggingface-hub==0.36.2" "timm==1.0.8" "open_clip_torch==2.26.1" \
        "opencv-python-headless==4.10.0.84" "Pillow==10.4.0" "scipy==1.17.1"
