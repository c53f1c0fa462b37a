// The fused attention both attention.cu (self-attention: masks, GQA, the
// sliding window) and cross_attention.cu (no mask) run: FlashAttention-2's
// algorithm in fp32 (the parity mode). See flash.cu.
#ifndef VLM_KERNELS_CUDA_FLASH_CUH
#define VLM_KERNELS_CUDA_FLASH_CUH

#include <stddef.h>

// Rows of q (B, Tq, ldq) and k, v (B, Tk, ldk): head h's HS columns at h * HS;
// query head h reads KV head h / (NH / NKV). out, dout (B, Tq, ldo); lse (B, NH, Tq).
// A query row i of sample b sees key j when j < len (lengths[b], or Tk without
// lengths) and, causal >= 1, j <= i, and, causal = W > 1, j > i - W.
struct FlashArgs {
    const float *q, *k, *v;
    int ldq, ldk, ldo;
    const int *lengths;  // device (B) or NULL
    int B, Tq, Tk, NH, NKV, HS, causal;
    float scale;
};

// out and lse (+inf and a zero row where a row sees no key)
void flash_forward(const FlashArgs &a, float *out, float *lse);
// dq (laid out as q), dk, dv (as k, v): their heads' columns written, recomputing
// the probabilities from lse; dK / dV per key block, then dQ per query block
// (no atomics: every sum in a fixed order)
void flash_backward(const FlashArgs &a, const float *out, const float *lse, const float *dout, float *dq, float *dk,
                    float *dv);

#endif
