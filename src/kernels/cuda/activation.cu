// Activations on the GPU, see activation.h: one thread per element, the same
// float formulas as activation.c (expf, erff: CUDA's are within 2 ulp).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/activation.h"
}

__device__ static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ static void quick_gelu_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] * sigmoidf(1.702f * inp[i]);
}
__global__ static void quick_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i], s = sigmoidf(1.702f * x);
        dinp[i] = dout[i] * (s + 1.702f * x * s * (1.0f - s));
    }
}
__global__ static void gelu_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * 0.70710678118654752f));
}
__global__ static void gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
    GRID_STRIDE(i, n) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f)), pdf = inv_sqrt_2pi * expf(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}
__global__ static void relu_fwd(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
__global__ static void relu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    GRID_STRIDE(i, n) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}
// element i of out (N, I): row i / I, column i % I
__global__ static void swiglu_fwd(float *out, const float *gu, int N, int I) {
    GRID_STRIDE(e, (size_t)N * I) {
        size_t n = e / I, i = e % I;
        float g = gu[n * 2 * I + i], u = gu[n * 2 * I + I + i];
        out[e] = g * sigmoidf(g) * u;
    }
}
__global__ static void swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int I) {
    GRID_STRIDE(e, (size_t)N * I) {
        size_t n = e / I, i = e % I;
        float g = gu[n * 2 * I + i], u = gu[n * 2 * I + I + i], d = dout[e], s = sigmoidf(g);
        dgu[n * 2 * I + i] = d * u * (s + g * s * (1.0f - s));
        dgu[n * 2 * I + I + i] = d * g * s;
    }
}

void quick_gelu_forward(float *out, const float *inp, size_t n) { LAUNCH(quick_gelu_fwd, n, out, inp, n); }
void quick_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    LAUNCH(quick_gelu_bwd, n, dinp, dout, inp, n);
}
void gelu_forward(float *out, const float *inp, size_t n) { LAUNCH(gelu_fwd, n, out, inp, n); }
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) { LAUNCH(gelu_bwd, n, dinp, dout, inp, n); }
void relu_forward(float *out, const float *inp, size_t n) { LAUNCH(relu_fwd, n, out, inp, n); }
void relu_backward(float *dinp, const float *dout, const float *inp, size_t n) { LAUNCH(relu_bwd, n, dinp, dout, inp, n); }
void swiglu_forward(float *out, const float *gu, int N, int I) { LAUNCH(swiglu_fwd, (size_t)N * I, out, gu, N, I); }
void swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int I) {
    LAUNCH(swiglu_bwd, (size_t)N * I, dgu, dout, gu, N, I);
}
