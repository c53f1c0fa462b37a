"""The reference for `bench_model STEPS SEQ BATCH 0 owl2`: the same small
mPLUG-Owl2 config, batch and step in upstream's own code (X-PLUG/mPLUG-Owl
mPLUG-Owl2, MPLUGOwl2LlamaForCausalLM under its pins: transformers 4.31.0,
torch 2.0.1; tools/venv_owl2.sh and the checkout of tools/make_owl2_fixtures.sh
on PYTHONPATH), fp32, eager attention, torch.optim.AdamW, no clipping (as
Q-Instruct's DeepSpeed run), with as many threads as vlm.c uses (all cores).
The ViT's hard-coded gradient checkpointing is switched off (vlm.c does not
recompute here either). Prints the same JSON as bench_model.
Usage: PYTHONPATH=.../mPLUG-Owl2 python bench_owl2_ref.py STEPS [SEQ BATCH]
"""
import os
import sys

import torch
from bench_step import report, time_steps


def main():
    from mplug_owl2.model import MPLUGOwl2Config, MPLUGOwl2LlamaForCausalLM
    from mplug_owl2.model.configuration_mplug_owl2 import MplugOwlVisionConfig, MplugOwlVisualAbstractorConfig

    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    SEQ = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    B = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    vis = MplugOwlVisionConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6,
                               image_size=224, patch_size=16)
    abst = MplugOwlVisualAbstractorConfig(hidden_size=384, encoder_hidden_size=384, num_hidden_layers=2,
                                          num_attention_heads=6, intermediate_size=1024, num_learnable_queries=64,
                                          grid_size=14)
    cfg = MPLUGOwl2Config(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                          num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048,
                          visual_config={"visual_model": vis.to_dict(), "visual_abstractor": abst.to_dict()})
    model = MPLUGOwl2LlamaForCausalLM(cfg).float().train()
    model.get_model().vision_model.encoder.gradient_checkpointing = False
    F = 65
    T = SEQ - F + 1
    ids = torch.randint(2, 31000, (B, T))
    ids[:, 1] = -200
    labels = ids.clone()
    labels[:, :8] = -100
    labels[:, 1] = -100
    mask = torch.ones_like(ids, dtype=torch.bool)
    pixels = torch.randn(B, 3, 224, 224)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    def step():
        opt.zero_grad()
        out = model(input_ids=ids, attention_mask=mask, labels=labels, images=pixels)
        out.loss.backward()
        opt.step()
        return out

    step_s, out = time_steps(step, steps)
    report(B, SEQ, step_s, out.loss)


if __name__ == "__main__":
    main()
