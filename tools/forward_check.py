"""Shared by the tools that load a vlm-written folder in a reference library
(check_lora_peft_load.py, check_phi3_load.py): the reference model's next-token
logits for some ids against what `build/vlm forward` prints for them."""
import os
import re
import subprocess

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def next_logits(model, ids):
    """The reference model's logits of the token after ids (comma-separated)."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([[int(x) for x in ids.split(",")]])).logits[0, -1]


def same_top5(logits, folder, ids, label):
    """Prints both top 5s; True when each of the reference's top 5 ids is in vlm's with its logit within 1e-4."""
    top = torch.topk(logits, 5)
    out = subprocess.run([os.path.join(ROOT, "build", "vlm"), "forward", "--model", folder, "--ids", ids, "--top", "5"],
                         capture_output=True, text=True, check=True).stdout
    ours = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^\s*(\d+)\s+p=\S+\s+logit=(\S+)", out, re.M)}
    print(f"{label} top 5:", [(int(i), round(float(v), 6)) for v, i in zip(top.values, top.indices)])
    print("vlm.c:", ours)
    return all(int(i) in ours and abs(ours[int(i)] - float(v)) <= 1e-4 * max(1.0, abs(float(v)))
               for v, i in zip(top.values, top.indices))
