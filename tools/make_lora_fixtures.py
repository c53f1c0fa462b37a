"""Reference data for LoRA on the tiny LLaVA (tests/fixtures/lora), from HF PEFT 0.8.2.

The model is tests/fixtures/model/tiny_gqa (LlavaForConditionalGeneration,
transformers 4.37.2, fp32, eager attention), vision tower frozen. It is
wrapped as LLaVA's train.py does with --lora_enable: LoraConfig(r=4,
lora_alpha=8 (scaling 2), lora_dropout=0, bias="none", task_type=
"CAUSAL_LM") on the nn.Linear modules LLaVA's find_all_linear_names picks
(with llava-hf's keywords: none of multi_modal_projector / vision_tower in
the name, leaf not lm_head), i.e. q/k/v/o/gate/up/down_proj of every
language-model layer; then get_peft_model, and the projector trains in full
(LLaVA creates it after get_peft_model). PEFT's target_modules gets those
modules' full names, not LLaVA's leaf names: PEFT matches a leaf name by
suffix, so "q_proj" would also wrap CLIP's q_proj/k_proj/v_proj, which
LLaVA never wraps (its tower does not exist yet at get_peft_model).
lora_A keeps PEFT's kaiming-uniform init (torch.manual_seed(A_SEED) before
get_peft_model); lora_B, zero in PEFT (which would zero every lora_A
gradient), is set to N(0, 1) * 0.02 from torch.Generator seed B_SEED.

reference.safetensors holds, for the batch of make_model_fixtures.batch
(seed 99: the tiny_gqa model fixture's batch; image first, image in the
middle, text only; right-padded; -200 per image on our side):
  batch.input_ids / batch.labels / batch.lengths (int32), batch.pixel_values
  <name>            every lora_A / lora_B at the start
  ref.logits        logits at every real position (make_model_fixtures.valid_logits)
  ref.loss          LLaVA's shifted token-mean cross-entropy
  grad.<name>       gradient of every trainable parameter (LoRA A/B, projector)
  step3.<name>      every trainable parameter after 3 AdamW steps on that batch
                    (LoRA lr 1e-3, projector lr 2e-4 as --mm_projector_lr makes
                    them; weight_decay 0, betas 0.9/0.999, eps 1e-8,
                    clip_grad_norm_(1.0) over all trainable parameters)
  step3.logits      the LoRA model's logits after the 3 steps (unmerged)
  merged.logits     the same from merge_and_unload()
<name> is the name in PEFT's adapter file (named_parameters without
".default") for LoRA, and model.named_parameters() of the PeftModel for the
projector (base_model.model.multi_modal_projector.linear_1.weight ...).
adapter/ is PeftModel.save_pretrained after the 3 steps (adapter_config.json,
adapter_model.safetensors) plus LLaVA's non_lora_trainables.bin (torch.save
of the trainable non-LoRA parameters: the projector); merged/ is the merged
model's save_pretrained. expected.json: the config, per-step loss and
clip_grad_norm_'s total norm, the parameter and adapter key names.
Usage: tools/make_lora_fixtures.sh
"""
import json
import os
import shutil
import sys

import peft
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import batch, valid_logits  # noqa: E402  (the model fixtures' batch and logits)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join("tests", "fixtures", "model", "tiny_gqa")  # relative: it lands in adapter_config.json
OUT = os.path.join("tests", "fixtures", "lora")
BATCH_SEED, A_SEED, B_SEED = 99, 1234, 4321
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
LORA_LR, PROJECTOR_LR = 1e-3, 2e-4
ADAMW = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def load_base():
    model = LlavaForConditionalGeneration.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                          attn_implementation="eager")
    model.vision_tower.requires_grad_(False)  # LLaVA's CLIP tower is frozen
    return model


def find_all_linear_names(model):
    """LLaVA's rule with llava-hf's keywords: (its leaf names, the full names of the modules it selects)."""
    full = sorted(n for n, m in model.named_modules()
                  if isinstance(m, torch.nn.Linear)
                  and not any(k in n for k in ("multi_modal_projector", "vision_tower"))
                  and n.split(".")[-1] != "lm_head")
    return sorted({n.split(".")[-1] for n in full}), full


def saved_name(n):
    """The adapter file's key for a PeftModel parameter name (PEFT drops the adapter name)."""
    return n.replace(".default.", ".")


