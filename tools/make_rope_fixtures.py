"""Reference data for Llama-3.1's rope scaling (tests/fixtures/model/rope_llama3.json).

transformers 4.37.2 (the version LLaVA pins) predates the "llama3" rope_type;
this records the inverse frequencies transformers 4.44.2's
modeling_rope_utils._compute_llama3_parameters gives (float32), for Llama-3.1's
own settings and a few others. Usage: tools/make_rope_fixtures.sh
"""
import json
import os

from transformers import LlamaConfig, __version__
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model", "rope_llama3.json")

CASES = [
    # head size, theta, factor, low, high, original max positions
    (128, 500000.0, 8.0, 1.0, 4.0, 8192),    # Llama-3.1 8B / 70B / 405B
    (64, 500000.0, 32.0, 1.0, 4.0, 8192),    # Llama-3.2 1B
    (128, 500000.0, 32.0, 1.0, 4.0, 8192),   # Llama-3.2 3B
    (32, 10000.0, 4.0, 2.0, 8.0, 256),       # small, every band populated
]


def main():
    cases = []
    for hs, theta, factor, low, high, orig in CASES:
        c = LlamaConfig(hidden_size=hs * 2, num_attention_heads=2, rope_theta=theta, max_position_embeddings=orig * 16,
                        rope_scaling={"rope_type": "llama3", "factor": factor, "low_freq_factor": low,
                                      "high_freq_factor": high, "original_max_position_embeddings": orig})
        inv, scale = ROPE_INIT_FUNCTIONS["llama3"](c, "cpu")
        assert scale == 1.0
        cases.append({"head_size": hs, "theta": theta, "factor": factor, "low_freq_factor": low,
                      "high_freq_factor": high, "original_max_position_embeddings": orig,
                      "inv_freq": [float(x) for x in inv.float()]})
    with open(OUT, "w") as f:
        json.dump({"generator": f"transformers {__version__} _compute_llama3_parameters, float32", "cases": cases}, f,
                  indent=1)


if __name__ == "__main__":
    main()
