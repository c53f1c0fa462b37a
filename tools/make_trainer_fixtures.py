"""Reference data for vlm train's optimisation (tests/fixtures/trainer).

transformers 4.37.2's real Trainer on the tiny LLaVA of tests/fixtures/model/
tiny_gqa (loaded from that directory, so both sides start from the same
weights) with 8 pre-tokenized samples made by make_model_fixtures.batch
(image first, image in the middle, text only; lengths 9, 12, 7; prompt
masked), right-padded by a collator like LLaVA's. SequentialSampler, so the
order is known; per_device_train_batch_size 2, gradient_accumulation_steps 2
(4 micro-batches per epoch), max_steps 5 (so step 3 starts epoch 2),
lr 1e-3, weight_decay 0.1, warmup_ratio 0.2 (1 step), cosine,
max_grad_norm 1.0, vision tower frozen (requires_grad False, as LLaVA's
IFT), fp32, no dropout. Every micro-batch pairs samples of different
lengths: transformers 4.37's LLaVA takes a batch whose last column holds no
pad for left-padded and would shift positions.

Recorded: per step the loss Trainer accumulates (unrounded; it logs it
rounded to 4 decimals), the lr the step ran at and the lr it logs,
clip_grad_norm_'s total norm, the trained parameters after 5 steps,
Trainer.get_decay_parameter_names, the schedules' lr from get_scheduler's
LambdaLR at every step, and which samples a second run (3 micro-batches per
epoch, accumulation 2) puts in each optimizer step across epochs.
Usage: tools/make_trainer_fixtures.sh
"""
import json
import math
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset, SequentialSampler
from transformers import LlavaForConditionalGeneration, Trainer, TrainingArguments, get_scheduler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import IMAGE_TOKEN_INDEX, batch  # noqa: E402  (the model fixtures' batch construction)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "tests", "fixtures", "model", "tiny_gqa")
OUT = os.path.join(ROOT, "tests", "fixtures", "trainer")
ARGS = dict(per_device_train_batch_size=2, gradient_accumulation_steps=2, learning_rate=1e-3, weight_decay=0.1,
            warmup_ratio=0.2, lr_scheduler_type="cosine", max_steps=5, max_grad_norm=1.0, logging_steps=1,
            adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, seed=7)


def load_model():
    model = LlavaForConditionalGeneration.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                          attn_implementation="eager")
    model.vision_tower.requires_grad_(False)  # LLaVA's CLIP tower is created frozen
    return model


def make_samples(cfg, n):
    """Per-sample (ids with -200, labels, pixel_values or None) from make_model_fixtures.batch."""
    out, seed = [], 99
    while len(out) < n:
        ids, labels, mask, pixels, _ = batch(cfg, torch.Generator().manual_seed(seed))
        seed += 1
        image = 0
        for b in range(ids.shape[0]):
            L = int(mask[b].sum())
            r = ids[b, :L]
            px = None
            if (r == IMAGE_TOKEN_INDEX).any():
                px = pixels[image].clone()
                image += 1
            out.append((r.clone(), labels[b, :L].clone(), px))
    return out[:n]


def sample_tensors(samples):
    """sample.{i}.input_ids / labels (int32) / pixel_values (image samples only), as the C tests read them."""
    tensors = {}
    for i, (ids, labels, px) in enumerate(samples):
        tensors[f"sample.{i}.input_ids"] = ids.int()
        tensors[f"sample.{i}.labels"] = labels.int()
        if px is not None:
            tensors[f"sample.{i}.pixel_values"] = px
    return tensors


class Samples(Dataset):
    def __init__(self, samples, cfg):
        self.s, self.img = samples, cfg.image_token_index

    def __len__(self):
        return len(self.s)

    def __getitem__(self, i):
        ids, labels, px = self.s[i]
        hf = ids.clone()
        hf[hf == IMAGE_TOKEN_INDEX] = self.img  # transformers' placeholder id
        return dict(idx=i, input_ids=hf, labels=labels, pixel_values=px)


def collate(items):
    """LLaVA's DataCollatorForSupervisedDataset: right padding (pad 0), labels -100, images stacked."""
    T = max(len(x["input_ids"]) for x in items)
    ids = torch.zeros(len(items), T, dtype=torch.long)
    labels = torch.full((len(items), T), -100, dtype=torch.long)
    mask = torch.zeros(len(items), T, dtype=torch.long)
    for b, x in enumerate(items):
        L = len(x["input_ids"])
        ids[b, :L], labels[b, :L], mask[b, :L] = x["input_ids"], x["labels"], 1
    px = [x["pixel_values"] for x in items if x["pixel_values"] is not None]
    return dict(idx=torch.tensor([x["idx"] for x in items]), input_ids=ids, labels=labels, attention_mask=mask,
                pixel_values=torch.stack(px) if px else None)


