// One optimizer step over n micro-batches (gradient accumulation):
// zero the gradients, forward + backward each micro-batch with the loss
// reduction's scale, check the loss and gradient norm, then clip + AdamW.
//
//   token_mean: every token of the accumulated batch weighs the same: each
//     micro-batch's summed token losses x 1 / (targets of all n micro-batches,
//     counted before the forwards), so n micro-batches of b samples give the
//     gradients of one batch of n*b. Reported loss: that token mean.
//   a model extension's auxiliary losses (model/extension.h): each
//     micro-batch's (a mean over its samples) / accumulation, as HF's Trainer
//     divides each micro-batch's loss; added to the reported loss, as
//     upstream's total is the cross-entropy plus their parts.
//   micro_mean: HF Trainer 4.37: each micro-batch's token mean / accumulation
//     (gradient_accumulation_steps, also for a short step). Reported loss: the
//     sum of micro_mean / accumulation, which is what Trainer logs (before
//     its rounding to 4 decimals).
//
// Failures leave the parameters and the optimizer state untouched:
// a non-finite loss (naming the micro-batch) or gradient norm -> VLM_ERR_FAIL.
// A step whose micro-batches hold no target at all is skipped (r->skipped,
// no update, AdamW's step count unchanged), where HF would divide 0 by 0 and
// write NaN into every trained parameter; the caller still counts the step in
// its plan and schedule. In micro_mean a single micro-batch without targets
// contributes nothing (HF: NaN) and is counted in r->empty_micro.
#ifndef VLM_TRAIN_STEP_H
#define VLM_TRAIN_STEP_H

#include <stdint.h>

#include "model/llava.h"
#include "train/args.h"
#include "train/optimizer.h"

typedef struct {  // llava_forward's inputs
    const int32_t *input_ids, *labels;  // (B, T_text)
    const int *lengths;                 // (B)
    int B, T_text;
    const float *pixels;                // (n_images, 3, S, S)
    int n_images;
    const void *aux_inputs;             // the model extension's (llava_set_aux_inputs); NULL: no auxiliary losses
    uint64_t index;                     // which micro-batch of the run (all ranks'): LoRA's dropout masks
} MicroBatch;

typedef struct {
    LossReduction reduction;
    int accumulation;  // micro_mean's divisor: gradient_accumulation_steps
    int max_len;       // model_max_length (truncation after the splice); 0: none
} StepConfig;

typedef struct {
    double loss;       // see above, plus the auxiliary losses (upstream's total); 0 when skipped
    double text_loss;  // the cross-entropy part
    double part_loss[EXT_MAX_PARTS];  // the auxiliary losses' parts (m->ext's names), mean over the micro-batches
    double grad_norm;  // before clipping
    double lr;         // the base learning rate x lr_factor (the LLM's / decay group's lr)
    long n_targets;    // targets in the step (every rank's)
    bool skipped;      // no target at all: no update
    int empty_micro;   // micro-batches without a target
    int bad_micro;     // the micro-batch whose loss was not finite; -1
} StepResult;

int train_step(LlavaModel *m, Optimizer *o, const StepConfig *c, const MicroBatch *mb, int n_micro,
               double lr_factor, StepResult *r);

#endif
