// `vlm train`: the training loop that replaces `deepspeed llava/train/train_mem.py`.
//
// Data (loader) -> micro-batches -> train_step (forward, backward, clip,
// AdamW) on HF Trainer's plan and schedule -> progress, metrics.jsonl,
// checkpoints every save_steps and at the end, the final model in
// output_dir, and a plot of loss and learning rate.
//
// Resume: a run continues from a checkpoint (--resume, or, as LLaVA's
// train.py does, whenever output_dir already holds one) with the model,
// AdamW's moments and step, and the data position of the checkpoint; every
// batch is a function of (seed, position), so the resumed run computes the
// same losses, bit for bit, as one never interrupted (same thread count).
//
// A step whose loss or gradient norm is not finite stops the run before any
// parameter changes: the message names the step and the samples, and the
// checkpoints on disk stay as they were.
#ifndef VLM_TRAIN_TRAINER_H
#define VLM_TRAIN_TRAINER_H

#include "train/args.h"

int train_run(const TrainArgs *a);

#endif
