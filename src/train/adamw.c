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

double grad_global_norm(const float *grads, const size_t *ranges, int n_ranges) {
    double total = 0.0;
    for (int r = 0; r < n_ranges; r++) total += sumsq_kernel(grads + ranges[2 * r], ranges[2 * r + 1]);
    return sqrt(total);
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
