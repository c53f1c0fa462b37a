// HF Trainer's optimizer over a LlavaModel: torch.optim.AdamW with Trainer's
// parameter groups and clip_grad_norm_.
//
// Groups (Trainer.create_optimizer / LLaVATrainer.create_optimizer, 4.37):
// weight decay on every parameter except biases and the weights of
// LayerNorm / LlamaRMSNorm modules (ALL_LAYERNORM_LAYERS); CLIP's
// class_embedding, position_embedding and patch_embedding are not in such
// modules and decay. With mm_projector_lr the projector's tensors get their
// own base lr. Only trained tensors take part (reachable, of a trainable
// module): torch skips parameters whose grad is None, in the step and in the
// clipping norm. Every group's lr follows the same schedule multiplier.
//
// Several ranks (dist.h): the trained floats, packed in range order, are cut
// into whole gradient units (adamw.h) and partitioned over the ranks, rank r
// owning packed [bounds[r], bounds[r + 1]). ZeRO stage 0: every rank holds
// every moment, the gradients are summed over the ranks in rank order
// (reduce-scatter + allgather) and every rank takes the same step. Stage 1:
// a rank holds the moments of its own slice only, the gradients are
// reduce-scattered, each rank updates its slice and the parameters are
// allgathered. Both give the same bits: the norm is the same sum of the same
// unit sums, and AdamW is elementwise. Stages 2 and 3 (zero.h) shard the
// gradients and the parameters too, as the model's parameter events come.
#ifndef VLM_TRAIN_OPTIMIZER_H
#define VLM_TRAIN_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>

#include "model/llava.h"
#include "train/adamw.h"
#include "train/args.h"

typedef struct {
    double lr, weight_decay;
    double projector_lr;  // < 0: None, the projector uses lr
    double beta1, beta2, eps;
    double max_grad_norm;  // 0: no clipping
    int zero_stage;        // 0 to 3 (see above; 2 and 3: train/zero.h)
} OptimizerConfig;

OptimizerConfig optimizer_config_from_args(const TrainArgs *a);

typedef struct {
    OptimizerConfig cfg;
    // the AdamW state: m and v hold the trained tensors' moments, packed in
    // range order (range r starts at packed offset moment_offset[r]), for the
    // packed floats [shard_lo, shard_hi) (all of them at stage 0): moment i
    // of adam.m is packed float shard_lo + i. adam.step counts steps taken.
    // Save / restore adam.m, adam.v (adam.n floats) and adam.step to resume
    // bit-exactly.
    AdamW adam;
    int n_ranges;
    size_t *ranges;         // (offset, count) pairs into the parameter buffer
    size_t *moment_offset;  // per range
    int *spec;              // per range: index into params.specs (its name)
    bool *decay;            // per range: in the weight-decay group
    bool *projector;        // per range: uses projector_lr
    long *steps;            // per range: the steps that updated it (torch's state["step"]; <= adam.step)
    size_t n_packed;        // trained floats
    int world, rank;
    size_t *bounds;         // (world + 1) the ranks' packed slices, at unit boundaries
    size_t shard_lo, shard_hi;  // the packed floats whose moments this rank holds
    size_t n_units;         // gradient units (adamw.h)
    double *unit_sums;      // (n_units) their sums of squares, this step
    struct Zero *zero;      // stages 2 and 3 over several ranks (train/zero.h), NULL: none
} Optimizer;

// HF Trainer's decay rule for a parameter name of cfg's layout: transformers
// 4.37's for LLaVA (ALL_LAYERNORM_LAYERS holds LlamaRMSNorm), 4.31's for
// mPLUG-Owl2 (nn.LayerNorm only: its RMSNorm weights decay).
bool param_decays(const LlavaConfig *cfg, const char *name);

// The trained ranges of m (its trainable flags as they are now).
int optimizer_init(Optimizer *o, const LlavaModel *m, const OptimizerConfig *cfg);
void optimizer_free(Optimizer *o);
// Stages 2 and 3 over several ranks: sets m's parameter hooks (zero.h) for
// the run; stage 3 drops the others' parts of the trained parameters now.
// Nothing to do otherwise. Call once after optimizer_init, before training.
int optimizer_attach_model(Optimizer *o, LlavaModel *m);
// The 2-norm of the trained gradients (clip_grad_norm_'s total norm), of the
// gradients summed over the ranks (after optimizer_reduce); NAN when a
// collective failed (its message recorded).
double optimizer_grad_norm(const Optimizer *o, const float *grad);
// The packed floats [*a, *b) of range r that lie in this rank's slice (all
// of it at stage 0); false when none do.
bool optimizer_range_slice(const Optimizer *o, int r, size_t *a, size_t *b);
// Sums the gradients of every rank (rank order) where this rank needs them:
// all of them at stage 0, its own slice at stage 1. One rank: nothing.
int optimizer_reduce(const Optimizer *o, float *grad);
// One step at lr = base lr x lr_factor (the schedule's lambda) for each group:
// clips the gradients to max_grad_norm, then AdamW over the ranges that got a
// gradient (llava_param_has_grad; the others keep their values, moments and steps). *grad_norm receives the
// norm before clipping. A non-finite norm updates nothing and returns
// VLM_ERR_FAIL naming it. Call after optimizer_reduce; at stage 1 it ends with
// the parameters' allgather.
int optimizer_step(Optimizer *o, LlavaModel *m, double lr_factor, double *grad_norm);

#endif
