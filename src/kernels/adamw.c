// The optimizer's element-wise loops, see adamw.h.
#include "kernels/adamw.h"

#include <math.h>  // sqrtf

void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, AdamWScalars s) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        p[i] *= s.decay;
        m[i] = m[i] + s.w1 * (g[i] - m[i]);  // lerp with weight < 0.5
        v[i] = v[i] * s.beta2 + s.w2 * g[i] * g[i];
        float denom = sqrtf(v[i]) / s.bc2_sqrt + s.eps;
        p[i] += -s.step_size * (m[i] / denom);
    }
}

double sumsq_kernel(const float *x, size_t n) {
    double s = 0.0;  // serially: callers parallelise over blocks (grad_unit_sumsq), so no thread count changes a bit
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
