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

void adamw_multi_kernel(const AdamWTensor *t, int n_tensors) {
    for (int i = 0; i < n_tensors; i++) adamw_kernel(t[i].p, t[i].g, t[i].m, t[i].v, t[i].n, t[i].s);
}

void sumsq_units_kernel(double *sums, const float *x, size_t n, size_t unit) {
    size_t units = (n + unit - 1) / unit;
#pragma omp parallel for schedule(static) if (units > 1)
    for (size_t k = 0; k < units; k++) sums[k] = sumsq_kernel(x + k * unit, n - k * unit < unit ? n - k * unit : unit);
}