def main():
    os.chdir(ROOT)
    adapter_dir, merged_dir = os.path.join(OUT, "adapter"), os.path.join(OUT, "merged")
    for d in (adapter_dir, merged_dir):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)

    base = load_base()
    cfg = base.config
    leaves, targets = find_all_linear_names(base)
    torch.manual_seed(A_SEED)  # PEFT draws lora_A (kaiming_uniform_) from the global generator
    model = get_peft_model(base, LoraConfig(target_modules=targets, **LORA))
    gen = torch.Generator().manual_seed(B_SEED)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.base_model.model.multi_modal_projector.requires_grad_(True)
    model.train()  # no dropout anywhere; as make_model_fixtures

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    lora = [p for n, p in trainable if "lora_" in n]
    projector = [p for n, p in trainable if "lora_" not in n]
    assert len(lora) == 2 * len(targets)
    assert all(n.startswith("base_model.model.multi_modal_projector.") for n, p in trainable if "lora_" not in n)

    ids, labels, mask, pixels, hf_ids = batch(cfg, torch.Generator().manual_seed(BATCH_SEED))
    n_patches = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2  # strategy "default"
    inputs = dict(input_ids=hf_ids, pixel_values=pixels, attention_mask=mask)

    def logits_of(m):
        with torch.no_grad():
            return valid_logits(m(**inputs).logits, hf_ids, mask, cfg.image_token_index, n_patches).contiguous()

    tensors = {"batch.input_ids": ids.int(), "batch.labels": labels.int(), "batch.lengths": mask.sum(1).int(),
               "batch.pixel_values": pixels}
    tensors.update({saved_name(n): p.detach().clone() for n, p in trainable if "lora_" in n})

    out = model(**inputs, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    tensors["ref.logits"] = valid_logits(out.logits.detach(), hf_ids, mask, cfg.image_token_index, n_patches).contiguous()
    tensors["ref.loss"] = out.loss.detach().reshape(1)
    for n, p in trainable:
        assert p.grad is not None and p.grad.abs().max() > 0, n
        tensors["grad." + saved_name(n)] = p.grad.detach().clone()
    model.zero_grad()

    # LLaVATrainer.create_optimizer with --mm_projector_lr: projector parameters in their own groups
    opt = torch.optim.AdamW([{"params": lora, "lr": LORA_LR}, {"params": projector, "lr": PROJECTOR_LR}], **ADAMW)
    steps = []
    for _ in range(3):
        o = model(**inputs, labels=labels)
        o.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        opt.step()
        opt.zero_grad()
        steps.append({"loss": o.loss.item(), "grad_norm": norm.item()})
    for n, p in trainable:
        tensors["step3." + saved_name(n)] = p.detach().clone()
    tensors["step3.logits"] = logits_of(model)

    # the adapter as PEFT and LLaVA's train.py save it
    model.save_pretrained(adapter_dir, safe_serialization=True)
    os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's model-card template
    non_lora = {n: p.detach().cpu().clone() for n, p in trainable if "lora_" not in n}
    torch.save(non_lora, os.path.join(adapter_dir, "non_lora_trainables.bin"))
    adapter_keys = sorted(load_file(os.path.join(adapter_dir, "adapter_model.safetensors")))
    assert adapter_keys == sorted(saved_name(n) for n, p in trainable if "lora_" in n), adapter_keys

    # reload onto a fresh tiny_gqa: projector from non_lora_trainables, then the adapter
    fresh = load_base()
    state = {k[len("base_model.model."):]: v for k, v in torch.load(os.path.join(adapter_dir, "non_lora_trainables.bin")).items()}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    reloaded = PeftModel.from_pretrained(fresh, adapter_dir).eval()
    reload_diff = float((logits_of(reloaded) - tensors["step3.logits"]).abs().max())
    assert reload_diff <= 1e-6, reload_diff

    merged = model.merge_and_unload().eval()
    tensors["merged.logits"] = logits_of(merged)
    merge_diff = float((tensors["merged.logits"] - tensors["step3.logits"]).abs().max())
    assert merge_diff <= 1e-5, merge_diff
    n_bytes = sum(p.numel() * p.element_size() for p in merged.state_dict().values())
    assert n_bytes < 1 << 20, n_bytes  # the tiny model: small enough to commit
    merged.save_pretrained(merged_dir, safe_serialization=True)
    if os.path.exists(os.path.join(merged_dir, "generation_config.json")):
        os.remove(os.path.join(merged_dir, "generation_config.json"))

    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))
    summary = {
        "generator": f"peft {peft.__version__}, transformers 4.37.2, torch {torch.__version__}, eager attention, fp32",
        "model": MODEL, "batch_seed": BATCH_SEED, "lora_A_seed": A_SEED, "lora_B_seed": B_SEED, "lora_B_std": 0.02,
        "lora": {**LORA, "scaling": LORA["lora_alpha"] / LORA["r"], "target_modules": targets,
                 "llava_target_modules": leaves},
        "adamw": {"lora_lr": LORA_LR, "projector_lr": PROJECTOR_LR, "betas": list(ADAMW["betas"]),
                  "eps": ADAMW["eps"], "weight_decay": ADAMW["weight_decay"], "clip": 1.0},
        "n_patches": n_patches, "loss": float(out.loss), "steps": steps,
        "trainable_params": [saved_name(n) for n, _ in trainable],
        "adapter_keys": adapter_keys, "non_lora_trainables": sorted(non_lora),
        "max_abs_logit": float(tensors["ref.logits"].abs().max()),
        "max_abs_logit_step3": float(tensors["step3.logits"].abs().max()),
        "merged_vs_unmerged_max_abs_diff": merge_diff, "reloaded_vs_trained_max_abs_diff": reload_diff,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("loss", float(out.loss), steps, "merge diff", merge_diff, "reload diff", reload_diff, file=sys.stderr)


if __name__ == "__main__":
    main()
