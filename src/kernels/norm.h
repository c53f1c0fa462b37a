// LayerNorm (CLIP) and RMSNorm (LLaMA) over the last dimension, as PyTorch
// and HF transformers compute them in fp32. mean / rstd are saved per row
// for the backward pass. The backward ACCUMULATES into dinp (the residual
// stream, kernels/gradients.h) and into dweight / dbias.
#ifndef VLM_KERNELS_NORM_H
#define VLM_KERNELS_NORM_H

#include <stdint.h>

// out (N,C) = (inp - mean) * rstd * weight + bias; mean, rstd (N)
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C);

// out (N,C) = weight * inp * rstd, rstd = 1 / sqrt(mean(inp^2) + eps); rstd (N).
// which (N) or NULL: row n uses weight row which[n] of weight (rows, C), at
// most NORM_MAX_ROWS (mPLUG-Owl2's per-modality norms); dweight has as many rows.
#define NORM_MAX_ROWS 2
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, const uint8_t *which, int N, int C,
                     float eps);
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const uint8_t *which, const float *rstd, int N, int C);

#endif
