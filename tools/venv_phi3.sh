# Sourced by tools/make_phi3_fixtures.sh: creates tools/.venv-phi3 on first use
# with its own pins (transformers 4.41.2, the first 4.41 patch with Phi-3's
# Phi3ForCausalLM and a tested Phi-3 sliding window; torch 2.15.0 as
# tools/venv_model.sh; numpy<2; tokenizers/huggingface-hub as 4.41.2 asks)
# and sets $venv. Needs PyPI; torch is large. Developers only; `make test`
# never needs it.
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-phi3"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
"$venv/bin/python" -c 'import torch, transformers, tokenizers, numpy, safetensors, sys
sys.exit(torch.__version__.split("+")[0] != "2.15.0" or transformers.__version__ != "4.41.2"
         or tokenizers.__version__ != "0.19.1" or numpy.__version__ != "1.26.4" or safetensors.__version__ != "0.8.0")' 2>/dev/null ||
    "$venv/bin/pip" install -q "torch==2.15.0" "transformers==4.41.2" "tokenizers==0.19.1" "numpy==1.26.4" \
        "safetensors==0.8.0" "huggingface-hub==0.36.2"
