// ZeRO stages 2 and 3 on top of the optimizer's partition (optimizer.h):
// rank r owns packed [bounds[r], bounds[r + 1]) of the trained floats.
//
// Stage 2 (gradients sharded): when the backward is done with a parameter
// group (param_hooks.h: HOOK_GRADS, one layer at a time), the group's
// gradients are reduce-scattered (rank-order sums, dist.h) and the parts this
// rank does not own are dropped (their pages handed back to the kernel, so
// they read as zeros for the next micro-batch). A rank then holds its own
// slice of the gradients plus the group in flight.
// Stage 3 (parameters sharded too): between uses a rank holds only its own
// slice of the trained parameters; HOOK_FETCH allgathers a group before the
// forward or backward reads it, HOOK_RELEASE drops the others' parts again.
// Frozen parameters are held whole on every rank.
//
// With one micro-batch per step both stages give stage 0's bits (the same
// rank-order sums); with accumulation each micro-batch is summed over the
// ranks before the next one is added (as DeepSpeed does), so the bits differ
// from stage 0's within rounding.
#ifndef VLM_TRAIN_ZERO_H
#define VLM_TRAIN_ZERO_H

#include "model/llava.h"
#include "train/optimizer.h"

typedef struct Zero Zero;

// For o->cfg.zero_stage 2 or 3 over several ranks: sets m->hooks; stage 3
// drops the others' parts of the trained parameters now. NULL otherwise.
int zero_attach(Zero **out, Optimizer *o, LlavaModel *m);
void zero_free(Zero *z);  // and the model's hooks with it
// The step's start (llava_zero_grad's part): this rank's gradient slices
// zeroed, the rest handed back.
void zero_zero_grad(Zero *z);
// After each micro-batch's backward: the ranges no HOOK_GRADS reduced are
// reduced now (every trained range is summed once per micro-batch).
void zero_finish_micro(Zero *z);
// Stage 3: every trained parameter gathered (to save the model), and
// dropped again; both collective. No-ops at stage 2.
int zero_gather_all(Zero *z);
void zero_release_all(Zero *z);
// The bytes of the largest parameter group (what a rank holds in flight).
size_t zero_largest_group_bytes(const Zero *z);

#endif
