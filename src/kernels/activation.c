// Activations, see activation.h. Computed in double where the formula has
// a transcendental, rounded once to float: within an ulp of PyTorch's.
#include "kernels/activation.h"

#include <math.h>  // exp, erf

static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

void quick_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = (float)(inp[i] * sigmoid(1.702 * inp[i]));
}

void quick_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double x = inp[i], s = sigmoid(1.702 * x);
        dinp[i] += (float)(dout[i] * (s + 1.702 * x * s * (1.0 - s)));
    }
}

void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = (float)(0.5 * inp[i] * (1.0 + erf(inp[i] * M_SQRT1_2)));
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    const double inv_sqrt_2pi = 0.3989422804014327;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2)), pdf = inv_sqrt_2pi * exp(-0.5 * x * x);
        dinp[i] += (float)(dout[i] * (cdf + x * pdf));
    }
}

void swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = (float)(gate[i] * sigmoid(gate[i])) * up[i];
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], s = sigmoid(g), silu = g * s;
        if (dgate) dgate[i] += (float)(dout[i] * up[i] * (s + g * s * (1.0 - s)));
        if (dup) dup[i] += (float)(dout[i] * silu);
    }
}
