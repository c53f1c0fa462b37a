"""Loads an mPLUG-Owl2 folder that vlm.c wrote (`vlm convert` / `vlm train`'s
output) with upstream's own MPLUGOwl2LlamaForCausalLM.from_pretrained
(transformers 4.31.0, CPU fp32) and compares its logits on the fixture batch
with upstream's logits of the original weights (tests/fixtures/owl2).
Prints what from_pretrained reported missing / unexpected and the largest
logit difference; exits 1 unless nothing was missing and the logits are
identical up to float rounding.

Usage: tools/check_owl2_load.sh DIR   (the venv and checkout of make_owl2_fixtures.sh)
"""
import os
import sys

import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    from mplug_owl2.model import MPLUGOwl2LlamaForCausalLM

    folder = sys.argv[1]
    model, info = MPLUGOwl2LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, output_loading_info=True)
    model.eval()
    ref = load_file(os.path.join(ROOT, "tests", "fixtures", "owl2", "reference.safetensors"))
    with torch.no_grad():
        out = model(input_ids=ref["batch.input_ids"].long(), attention_mask=ref["batch.attention_mask"].bool(),
                    labels=ref["batch.labels"].long(), images=ref["batch.pixel_values"])
    want = ref["logits"]
    mask = ref["spliced.attention_mask"].bool()
    diff = (out.logits - want).abs()[mask].max().item()
    print(f"missing: {info['missing_keys']}\nunexpected: {info['unexpected_keys']}")
    print(f"loss {out.loss.item():.8f} (upstream's weights: {ref['loss'].item():.8f}); max |logit diff| {diff:.3g}")
    ok = not info["missing_keys"] and not info["unexpected_keys"] and diff <= 1e-5
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
