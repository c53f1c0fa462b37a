#!/usr/bin/env bash
# A LoRA run of vlm train from finetune_lora.sh's start, loaded by upstream LLaVA's own
# load_pretrained_model (see check_llava_lora_load.py). Developers only; `make test` never needs it.
# Upstream's checkout (haotian-liu/LLaVA at c121f043, never committed here) is $LLAVA_DIR (set: used
# as it is; unset: cloned into tools/.cache/LLaVA); the venv is tools/venv_model.sh's (transformers
# 4.37.2, LLaVA's pin; PEFT 0.8.2) plus what LLaVA's tokenizer and image code import: sentencepiece
# 0.1.99 (LLaVA's pin) and Pillow. Needs build/vlm (make build; VLM=path for another).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LLAVA_DIR:-}" ]; then
    LLAVA_DIR="$here/.cache/LLaVA"
    if [ ! -d "$LLAVA_DIR/llava" ]; then
        mkdir -p "$here/.cache"
        git clone -q https://github.com/haotian-liu/LLaVA "$LLAVA_DIR"
    fi
    git -C "$LLAVA_DIR" -c advice.detachedHead=false checkout -q c121f0432da27facab705978f83c4ada465e46fd -- llava
fi
[ -f "$LLAVA_DIR/llava/model/builder.py" ] || { echo "no llava/model/builder.py under $LLAVA_DIR" >&2; exit 1; }
. "$here/venv_model.sh"
"$venv/bin/python" -c 'import sentencepiece, PIL, sys; sys.exit(sentencepiece.__version__ != "0.1.99" or PIL.__version__ != "10.1.0")' 2>/dev/null ||
    "$venv/bin/pip" install -q "sentencepiece==0.1.99" "Pillow==10.1.0"
PYTHONPATH="$LLAVA_DIR${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" "$here/check_llava_lora_load.py" "$@"
