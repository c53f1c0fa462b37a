"""Reference data for LoRA on the tiny mPLUG-Owl2 (tests/fixtures/owl2_lora), from upstream's own code.

Runs X-PLUG/mPLUG-Owl's mPLUG-Owl2 code (folder mPLUG-Owl2/, commit 0f3068fd, from $MPLUG_OWL_DIR as
tools/make_owl2_lora_fixtures.sh sets it up; nothing of it is vendored) with HF PEFT 0.4.0 (the pin in
upstream's pyproject.toml) on CPU in fp32: torch 2.0.1, transformers 4.31.0, accelerate 0.21.0,
numpy 1.26.4 (tools/venv_owl2.sh).

The model is tests/fixtures/owl2/tiny_owl2, loaded with from_pretrained as upstream's train.py loads
its base (and checked equal to make_owl2_fixtures.build under its seed), prepared as that tool does
(train mode, every dropout p=0; the ViT's hard-coded gradient checkpointing off; config.use_cache
False as train.py sets it). It is wrapped as mplug_owl2/train/train.py does with --lora_enable True
(bits 16, no gradient checkpointing, no bf16/fp16 casts: fp32 throughout, so train.py's
`vision_model/visual_abstractor.to(float16)` lines, which apply only to half runs here, are skipped):
  target_modules = upstream's own find_all_linear_names(model) (imported from
      mplug_owl2.train.train): the FULL names of every nn.Linear whose name contains neither
      'vision_model' nor 'visual_abstractor', lm_head dropped; i.e. per LLM layer q_proj, o_proj,
      gate/up/down_proj and both multiway branches of k_proj / v_proj
      (model.layers.<i>.self_attn.k_proj.multiway.0 / .1 ...). A list in set order (PYTHONHASHSEED=0);
      PEFT 0.4.0 matches each module name by str.endswith against it.
  LoraConfig(r=4, lora_alpha=8 (scaling 2), target_modules, lora_dropout=0.0, bias="none",
      task_type="CAUSAL_LM"); torch.manual_seed(A_SEED) right before get_peft_model (PEFT 0.4.0's
      lora.Linear draws its own throw-away nn.Linear init, then lora_A kaiming_uniform_(a=sqrt 5),
      from the global generator); lora_B (zero in PEFT) then set to N(0,1) * 0.02 from
      torch.Generator seed B_SEED, in named_parameters order.
  then, as train.py does after get_peft_model with --tune_visual_abstractor True
      --freeze_vision_model True (its defaults and finetune_lora.sh's flags):
      model.requires_grad_(True); visual_abstractor requires_grad True; vision_model False.
      So upstream's LoRA run trains EVERY parameter outside the ViT in full: the LoRA A/B, and the
      LLM's own weights (embed_tokens, every linear's base weight, both multiway norms, norm,
      lm_head) and the visual abstractor. "trainable_params" in expected.json lists them.
  A second copy, "frozen.", is the same wrap without train.py's model.requires_grad_(True): PEFT's
      own freezing (only lora_A/B) plus the abstractor re-enabled; i.e. the LLM frozen, as a LLaVA
      LoRA run leaves it.

The batch is the owl2 fixture's mixed batch (make_owl2_fixtures.make_batches under its seed: 3 rows,
image / text-only (zero dummy image) / image, right padded; checked equal to
tests/fixtures/owl2/reference.safetensors). The image rows' visual tokens run through multiway branch 1,
every text token (the text-only row's all) through branch 0.

reference.safetensors (keys as tests/fixtures/owl2 for the batch / logits / loss, as tests/fixtures/lora
for the rest):
  batch.input_ids / batch.labels / batch.attention_mask (int32), batch.pixel_values
                    the batch, exactly the owl2 fixture's keys and values (-200 at each image)
  modality          (B, T) int32 modality indicators upstream computed (1 = visual token)
  <name>            every lora_A / lora_B at the start
  logits            (B, T_spliced, V) the LoRA model's logits on the spliced, right-padded sequence,
                    every position (as tests/fixtures/owl2 "logits")
  loss              () upstream's shifted token-mean cross-entropy
  grad.<name>       gradient of every parameter upstream trains (LoRA A/B, the LLM's weights, the
                    abstractor), from that one forward/backward
  step3.<name>      every one of them after 3 AdamW steps on that batch: lr 1e-3 for lora_A/B,
                    2e-4 for every other trained parameter, weight_decay 0, betas 0.9/0.999,
                    eps 1e-8, torch.nn.utils.clip_grad_norm_(all trained, 1.0) before each step
  step3.logits      the LoRA model's logits after the 3 steps (unmerged)
  merged.logits     the same from merge_and_unload()
  frozen.step3.<name>, frozen.step3.logits
                    the frozen-LLM copy after its 3 steps (same batch, lrs, clipping over its own
                    trained set: LoRA A/B 1e-3, abstractor 2e-4); its first gradients are grad.<name>
                    for those names (checked equal)
<name> is the key in PEFT's adapter file (PeftModel.named_parameters without ".default":
base_model.model.model.layers.0.self_attn.k_proj.multiway.1.lora_A.weight) for LoRA, and the
PeftModel's named_parameters name for the rest (base_model.model.model.layers.0.self_attn.k_proj.
multiway.1.weight: PEFT 0.4.0's lora.Linear subclasses nn.Linear, so a wrapped base weight keeps its
name, no base_layer), which is also the key in non_lora_trainables.bin.

adapter/ is what train.py writes at the end of the (non-frozen) run, after the 3 steps:
model.config.save_pretrained (config.json, use_cache True and train.py's added keys),
PeftModel.save_pretrained(state_dict = the lora_ parameters) (adapter_config.json,
adapter_model.bin: PEFT 0.4.0's default torch.save format; PEFT's README.md deleted) and
non_lora_trainables.bin (torch.save of every trained non-LoRA parameter: the LLM and the abstractor).
It is checked to reload as upstream's builder.load_pretrained_model does (base from_pretrained with
that config.json, non_lora_trainables with 'base_model.' / 'model.' stripped, strict=False,
PeftModel.from_pretrained) to step3.logits.
expected.json: versions, seeds, the LoRA config with upstream's target list (as given and sorted),
the trained parameter names (both copies), which base/other grads are None / exactly zero, per-step
loss and clip_grad_norm_'s total norm (both copies), adapter and non_lora_trainables key names,
merged-vs-unmerged and reload differences, whether the zero-B PEFT model reproduces the bare
model's logits (bitwise, same machine) and the owl2 fixture's (to rounding: made on another CPU).

Usage: tools/make_owl2_lora_fixtures.sh
       (or MPLUG_OWL_DIR=/path/to/mPLUG-Owl tools/make_owl2_lora_fixtures.sh)
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_owl2_fixtures as owl2  # noqa: E402  (imports upstream's mplug_owl2; the tiny model and batch)

import accelerate  # noqa: E402
import peft  # noqa: E402
import transformers  # noqa: E402
from mplug_owl2.model.modeling_mplug_owl2 import MPLUGOwl2LlamaForCausalLM  # noqa: E402
from mplug_owl2.train.train import find_all_linear_names  # noqa: E402  (upstream's own)
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join("tests", "fixtures", "owl2", "tiny_owl2")  # relative: it lands in adapter_config.json
OWL2_REF = os.path.join("tests", "fixtures", "owl2", "reference.safetensors")
OUT = os.path.join("tests", "fixtures", "owl2_lora")
A_SEED, B_SEED = 1234, 4321
LORA = dict(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
LORA_LR, OTHER_LR = 1e-3, 2e-4
ADAMW = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
CLIP, STEPS = 1.0, 3


def load_base(config=None):
    kw = {} if config is None else {"config": config}
    model = owl2.prepare(MPLUGOwl2LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, **kw))
    model.config.use_cache = False  # train.py
    return model


def saved_name(n):
    """The adapter file's key for a PeftModel parameter name (PEFT drops the adapter name)."""
    return n.replace(".default.", ".")


