"""The reference for bench_model: the same LLaVA config, batch and step in
PyTorch + transformers 4.37.2 (fp32, eager attention, torch.optim.AdamW,
clip_grad_norm_), with as many threads as vlm.c uses (all cores).
Prints the same JSON. Usage: python bench_model_ref.py STEPS [SEQ BATCH CKPT]:
the long-sequence case (bench_model_ref.py 2 2048 1 0, and 1 for
gradient_checkpointing_enable(use_reentrant=False)) runs the LLM with SDPA
attention, as a long-context user would (CLIP has no SDPA path in 4.37).
"""
import os
import sys

import torch
from bench_step import report, time_steps
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration


def build(SEQ=256, B=4, llm_attention="eager"):
    """Seeds torch, sets all cores; returns bench_model's model (fp32, train mode) and its batch (model kwargs)."""
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6,
                                       num_attention_heads=6, image_size=224, patch_size=16, projection_dim=8),
        text_config=LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                                num_key_value_heads=4, vocab_size=32000, rms_norm_eps=1e-5),
        image_token_index=31999, vision_feature_layer=-2, pad_token_id=0)
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = llm_attention
    model = LlavaForConditionalGeneration(cfg).float().train()
    F = 196
    T = SEQ - F + 1
    ids = torch.randint(2, 31000, (B, T))
    ids[:, 1] = cfg.image_token_index
    labels = ids.clone()
    labels[:, :8] = -100
    labels[:, 1] = -100
    mask = torch.ones_like(ids)
    pixels = torch.randn(B, 3, 224, 224)
    return model, dict(input_ids=ids, pixel_values=pixels, attention_mask=mask, labels=labels)


def make_step(model, opt, batch):
    """One training step: forward, backward, clip_grad_norm_(1.0) (over model.parameters(), as HF's Trainer), AdamW."""
    def step():
        opt.zero_grad()
        out = model(**batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return out
    return step


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    SEQ = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    B = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    ckpt = len(sys.argv) > 4 and sys.argv[4] != "0"
    attention = "sdpa" if len(sys.argv) > 2 else "eager"  # the long-sequence case
    model, batch = build(SEQ, B, attention)
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    step_s, out = time_steps(make_step(model, opt, batch), steps)
    report(B, SEQ, step_s, out.loss, checkpointing=ckpt, attention=attention)


if __name__ == "__main__":
    main()
