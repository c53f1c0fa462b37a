// The gradient convention every backward kernel follows, stated once (so a
// backend needs no zeroing pass before a call):
//   - parameter gradients ACCUMULATE (+=): micro-batches, tied weights and a
//     weight used by several rows sum into one buffer, zeroed once per step
//     (llava_zero_grad). Each call forms its own contribution in full (a
//     product into a scratch block, a sum over its rows) and adds it once, as
//     torch's AccumulateGrad does: so one rank accumulating W micro-batches
//     rounds exactly as W ranks each computing one and summing in rank order;
//   - activation gradients are WRITTEN (=): linear_backward's dinp, the
//     activations', attention's dq / dk / dv, the splice's and the row
//     movers' inputs, crossentropy's dlogits, distill_loss's dpred;
//   - except the norms' dinp, which ACCUMULATES: a norm opens a residual
//     branch, and the residual stream's gradient is one buffer that the
//     branch adds into (llm.c's rule); a norm without a skip connection (the
//     LLM's final norm, CLIP's pre_layrnorm) gets a zeroed buffer;
//   - an input read by two layers gets the second one's gradient through the
//     _acc variant (linear_backward_acc).
// NULL for a gradient skips it.
#ifndef VLM_KERNELS_GRADIENTS_H
#define VLM_KERNELS_GRADIENTS_H

#include <stddef.h>

// The device API's zero: n floats at p (the two norms without a skip above).
void vlm_zero(float *p, size_t n);

#endif
