"""Shared by the PyTorch references of bench_model (bench_model_ref.py, bench_owl2_ref.py,
which run in different venvs): time a training step and print bench_model's JSON."""
import json
import resource
import time

import torch


def time_steps(step, steps):
    """Runs step() steps + 1 times (the first warms up); returns (seconds per step, last result)."""
    total, out = 0.0, None
    for s in range(steps + 1):
        t0 = time.perf_counter()
        out = step()
        if s > 0:
            total += time.perf_counter() - t0
    return total / steps, out


def report(B, SEQ, step_s, loss, **extra):
    print(json.dumps({"tokens_per_s": round(B * SEQ / step_s, 1), "step_s": round(step_s, 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "loss": round(float(loss), 4), "threads": torch.get_num_threads(), "seq": SEQ, "batch": B,
                      **extra}))
