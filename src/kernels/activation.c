// Activations, see activation.h. In float like PyTorch's CPU kernels (expf,
// erff: within a few ulp of them); the derivatives reuse the sigmoid.
#include "kernels/activation.h"

#include <math.h>  // expf, erff

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void quick_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * sigmoidf(1.702f * inp[i]);
}

void quick_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], s = sigmoidf(1.702f * x);
        dinp[i] = dout[i] * (s + 1.702f * x * s * (1.0f - s));
    }
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * (float)M_SQRT1_2));
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)), pdf = inv_sqrt_2pi * expf(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

void relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++)
        dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}

void swiglu_forward(float *out, const float *gu, int N, int I) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *gate = gu + (size_t)n * 2 * I, *up = gate + I;
        float *o = out + (size_t)n * I;
        for (int i = 0; i < I; i++) o[i] = gate[i] * sigmoidf(gate[i]) * up[i];
    }
}

void swiglu_backward(float *dgu, const float *dout, const float *gu, int N, int I) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *gate = gu + (size_t)n * 2 * I, *up = gate + I, *d = dout + (size_t)n * I;
        float *dgate = dgu + (size_t)n * 2 * I, *dup = dgate + I;
        for (int i = 0; i < I; i++) {
            float g = gate[i], s = sigmoidf(g);
            dgate[i] = d[i] * up[i] * (s + g * s * (1.0f - s));
            dup[i] = d[i] * g * s;
        }
    }
}
