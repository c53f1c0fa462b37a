"""Loads a LoRA folder that `vlm train --lora_enable True` wrote over a llava-hf
model with PEFT itself: LlavaForConditionalGeneration.from_pretrained(BASE),
LLaVA's non_lora_trainables.bin into it (strict: every key must be the
model's), then PeftModel.from_pretrained(model, ADAPTER). Compares the next
token's logits for the given ids (text only) with what `build/vlm forward
--model ADAPTER` prints for them (its top 5). Exits 1 unless PEFT loads
every adapter and the top-5 ids agree with logits within 1e-4.

Usage: tools/check_lora_peft_load.sh ADAPTER_DIR [IDS]   (ids comma-separated; base from adapter_config.json)
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import LlavaForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_check import next_logits, same_top5  # noqa: E402


def main():
    adapter = sys.argv[1]
    ids = sys.argv[2] if len(sys.argv) > 2 else "1,450,4996,338,263,3367"
    base = json.load(open(os.path.join(adapter, "adapter_config.json")))["base_model_name_or_path"]
    model = LlavaForConditionalGeneration.from_pretrained(base, torch_dtype=torch.float32)
    extra = torch.load(os.path.join(adapter, "non_lora_trainables.bin"), map_location="cpu")
    extra = {k[len("base_model.model."):]: v for k, v in extra.items()}
    missing, unexpected = model.load_state_dict(extra, strict=False)
    assert not unexpected, f"non_lora_trainables.bin keys the model does not have: {unexpected}"
    model = PeftModel.from_pretrained(model, adapter)
    n_lora = sum(1 for n, _ in model.named_parameters() if "lora_" in n)
    model.eval()
    print(f"PEFT: {n_lora} adapter tensors, {len(extra)} non-LoRA tensors loaded")
    ok = n_lora > 0 and same_top5(next_logits(model, ids), adapter, ids, "PEFT")
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
