// Pointwise activations: quick_gelu (CLIP), erf GELU (the mlp2x_gelu
// projector, OLA-VLM's resampler), ReLU, SwiGLU (LLaMA's MLP). Backward functions write dinp (kernels/gradients.h).
#ifndef VLM_KERNELS_ACTIVATION_H
#define VLM_KERNELS_ACTIVATION_H

#include <stddef.h>

// out (n) = x * sigmoid(1.702 x)
void quick_gelu_forward(float *out, const float *inp, size_t n);
void quick_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// out (n) = 0.5 x (1 + erf(x / sqrt 2)), nn.GELU() / F.gelu
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// out (n) = max(x, 0), nn.ReLU (OLA-VLM's depth MLP); the backward passes where x > 0
void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
// out (N,I) = silu(gate) * up; gu (N,2I): each row gate (I) then up (I),
// as one product with the adjacent gate and up weights gives them
void swiglu_forward(float *out, const float *gu, int N, int I);
void swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int I);

#endif
