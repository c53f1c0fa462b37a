# Sourced by the fixture scripts that need PyTorch: creates tools/.venv-model
# on first use with every pinned reference package they use (needs PyPI;
# torch is large) and sets $venv. Developers only; `make test` never needs it.
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-model"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    printf '*\n' > "$venv/.gitignore"   # keep the venv out of git
fi
# transformers 4.37's Trainer passes arguments that accelerate >= 1.0 no longer takes
# peft 0.8.2 (Feb 2024) is the LoRA of transformers 4.37's time (make_lora_fixtures)
"$venv/bin/python" -c 'import torch, transformers, scipy, safetensors, accelerate, peft, sys; sys.exit(accelerate.__version__ != "0.26.1" or transformers.__version__ != "4.37.2" or peft.__version__ != "0.8.2")' 2>/dev/null ||
    "$venv/bin/pip" install -q "torch==2.15.0" "transformers==4.37.2" "numpy<2" "safetensors==0.8.0" "scipy==1.17.1" "accelerate==0.26.1" "peft==0.8.2"
