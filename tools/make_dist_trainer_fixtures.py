"""Reference data for vlm train's MPI data parallelism (tests/fixtures/trainer/dist_*).

transformers 4.37.2's real Trainer (accelerate 0.26.1) data-parallel on 2 CPU
processes (torchrun, gloo, DDP), each set up as make_trainer_fixtures.py's
run(): tiny_gqa with its vision tower frozen, make_samples(cfg, 10) (the 8
samples of tests/fixtures/trainer plus 2 more), a SequentialSampler, the
same ARGS (per-device batch 2, accumulation 2, max_steps 5, lr 1e-3, cosine,
warmup 1 step, clip 1.0, seed 7, fp32, eager attention).

accelerate shards the 5 batches of 2 by whole batches (BatchSamplerShard,
even_batches=True): rank r takes batches r, r+2, ..., and rank 1, short of a
third one, wraps around to the first samples, [0, 1]. So len_dataloader is 3
on each rank, num_update_steps_per_epoch 3 // 2 = 1, and since both Trainer
(total_batched_samples) and accelerate (sync_with_dataloader=False) count
micro-batches across epochs, an epoch's third micro-batch is accumulated
into the next epoch's first optimizer step. DDP all-reduces (averages) the
gradients only on a step's last micro-batch (no_sync before it).

Recorded per optimizer step: the lr it ran at (an optimizer step pre-hook)
and the lr Trainer logs, clip_grad_norm_'s total norm (of the averaged
gradients, equal on both ranks), the loss Trainer logs (round(mean over
ranks of tr_loss, 4) from _nested_gather) and that mean unrounded, and per
rank the sample indices of each micro-batch and compute_loss's token-mean
loss of it (before Trainer's / accumulation). Plus the samples (as in
reference.safetensors) and the trained parameters after 5 steps (rank 0's,
checked equal to rank 1's). Usage: tools/make_dist_trainer_fixtures.sh
"""
import json
import math
import os
import sys
import tempfile

import accelerate
import torch
import torch.distributed as dist
import transformers
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_trainer_fixtures import ARGS, OUT, Recorder, load_model, make_samples, run, sample_tensors  # noqa: E402

N_SAMPLES = 10
DIST_ARGS = dict(ddp_backend="gloo")  # run() adds use_cpu, dataloader_drop_last=False, save_strategy "no", report_to []


