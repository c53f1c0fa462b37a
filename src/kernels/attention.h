// Multi-head scaled dot-product attention over packed projections:
// bidirectional (the ViT) or causal (the LLM), grouped-query (NKV heads
// shared by NH / NKV query heads each), right padding through per-sample
// lengths: keys at or past a sample's length are masked. A padded query row
// sees the sample's real keys, as HF's 4D mask gives it.
#ifndef VLM_KERNELS_ATTENTION_H
#define VLM_KERNELS_ATTENTION_H

#include <stddef.h>  // size_t

// q (B,T,ld) holding NH heads of HS at the start of each row, k and v
// (B,T,ld) holding NKV heads (separate buffers: ld = NH*HS = NKV*HS; one
// packed q|k|v buffer: ld its row) -> out (B,T,NH,HS); att (B,NH,T,T) keeps
// the probabilities for backward. lengths (B) or NULL for no padding.
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int ld,
                       const int *lengths, int B, int T, int NH, int NKV, int HS, int causal);
// dq, dk, dv (laid out as q, k, v) accumulate (+=). scratch: attention_scratch_floats(T) floats.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, int ld, const int *lengths, int B, int T, int NH, int NKV, int HS,
                        int causal, float *scratch);
// The backward's scratch for sequences of T: a block of rows per thread
// (omp_get_max_threads(), which must not grow after it is sized).
size_t attention_scratch_floats(int T);

#endif
