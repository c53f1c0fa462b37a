#!/usr/bin/env bash
# Regenerates tests/fixtures/trainer/dist_* with transformers 4.37.2's Trainer
# data-parallel on 2 CPU processes (torchrun, gloo), one thread each.
# Developers only; `make test` never needs Python (tools/venv_model.sh makes the venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/venv_model.sh"
export OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
exec "$venv/bin/python" -m torch.distributed.run --standalone --nproc_per_node 2 \
    "$here/make_dist_trainer_fixtures.py" "$@"
