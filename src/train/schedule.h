// The learning-rate schedule and the step plan, as transformers 4.37's
// Trainer computes them.
//
// Schedule: get_scheduler(name, optimizer, num_warmup_steps, num_training_steps)
// wraps a LambdaLR: the k-th optimizer step (1-based) runs at base_lr *
// lambda(k - 1), so with warmup the first step has lr 0. (The lr Trainer
// logs after step k is the one of step k + 1: it reads it after
// lr_scheduler.step().) Warmup steps = warmup_steps if > 0 else
// ceil(warmup_ratio * total).
//
// Plan: Trainer's _inner_training_loop (4.37.2), for a dataloader of L
// micro-batches per epoch and A = gradient_accumulation_steps:
//   num_update_steps_per_epoch = max(L // A, 1)
//   max_steps = --max_steps if > 0 else ceil(num_train_epochs * that);
//   epochs    = ceil(max_steps / that) or ceil(num_train_epochs)
// and in the loop a counter of micro-batches that is NOT reset at epoch
// boundaries (total_batched_samples): the optimizer steps when it is a
// multiple of A, or at the last micro-batch of an epoch when the epoch has at
// most A micro-batches. So when L % A != 0 the leftover micro-batches at the
// end of an epoch are not dropped and not stepped alone: their gradients
// carry over and join the first micro-batches of the next epoch in one step
// (accelerate's accumulate() counts across epochs too). Training stops as
// soon as max_steps steps are taken; the loop always reaches max_steps in
// these cases. Every step's gradients are divided by A, even a short one
// (L < A): accelerate divides each micro-batch's loss by A.
#ifndef VLM_TRAIN_SCHEDULE_H
#define VLM_TRAIN_SCHEDULE_H

#include "train/args.h"  // SchedulerType, TrainArgs

typedef struct {
    SchedulerType type;
    long warmup, total;  // num_warmup_steps, num_training_steps
    double num_cycles;   // cosine: 0.5
} Schedule;

long schedule_warmup_steps(long warmup_steps, double warmup_ratio, long total);
Schedule schedule_make(SchedulerType type, long warmup_steps, double warmup_ratio, long total);
Schedule schedule_from_args(const TrainArgs *a, long total);
// lambda(step): the multiplier of every group's base lr after `step`
// optimizer steps, i.e. for optimizer step step + 1.
double schedule_lambda(const Schedule *s, long step);
const char *schedule_name(SchedulerType t);

typedef struct {
    long len_dataloader;   // micro-batches per epoch
    int accumulation;      // gradient_accumulation_steps (HF's divisor in micro_mean)
    long n_steps;          // optimizer steps = HF's max_steps = the schedule's total
    long steps_per_epoch;  // num_update_steps_per_epoch
    int n_epochs;          // epochs the loop enters
    long *first;           // per step: global index g of its first micro-batch (epoch g / L, batch g % L)
    int *count;            // per step: its micro-batches (consecutive global indices)
} TrainPlan;

// len_dataloader = ceil(samples / per_device_train_batch_size) (the loader
// keeps the last partial batch, like DataLoader's drop_last=False).
int train_plan(TrainPlan *p, long len_dataloader, int accumulation, double num_train_epochs, long max_steps);
void train_plan_free(TrainPlan *p);
static inline long train_plan_epoch(const TrainPlan *p, long g) { return g / p->len_dataloader; }
static inline long train_plan_batch(const TrainPlan *p, long g) { return g % p->len_dataloader; }

#endif
