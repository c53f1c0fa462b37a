// AdamW and gradient clipping, see adamw.h.
#include "train/adamw.h"

#include <math.h>    // sqrt, pow
#include <stdlib.h>  // free

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/adamw.h"
#include "kernels/residual.h"

int adamw_init(AdamW *o, size_t n, AdamWConfig cfg) {
    o->cfg = cfg;
    o->n = n;
    o->step = 0;
    o->m = vlm_calloc(n ? n : 1, sizeof(float));
    o->v = vlm_calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return VLM_ERR_FAIL;
    }
    return VLM_OK;
}

void adamw_free(AdamW *o) {
    free(o->m), free(o->v);
    o->m = o->v = NULL;
}

void adamw_begin_step(AdamW *o) { o->step++; }

void adamw_update(AdamW *o, float *params, const float *grads, size_t offset, size_t n, double lr, double wd) {
    adamw_update_packed(o, params + offset, grads + offset, offset, n, lr, wd, o->step);
}

void adamw_update_packed(AdamW *o, float *p, const float *g, size_t moment_offset, size_t n, double lr, double wd,
                         long step) {
    const AdamWConfig *c = &o->cfg;
    // the scalars in double, as Python computes them, then used as float32 operands;
    // torch casts each Python scalar to float32 once: 1 - beta is formed in double first
    double bc1 = 1.0 - pow(c->beta1, (double)step), bc2 = 1.0 - pow(c->beta2, (double)step);
    AdamWScalars s = {.decay = (float)(1.0 - lr * wd), .w1 = (float)(1.0 - c->beta1), .beta2 = (float)c->beta2,
                      .w2 = (float)(1.0 - c->beta2), .bc2_sqrt = (float)sqrt(bc2), .eps = (float)c->eps,
                      .step_size = (float)(lr / bc1)};
    adamw_kernel(p, g, o->m + moment_offset, o->v + moment_offset, n, s);
}

size_t grad_unit_count(const size_t *ranges, int n_ranges) {
    size_t n = 0;
    for (int r = 0; r < n_ranges; r++) n += (ranges[2 * r + 1] + GRAD_UNIT - 1) / GRAD_UNIT;
    return n;
}

void grad_unit_sumsq(const float *grads, const size_t *ranges, int n_ranges, size_t lo, size_t hi, double *out) {
    size_t first = 0;  // the range's first unit
    for (int r = 0; r < n_ranges && first < hi; r++) {
        size_t cnt = ranges[2 * r + 1], units = (cnt + GRAD_UNIT - 1) / GRAD_UNIT;
        const float *g = grads + ranges[2 * r];
        size_t a = lo > first ? lo - first : 0, b = hi - first < units ? hi - first : units;
        // units in parallel, each one serially: no thread count changes a bit
#pragma omp parallel for schedule(static) if (b - a > 1)
        for (size_t k = a; k < b; k++) {
            size_t len = cnt - k * GRAD_UNIT < GRAD_UNIT ? cnt - k * GRAD_UNIT : GRAD_UNIT;
            out[first + k] = sumsq_kernel(g + k * GRAD_UNIT, len);
        }
        first += units;
    }
}

double grad_units_norm(const double *sums, size_t n_units) {
    double total = 0.0;
    for (size_t u = 0; u < n_units; u++) total += sums[u];
    return sqrt(total);
}

double grad_global_norm(const float *grads, const size_t *ranges, int n_ranges) {
    size_t n = grad_unit_count(ranges, n_ranges);
    double *sums = vlm_malloc(sizeof(double) * (n ? n : 1));
    if (!sums) return NAN;  // the caller reports a non-finite norm and updates nothing
    grad_unit_sumsq(grads, ranges, n_ranges, 0, n, sums);
    double norm = grad_units_norm(sums, n);
    free(sums);
    return norm;
}

void grad_clip_with_norm(float *grads, const size_t *ranges, int n_ranges, double norm, double max_norm) {
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;  // torch multiplies by the clamped 1.0: no change
    float c = (float)coef;
    for (int r = 0; r < n_ranges; r++) {
        float *g = grads + ranges[2 * r];
        scale_forward(g, g, c, ranges[2 * r + 1]);
    }
}

double grad_clip(float *grads, const size_t *ranges, int n_ranges, double max_norm) {
    double norm = grad_global_norm(grads, ranges, n_ranges);
    grad_clip_with_norm(grads, ranges, n_ranges, norm, max_norm);
    return norm;
}
