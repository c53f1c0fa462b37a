"""The LoRA reference for bench_model: bench_model_ref.py's config, batch and timed step, with the model
wrapped as LLaVA's train.py does with --lora_enable on llava-hf names (PEFT 0.8.2): the vision tower frozen,
LoRA (r=R, alpha=2R, dropout 0.05, bias none) on every language-model nn.Linear but lm_head, the projector
trained in full; AdamW with finetune_lora.sh's learning rates (LoRA 2e-4, projector 2e-5 via
--mm_projector_lr), clip_grad_norm_(1.0). Prints bench_model_ref.py's JSON plus lora_r and trainable_params.
Usage: python bench_lora_ref.py STEPS [R]   (R defaults to 128, as finetune_lora.sh)
"""
import sys

import torch
from bench_model_ref import build, make_step
from bench_step import report, time_steps
from peft import LoraConfig, get_peft_model


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    R = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    SEQ, B = 256, 4
    model, batch = build(SEQ, B)
    model.vision_tower.requires_grad_(False)
    # LLaVA's find_all_linear_names, but as full names: PEFT matches target_modules by suffix, so the
    # leaf names (q_proj ...) would also wrap CLIP's q/k/v_proj, which LLaVA never wraps.
    targets = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
               and n.startswith("language_model.model.layers.")]
    model = get_peft_model(model, LoraConfig(r=R, lora_alpha=2 * R, lora_dropout=0.05, bias="none",
                                             task_type="CAUSAL_LM", target_modules=targets))
    # get_peft_model freezes everything but the adapters; LLaVA's projector trains in full.
    model.base_model.model.multi_modal_projector.requires_grad_(True)
    model.train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    lora = [p for n, p in trainable if "lora_" in n]
    projector = [p for n, p in trainable if "lora_" not in n]
    assert len(lora) == 2 * len(targets) == 2 * 7 * 8  # A and B on q/k/v/o/gate/up/down of 8 layers
    opt = torch.optim.AdamW([{"params": lora, "lr": 2e-4}, {"params": projector, "lr": 2e-5}], weight_decay=0.0)
    step_s, out = time_steps(make_step(model, opt, batch), steps)
    report(B, SEQ, step_s, out.loss, checkpointing=False, attention="eager", lora_r=R,
           trainable_params=sum(p.numel() for _, p in trainable))


if __name__ == "__main__":
    main()