def wrap(train_llm, check=None):
    """train.py's --lora_enable path (bits 16, fp32). train_llm: keep its model.requires_grad_(True).
    check: a function of the zero-B PeftModel, run before lora_B is set."""
    model = load_base()
    targets = find_all_linear_names(model)
    torch.manual_seed(A_SEED)
    pm = get_peft_model(model, LoraConfig(target_modules=targets, **LORA))
    zero_b = check(pm) if check else None
    gen = torch.Generator().manual_seed(B_SEED)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    # train.py, after get_peft_model (DataArguments defaults; --tune_visual_abstractor True
    # --freeze_vision_model True; no --visual_abstractor_lr)
    pm.config.image_aspect_ratio = "square"
    pm.config.image_grid_pinpoints = None
    pm.config.tune_visual_abstractor = True
    if train_llm:
        pm.requires_grad_(True)
    for p in pm.get_model().visual_abstractor.parameters():
        p.requires_grad = True
    pm.config.freeze_vision_model = True
    for p in pm.get_model().vision_model.parameters():
        p.requires_grad = False
    pm.config.visual_abstractor_lr = None
    pm.train()
    return pm, targets, zero_b


def logits_of(m, batch):
    with torch.no_grad():
        return owl2.run(m, batch).logits.detach().clone()