class DistRecorder(Recorder):
    """Recorder plus the dataloader's length, each micro-batch's DDP sync flag and the gathered tr_loss."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.sync, self.gathered = [], []

    def get_train_dataloader(self):
        dl = super().get_train_dataloader()
        self.len_dataloader = len(dl)
        return dl

    def compute_loss(self, model, inputs, return_outputs=False):
        self.sync.append(self.accelerator.sync_gradients)  # False: backward runs under DDP's no_sync
        return super().compute_loss(model, inputs, return_outputs)

    def _nested_gather(self, tensors, name=None):
        out = super()._nested_gather(tensors, name)  # only called by the loss logging here
        self.gathered.append(out.tolist())
        return out


def main():
    cfg = load_model().config
    samples = make_samples(cfg, N_SAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        model, tr, logs = run(samples, cfg, tmp, trainer=DistRecorder, **DIST_ARGS)
    rank, world = dist.get_rank(), dist.get_world_size()
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    params = dict(model.named_parameters())
    mine = dict(steps=tr.steps, norms=tr.norms, gathered=tr.gathered, len=tr.len_dataloader, sync=tr.sync,
                logs=[l for l in logs if "loss" in l], params={n: params[n].detach().clone() for n in trained})
    every = [None] * world
    dist.all_gather_object(every, mine)
    dist.destroy_process_group()
    if rank != 0:
        return
    assert world == 2
    r0, r1 = every
    GA, n_steps = ARGS["gradient_accumulation_steps"], ARGS["max_steps"]
    for r in every:  # both ranks saw the same steps, norms, lrs, losses and ended with the same weights
        assert r["len"] == r0["len"] and len(r["steps"]) == n_steps, (r["len"], len(r["steps"]))
        assert r["norms"] == r0["norms"] and r["gathered"] == r0["gathered"] and r["logs"] == r0["logs"]
        assert [s["lr"] for s in r["steps"]] == [s["lr"] for s in r0["steps"]]
        assert all(len(s["micro"]) == GA for s in r["steps"])
        assert r["sync"] == [False, True] * n_steps  # DDP averages once per step, on its last micro-batch
        for n in trained:
            assert torch.equal(r["params"][n], r0["params"][n]), n
    steps = []
    for k in range(n_steps):
        ranks = [{"micro_batches": [m[0] for m in r["steps"][k]["micro"]],
                  "micro_losses": [m[1] for m in r["steps"][k]["micro"]]} for r in every]
        gathered = r0["gathered"][k]  # each rank's tr_loss (float32 sum of micro_loss / GA)
        loss = sum(gathered) / len(gathered)  # _nested_gather(tr_loss).mean(), as a double
        assert math.isclose(loss, sum(sum(x["micro_losses"]) / GA for x in ranks) / world, rel_tol=1e-6)
        assert r0["logs"][k]["loss"] == round(float(torch.tensor(gathered).mean()), 4)
        steps.append({"lr": r0["steps"][k]["lr"], "grad_norm": r0["norms"][k], "logged_loss": r0["logs"][k]["loss"],
                      "logged_lr": r0["logs"][k]["learning_rate"], "loss": loss, "ranks": ranks})
    # the wrap-around: rank 1's last micro-batch of every epoch is batch 0
    flat1 = [b for s in steps for b in s["ranks"][1]["micro_batches"]]
    L = r0["len"]
    assert L == 3 and all(flat1[i] == [0, 1] for i in range(L - 1, len(flat1), L)), flat1
    assert all(math.isfinite(s["loss"]) and math.isfinite(s["grad_norm"]) for s in steps)
    for k in range(3, n_steps):  # the plan repeats every 3 steps: the same micro-batches, now at a lower loss
        assert [x["micro_batches"] for x in steps[k]["ranks"]] == [x["micro_batches"] for x in steps[k - 3]["ranks"]]
        assert steps[k]["loss"] < steps[k - 3]["loss"], (k, steps[k]["loss"], steps[k - 3]["loss"])

    tensors = sample_tensors(samples)
    for n in trained:
        tensors["step5." + n] = r0["params"][n]
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "dist_reference.safetensors"))
    args = {**ARGS, **DIST_ARGS, "use_cpu": True, "dataloader_drop_last": False, "save_strategy": "no",
            "report_to": [], "optim": "adamw_torch"}
    summary = {
        "generator": f"transformers {transformers.__version__} Trainer, accelerate {accelerate.__version__}, "
                     f"torch {torch.__version__}, torchrun 2 CPU processes, gloo DDP, fp32, eager attention",
        "model": "tests/fixtures/model/tiny_gqa", "world_size": world, "args": args, "n_samples": len(samples),
        "len_dataloader": L, "n_steps": n_steps, "steps": steps, "trained_parameters": trained,
        "note": "accelerate's BatchSamplerShard (even_batches=True) gives rank 0 batches [0,1],[4,5],[8,9] and "
                "rank 1 [2,3],[6,7] then wraps around to [0,1]; len_dataloader 3 is odd, and Trainer counts "
                "micro-batches across epochs, so each epoch's last micro-batch is accumulated with the next "
                "epoch's first (no partial step at an epoch's end); DDP averages gradients over ranks once per "
                "step (no_sync on the first micro-batch); the logged loss is round(mean over ranks of "
                "sum(micro_loss) / accumulation, 4)."}
    with open(os.path.join(OUT, "dist_expected.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for s in steps:
        print(s["lr"], s["grad_norm"], s["loss"], [x["micro_batches"] for x in s["ranks"]], file=sys.stderr)


if __name__ == "__main__":
    main()