class Recorder(Trainer):
    """Trainer 4.37 with a sequential sampler, recording what each optimizer step did."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.micro = []        # per micro-batch: (sample ids, unrounded loss / accumulation)
        self.steps = []        # per step: dict
        self.pending = []

    def _get_train_sampler(self):
        return SequentialSampler(self.train_dataset)

    def compute_loss(self, model, inputs, return_outputs=False):
        idx = inputs.pop("idx")
        loss = super().compute_loss(model, inputs, return_outputs)
        self.pending.append((idx.tolist(), loss.detach().item()))
        return loss

    def create_optimizer(self):
        opt = super().create_optimizer()
        opt.register_step_pre_hook(lambda o, a, k: self.steps.append(
            {"lr": o.param_groups[0]["lr"], "micro": self.pending[:]}) or self.pending.clear())
        return opt

    def create_accelerator_and_postprocess(self):
        super().create_accelerator_and_postprocess()
        clip = self.accelerator.clip_grad_norm_

        def record(params, max_norm, *a, **k):
            norm = clip(params, max_norm, *a, **k)
            self.norms.append(float(norm))
            return norm
        self.norms = []
        self.accelerator.clip_grad_norm_ = record


def run(samples, cfg, out_dir, trainer=None, **overrides):
    model = load_model()
    args = TrainingArguments(output_dir=out_dir, report_to=[], save_strategy="no", remove_unused_columns=False,
                             use_cpu=True, optim="adamw_torch", dataloader_drop_last=False,
                             **{**ARGS, **overrides})
    tr = (trainer or Recorder)(model=model, args=args, train_dataset=Samples(samples, cfg), data_collator=collate)
    logs = []
    tr.add_callback(type("L", (__import__("transformers").TrainerCallback,), {
        "on_log": lambda self, a, s, c, logs_=None, **k: logs.append(dict(k.get("logs") or logs_ or {}))}))
    tr.train()
    return model, tr, logs


def main():
    os.makedirs(OUT, exist_ok=True)
    model0 = load_model()
    cfg = model0.config
    samples = make_samples(cfg, 8)
    tensors = sample_tensors(samples)
    decay = Trainer.get_decay_parameter_names(None, model0)
    all_names = [n for n, _ in model0.named_parameters()]
    trained = [n for n, p in model0.named_parameters() if p.requires_grad]
    with tempfile.TemporaryDirectory() as tmp:
        model, tr, logs = run(samples, cfg, tmp)
    steps = []
    step_logs = [l for l in logs if "loss" in l]
    for k, s in enumerate(tr.steps):
        # Trainer's tr_loss of the step: each micro-batch's mean / accumulation
        loss = sum(l / ARGS["gradient_accumulation_steps"] for _, l in s["micro"])
        steps.append({"lr": s["lr"], "loss": loss, "micro_losses": [m[1] for m in s["micro"]],
                      "micro_batches": [m[0] for m in s["micro"]], "grad_norm": tr.norms[k],
                      "logged_loss": step_logs[k]["loss"], "logged_lr": step_logs[k]["learning_rate"]})
    trained_params = dict(model.named_parameters())
    for n in trained:
        tensors["step5." + n] = trained_params[n].detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "reference.safetensors"))
    # schedules: the lr (base 1.0) each optimizer step runs at, from get_scheduler's LambdaLR
    schedules = {}
    for name in ("linear", "cosine", "constant", "constant_with_warmup"):
        for total, warm in ((37, 0.1), (5, 0.2), (1000, 0.03)):
            opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
            w = math.ceil(total * warm)
            sch = get_scheduler(name, opt, num_warmup_steps=w, num_training_steps=total)
            lrs = []
            for _ in range(total):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sch.step()
            schedules[f"{name}/{total}/{warm}"] = {"type": name, "total": total, "warmup_ratio": warm,
                                                   "warmup": w, "lr": lrs}
    # the step plan across epochs: 6 samples = 3 micro-batches per epoch, accumulation 2, 3 steps
    with tempfile.TemporaryDirectory() as tmp:
        _, tr2, _ = run(samples[:6], cfg, tmp, max_steps=3, learning_rate=1e-4)
    plan = {"len_dataloader": 3, "accumulation": 2, "max_steps": 3,
            "steps": [[m[0] for m in s["micro"]] for s in tr2.steps]}
    summary = {"generator": f"transformers 4.37.2 Trainer, torch {torch.__version__}, fp32, eager attention",
               "model": "tests/fixtures/model/tiny_gqa", "args": ARGS, "n_samples": len(samples),
               "steps": steps, "parameters": all_names, "decay_parameters": decay, "trained_parameters": trained,
               "schedules": schedules, "plan": plan}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for s in steps:
        print(s, file=sys.stderr)
    print(plan, file=sys.stderr)


if __name__ == "__main__":
    main()
