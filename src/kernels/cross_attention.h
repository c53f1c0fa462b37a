// Multi-head cross-attention without a mask: NQ queries over NK keys, as the
// Perceiver resampler of OLA-VLM's embedding predictors computes it
// (softmax(q k^T * scale) v per head, in fp32). FlashAttention-2's state: the
// forward keeps each row's log-sum-exp, the backward recomputes the
// probabilities from it, a block of query rows at a time.
#ifndef VLM_KERNELS_CROSS_ATTENTION_H
#define VLM_KERNELS_CROSS_ATTENTION_H

#include <stddef.h>  // size_t

// q (NQ, ldq) holding NH heads of HS at the start of each row; k, v (NK, ldkv)
// likewise -> out (NQ, NH*HS) and lse (NH, NQ), the log-sum-exp of each row's
// scaled scores, kept for backward. scratch: cross_attention_scratch_floats(NQ, NK).
void cross_attention_forward(float *out, float *lse, const float *q, int ldq, const float *k, const float *v, int ldkv,
                             int NQ, int NK, int NH, int HS, float scale, float *scratch);
// out and lse from the forward on the same q, k, v; dout (NQ, NH*HS). dq, dk,
// dv (laid out as q, k, v; their heads' columns) are written (see
// kernels/gradients.h). scratch: cross_attention_scratch_floats(NQ, NK).
void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                              const float *q, int ldq, const float *k, const float *v, int ldkv, int NQ, int NK, int NH,
                              int HS, float scale, float *scratch);
// The state the forward keeps for the backward: lse, NH*NQ floats.
size_t cross_attention_state_floats(int NQ, int NH);
// Forward and backward scratch for up to NQ queries over NK keys: two blocks of
// min(NQ, 64) query rows by NK scores per thread (omp_get_max_threads() when
// sized, which must not grow after).
size_t cross_attention_scratch_floats(int NQ, int NK);

#endif