def train3(pm, batch):
    """3 AdamW steps (HF Trainer's order: backward, clip_grad_norm_, step, zero_grad)."""
    trainable = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for n, p in trainable if "lora_" in n], "lr": LORA_LR},
                             {"params": [p for n, p in trainable if "lora_" not in n], "lr": OTHER_LR}], **ADAMW)
    steps = []
    for _ in range(STEPS):
        o = owl2.run(pm, batch)
        o.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], CLIP)
        opt.step()
        opt.zero_grad()
        steps.append({"loss": o.loss.item(), "grad_norm": norm.item()})
    assert all(np.isfinite(s["loss"]) and np.isfinite(s["grad_norm"]) for s in steps), steps
    return trainable, steps


def main():
    os.chdir(ROOT)
    torch.manual_seed(owl2.SEED)
    np.random.seed(owl2.SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    # the owl2 fixture's model and batch, under its seed; both checked against what it committed
    gen = torch.Generator().manual_seed(owl2.SEED)
    rebuilt, _ = owl2.build(gen)
    batch, _ = owl2.make_batches(gen)
    owl2_ref = load_file(OWL2_REF)
    batch_t = owl2.inputs_out("batch.", batch)
    for k, v in batch_t.items():
        assert torch.equal(v, owl2_ref[k]), k
    loaded = load_base().state_dict()
    assert loaded.keys() == rebuilt.state_dict().keys()
    assert all(torch.equal(v, loaded[k]) for k, v in rebuilt.state_dict().items())
    del rebuilt, loaded

    adapter_dir = os.path.join(OUT, "adapter")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    # PEFT with lora_B = 0 computes what the bare model computes here (bitwise), and the owl2 fixture's
    # logits up to rounding (that fixture was made on another CPU: its BLAS rounds differently)
    base_logits = logits_of(load_base(), batch)

    def zero_b_check(pm):
        lg = logits_of(pm, batch)
        return {"equals_base_here": bool(torch.equal(lg, base_logits)),
                "owl2_fixture_logits_equal": bool(torch.equal(lg, owl2_ref["logits"])),
                "owl2_fixture_logits_maxdiff": float((lg - owl2_ref["logits"]).abs().max())}

    # ---- upstream's wrap: every non-ViT parameter trains
    pm, targets, zero_b = wrap(True, zero_b_check)
    assert zero_b["equals_base_here"] and zero_b["owl2_fixture_logits_maxdiff"] <= 1e-4, zero_b
    trainable = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    lora = [n for n, _ in trainable if "lora_" in n]
    assert len(lora) == 2 * len(targets)
    for i in range(owl2.LLM["num_hidden_layers"]):
        for proj in ("k_proj", "v_proj"):
            for b in (0, 1):
                assert f"model.layers.{i}.self_attn.{proj}.multiway.{b}" in targets
    assert not any("vision_model" in n for n, _ in trainable)
    assert all(not p.requires_grad for n, p in pm.named_parameters() if "vision_model" in n)

    tensors = dict(batch_t)
    tensors.update({saved_name(n): p.detach().clone() for n, p in trainable if "lora_" in n})
    inner = pm.base_model.model
    cap = owl2.Capture(inner)
    out = owl2.run(pm, batch)
    out.loss.backward()
    cap.close()
    assert torch.isfinite(out.loss)
    tensors["modality"] = cap.data["modality"].to(torch.int32)
    tensors["logits"] = out.logits.detach().clone()
    tensors["loss"] = out.loss.detach().reshape(())
    assert [int(x) for x in cap.data["modality"].sum(1)] == [owl2.NVIS, 0, owl2.NVIS]
    g_none, g_zero = [], []
    for n, p in trainable:
        if p.grad is None:
            g_none.append(saved_name(n))
            continue
        if not bool(p.grad.any()):
            g_zero.append(saved_name(n))
        tensors["grad." + saved_name(n)] = p.grad.detach().clone()
    for n in lora:  # every adapter, both multiway branches included, has a gradient
        assert saved_name(n) not in g_none and saved_name(n) not in g_zero, n
    assert all(p.grad is None for n, p in pm.named_parameters() if not p.requires_grad)
    first_grads = {saved_name(n): p.grad.detach().clone() for n, p in trainable if p.grad is not None}
    grad_rounding_only = [n for n, t in first_grads.items() if n not in g_zero and float(t.abs().max()) < 1e-6]
    pm.zero_grad(set_to_none=True)

    trainable, steps = train3(pm, batch)
    assert steps[0]["loss"] == out.loss.item(), (steps[0], out.loss.item())
    for n, p in trainable:
        tensors["step3." + saved_name(n)] = p.detach().clone()
    tensors["step3.logits"] = logits_of(pm, batch)

    # ---- the end of train.py with --lora_enable (bias "none"; maybe_zero_3 = detach().cpu().clone())
    pm.config.use_cache = True
    state_dict = {k: t.detach().cpu().clone() for k, t in pm.named_parameters() if "lora_" in k}
    non_lora = {k: t.detach().cpu().clone() for k, t in pm.named_parameters()
                if "lora_" not in k and t.requires_grad}
    pm.config.save_pretrained(adapter_dir)
    pm.save_pretrained(adapter_dir, state_dict=state_dict)
    torch.save(non_lora, os.path.join(adapter_dir, "non_lora_trainables.bin"))
    pm.config.use_cache = False
    os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's model-card template
    adapter_files = sorted(os.listdir(adapter_dir))
    adapter_keys = sorted(torch.load(os.path.join(adapter_dir, "adapter_model.bin"), map_location="cpu"))
    assert adapter_keys == sorted(saved_name(n) for n in lora), adapter_keys
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        adapter_config = json.load(f)

    # ---- reload as upstream's builder.load_pretrained_model does (model_base + LoRA folder), unmerged
    cfg = transformers.AutoConfig.from_pretrained(adapter_dir)
    fresh = load_base(cfg)
    nl = torch.load(os.path.join(adapter_dir, "non_lora_trainables.bin"), map_location="cpu")
    nl = {(k[11:] if k.startswith("base_model.") else k): v for k, v in nl.items()}
    if any(k.startswith("model.model.") for k in nl):
        nl = {(k[6:] if k.startswith("model.") else k): v for k, v in nl.items()}
    missing, unexpected = fresh.load_state_dict(nl, strict=False)
    assert not unexpected, unexpected
    reloaded = PeftModel.from_pretrained(fresh, adapter_dir)
    owl2.prepare(reloaded.base_model.model)
    reloaded.config.use_cache = False
    reload_diff = float((logits_of(reloaded, batch) - tensors["step3.logits"]).abs().max())
    assert reload_diff <= 1e-6, reload_diff
    del reloaded, fresh

    merged = pm.merge_and_unload()
    tensors["merged.logits"] = logits_of(merged, batch)
    merge_diff = float((tensors["merged.logits"] - tensors["step3.logits"]).abs().max())
    assert merge_diff <= 1e-5, merge_diff
    merged_keys_as_base = sorted(merged.state_dict()) == sorted(load_base().state_dict())

    # ---- the frozen-LLM copy: PEFT's freezing, the abstractor re-enabled
    fz, fz_targets, _ = wrap(False)
    assert fz_targets == targets
    fz_trainable = [(n, p) for n, p in fz.named_parameters() if p.requires_grad]
    for n, p in fz_trainable:
        if "lora_" in n:
            assert torch.equal(p, tensors[saved_name(n)]), n
        else:
            assert ".visual_abstractor." in n, n
    o = owl2.run(fz, batch)
    o.loss.backward()
    assert o.loss.item() == out.loss.item()
    fz_grad_maxdiff = max(float((p.grad - first_grads[saved_name(n)]).abs().max()) for n, p in fz_trainable)
    fz_grad_equal = all(torch.equal(p.grad, first_grads[saved_name(n)]) for n, p in fz_trainable)
    assert fz_grad_maxdiff <= 1e-6, fz_grad_maxdiff
    fz.zero_grad(set_to_none=True)
    fz_trainable, fz_steps = train3(fz, batch)
    for n, p in fz_trainable:
        tensors["frozen.step3." + saved_name(n)] = p.detach().clone()
    tensors["frozen.step3.logits"] = logits_of(fz, batch)

    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))
    summary = {
        "generator": (f"upstream X-PLUG/mPLUG-Owl mPLUG-Owl2 (commit {owl2.upstream_commit()}) train.py's "
                      f"--lora_enable wrap, peft {peft.__version__}, transformers {transformers.__version__}, "
                      f"accelerate {accelerate.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
                      "CPU, fp32"),
        "model": MODEL, "batch": "tests/fixtures/owl2 batch.* (make_owl2_fixtures.make_batches, seed %d)" % owl2.SEED,
        "lora_A_seed": A_SEED, "lora_B_seed": B_SEED, "lora_B_std": 0.02,
        "lora": {**LORA, "scaling": LORA["lora_alpha"] / LORA["r"], "target_modules": sorted(targets),
                 "target_modules_as_given": targets},
        "train_py": {"tune_visual_abstractor": True, "freeze_vision_model": True, "bits": 16,
                     "gradient_checkpointing": False, "requires_grad_all_after_get_peft_model": True},
        "adamw": {"lora_lr": LORA_LR, "other_lr": OTHER_LR, "betas": list(ADAMW["betas"]), "eps": ADAMW["eps"],
                  "weight_decay": ADAMW["weight_decay"], "clip": CLIP, "steps": STEPS},
        "loss": out.loss.item(),
        "steps": steps,
        "trainable_params": [saved_name(n) for n, _ in trainable],
        "lora_params": [saved_name(n) for n in lora],
        "grad_none": g_none, "grad_zero": g_zero, "grad_rounding_only": grad_rounding_only,
        "adapter_files": adapter_files, "adapter_keys": adapter_keys, "adapter_config": adapter_config,
        "non_lora_trainables": sorted(non_lora),
        "zero_B_vs_owl2_fixture": zero_b,
        "max_abs_logit": float(tensors["logits"].abs().max()),
        "max_abs_logit_step3": float(tensors["step3.logits"].abs().max()),
        "merged_vs_unmerged_max_abs_diff": merge_diff, "merged_state_dict_keys_as_base": merged_keys_as_base,
        "reloaded_vs_trained_max_abs_diff": reload_diff,
        "frozen": {"trainable_params": [saved_name(n) for n, _ in fz_trainable], "steps": fz_steps,
                   "first_grads_equal_grad": fz_grad_equal, "first_grads_max_abs_diff": fz_grad_maxdiff},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(summary, f, indent=1)

    total = sum(os.path.getsize(os.path.join(r, fn)) for r, _, fs in os.walk(OUT) for fn in fs)
    print(f"loss {out.loss.item():.6f}; steps {steps}; frozen steps {fz_steps}", file=sys.stderr)
    print(f"{len(targets)} targets, {len(trainable)} trained ({len(lora)} LoRA); grad None {g_none}, zero {g_zero}; "
          f"zero-B vs owl2 {zero_b}; merge diff {merge_diff}; reload diff {reload_diff}; frozen grads equal "
          f"{fz_grad_equal}", file=sys.stderr)
    print(f"{len(tensors)} tensors; {total / 1e6:.2f} MB under {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
