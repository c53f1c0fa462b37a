# Sourced by tools/make_owl2_fixtures.sh: creates tools/.venv-owl2 on first use
# with mPLUG-Owl2's own pins (mPLUG-Owl2/pyproject.toml: torch 2.0.1,
# transformers 4.31.0, tokenizers <0.14, sentencepiece 0.1.99, einops 0.6.1,
# peft 0.4.0 and accelerate 0.21.0 (tools/make_owl2_lora_fixtures.sh);
# numpy<2 for torch 2.0.1) and sets $venv. Needs Python 3.11 (or older) and
# PyPI; torch 2.0.1 from PyPI is the CUDA 11.7 build (large), run on CPU.
# Developers only; `make test` never needs it.
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-owl2"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
"$venv/bin/python" -c 'import torch, transformers, tokenizers, sentencepiece, numpy, safetensors, icecream, einops, PIL, peft, accelerate, sys
sys.exit(torch.__version__.split("+")[0] != "2.0.1" or transformers.__version__ != "4.31.0" or tokenizers.__version__ != "0.13.3"
         or numpy.__version__ != "1.26.4" or einops.__version__ != "0.6.1" or PIL.__version__ != "10.1.0"
         or peft.__version__ != "0.4.0" or accelerate.__version__ != "0.21.0")' 2>/dev/null ||
    "$venv/bin/pip" install -q "torch==2.0.1" "transformers==4.31.0" "tokenizers==0.13.3" "sentencepiece==0.1.99" \
        "numpy==1.26.4" "safetensors==0.8.0" "icecream==2.2.0" "huggingface-hub==0.36.2" "einops==0.6.1" "Pillow==10.1.0" \
        "peft==0.4.0" "accelerate==0.21.0"
