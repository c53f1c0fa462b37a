"""Loads a llava-hf folder with a Phi-3 text_config that vlm.c wrote (`vlm init`,
`vlm train`) with transformers' own LlavaForConditionalGeneration (4.41.2,
the first with Phi-3; CPU fp32, eager attention) and compares the next
token's top-5 logits for the given ids with `build/vlm forward`'s. Exits 1
unless from_pretrained reports nothing missing / unexpected and they agree
within 1e-4.

Usage: tools/check_phi3_load.sh DIR [IDS]   (ids comma-separated)
"""
import os
import sys

import torch
from transformers import LlavaForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_check import next_logits, same_top5  # noqa: E402


def main():
    folder = sys.argv[1]
    ids = sys.argv[2] if len(sys.argv) > 2 else "1,450,4996,338,263,3367,29871,11,13,22,31,40"
    model, info = LlavaForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32,
                                                                attn_implementation="eager", output_loading_info=True)
    model.eval()
    print(f"text_config: {model.config.text_config.model_type}, sliding_window {model.config.text_config.sliding_window}")
    print(f"missing: {info['missing_keys']}\nunexpected: {info['unexpected_keys']}")
    ok = not info["missing_keys"] and not info["unexpected_keys"] and same_top5(next_logits(model, ids), folder, ids,
                                                                                "transformers")
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
