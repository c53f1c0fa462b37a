"""Loads a llava-hf folder with a Phi-3 text_config that vlm.c wrote (`vlm init`,
`vlm train`) with transformers' own LlavaForConditionalGeneration (4.41.2,
the first with Phi-3; CPU fp32, eager attention) and compares the next
token's top-5 logits for the given ids with `build/vlm forward`'s. Exits 1
unless from_pretrained reports nothing missing / unexpected and they agree
within 1e-4.

Usage: tools/check_phi3_load.sh DIR [IDS]   (ids comma-separated)
"""
import os
import re
import subprocess
import sys

import torch
from transformers import LlavaForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    folder = sys.argv[1]
    ids = sys.argv[2] if len(sys.argv) > 2 else "1,450,4996,338,263,3367,29871,11,13,22,31,40"
    model, info = LlavaForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32,
                                                                attn_implementation="eager", output_loading_info=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[int(x) for x in ids.split(",")]])).logits[0, -1]
    top = torch.topk(logits, 5)
    out = subprocess.run([os.path.join(ROOT, "build", "vlm"), "forward", "--model", folder, "--ids", ids, "--top", "5"],
                         capture_output=True, text=True, check=True).stdout
    ours = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^\s*(\d+)\s+p=\S+\s+logit=(\S+)", out, re.M)}
    print(f"text_config: {model.config.text_config.model_type}, sliding_window {model.config.text_config.sliding_window}")
    print(f"missing: {info['missing_keys']}\nunexpected: {info['unexpected_keys']}")
    print("transformers top 5:", [(int(i), round(float(v), 6)) for v, i in zip(top.values, top.indices)])
    print("vlm.c:", ours)
    ok = not info["missing_keys"] and not info["unexpected_keys"] and all(
        int(i) in ours and abs(ours[int(i)] - float(v)) <= 1e-4 * max(1.0, abs(float(v))) for v, i in zip(top.values, top.indices))
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
