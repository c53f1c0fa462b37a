// Multi-head scaled dot-product attention over packed projections:
// bidirectional (the ViT) or causal (the LLM), grouped-query (NKV heads
// shared by NH / NKV query heads each), right padding through per-sample
// lengths: keys at or past a sample's length are masked. A padded query row
// sees the sample's real keys, as HF's 4D mask gives it; a row that sees no
// key (a sample of length 0) gives 0. FlashAttention-2's state: the forward
// keeps only each row's log-sum-exp, the backward recomputes the
// probabilities from it, a block of query rows at a time.
#ifndef VLM_KERNELS_ATTENTION_H
#define VLM_KERNELS_ATTENTION_H

#include <stddef.h>  // size_t

// q (B,T,ld) holding NH heads of HS at the start of each row, k and v
// (B,T,ld) holding NKV heads (separate buffers: ld = NH*HS = NKV*HS; one
// packed q|k|v buffer: ld its row) -> out (B,T,NH,HS) and lse (B,NH,T), the
// log-sum-exp of each row's scaled scores (+inf where a row sees no key),
// kept for backward. lengths (B) or NULL for no padding. causal: 0
// bidirectional, 1 causal, W > 1 causal within a sliding window of the last W
// keys (query t sees keys t - W + 1 .. t: Phi-3 / Mistral's sliding_window).
// scratch: attention_scratch_floats(T) floats.
void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int ld,
                       const int *lengths, int B, int T, int NH, int NKV, int HS, int causal, float *scratch);
// out and lse from the forward on the same q, k, v; dout (B,T,NH,HS). dq, dk,
// dv (laid out as q, k, v; their columns of each row) are written (see
// kernels/gradients.h). scratch: attention_scratch_floats(T) floats.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                        const float *q, const float *k, const float *v, int ld, const int *lengths, int B, int T, int NH,
                        int NKV, int HS, int causal, float *scratch);
// The state the forward keeps for the backward: lse, B*NH*T floats.
size_t attention_state_floats(int B, int NH, int T);
// Forward and backward scratch for sequences of up to T: two blocks of query
// rows by T scores per thread (omp_get_max_threads() when sized, which must
// not grow after), independent of the batch and the heads.
size_t attention_scratch_floats(int T);

#endif
