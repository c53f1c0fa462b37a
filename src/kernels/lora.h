// PEFT's LoRA on a linear layer y = x W^T (W (out, in) frozen):
//   y += scale * dropout(x) A^T B^T,   A (r, in), B (out, r), scale = alpha / r
// as peft.tuners.lora.Linear computes it (lora_B(lora_A(dropout(x))) * scaling).
// y may be a column block of a wider product (ldy: its row stride), so the
// fused q|k|v and gate|up products take one adapter per original module.
//
// Dropout (p > 0, training): each element of x is kept with probability
// 1 - p and scaled by 1 / (1 - p); the mask is a function of (seed, stream,
// element index), so the backward (and a recomputing forward) makes the same
// mask again instead of storing it. Each adapter has its own stream, as each
// PEFT adapter has its own nn.Dropout. (Not torch's generator: the same
// distribution, other draws.)
//
// Gradients as kernels/gradients.h: dA, dB accumulate (formed in full, then
// added), dx accumulates (the adapter is the layer's second reader of x).
#ifndef VLM_KERNELS_LORA_H
#define VLM_KERNELS_LORA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float p;                // 0: none
    uint64_t seed, stream;  // the mask's: stream names the adapter and the forward
} LoraDropout;

// t (N, r): dropout(x) A^T, kept for the backward. xd: (N, in) scratch, used when p > 0.
void lora_forward(float *y, int ldy, const float *x, const float *A, const float *B, float *t, float *xd, int N, int in,
                  int out, int r, float scale, LoraDropout d);
// dy (N, out) at stride ldy. dt (N, r), xd (N, in) and w (max(r * in, out * r)) scratch; dx may be NULL.
void lora_backward(float *dx, float *dA, float *dB, const float *dy, int ldy, const float *x, const float *A,
                   const float *B, const float *t, float *dt, float *xd, float *w, int N, int in, int out, int r,
                   float scale, LoraDropout d);
// W += scale * B A (merging the adapter into its frozen weight, PEFT's merge_and_unload).
void lora_merge(float *W, const float *A, const float *B, int in, int out, int r, float scale);

#endif
