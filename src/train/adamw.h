// AdamW exactly as torch.optim.AdamW's single-tensor (CPU default) path
// computes it in float32:
//   p *= 1 - lr * wd;  m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// and global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
#ifndef VLM_TRAIN_ADAMW_H
#define VLM_TRAIN_ADAMW_H

#include <stddef.h>

typedef struct {
    double beta1, beta2, eps;  // Python floats, as torch receives them
} AdamWConfig;

typedef struct {
    AdamWConfig cfg;
    float *m, *v;   // first and second moments, one per parameter
    size_t n;
    long step;      // steps taken
} AdamW;

int adamw_init(AdamW *o, size_t n, AdamWConfig cfg);
void adamw_free(AdamW *o);
// Starts step t (call once per optimisation step, before the updates).
void adamw_begin_step(AdamW *o);
// Updates params[offset .. offset + n) with its gradients at learning rate
// lr and weight decay wd (per tensor: HF Trainer exempts biases and norms).
// lr and wd are Python floats (double), as torch receives them.
void adamw_update(AdamW *o, float *params, const float *grads, size_t offset, size_t n, double lr, double wd);
// The same for n parameters p[0..n) with gradients g whose moments are
// o->m / o->v + moment_offset (an optimizer that keeps moments only for the
// tensors it trains), at the tensor's own step count (torch keeps one per
// parameter: a tensor skipped in a step, its grad None, lags behind).
void adamw_update_packed(AdamW *o, float *p, const float *g, size_t moment_offset, size_t n, double lr, double wd,
                         long step);

// The gradient norm in units: every range cut into blocks of GRAD_UNIT floats
// from its start, each block's sum of squares taken serially in double, the
// blocks' sums added in order. The result is a function of the values alone:
// the same for any thread count, and for any sharding of the ranges into
// whole units over ranks (ZeRO), so every world size computes the same norm.
enum { GRAD_UNIT = 1 << 16 };
size_t grad_unit_count(const size_t *ranges, int n_ranges);
// out[u] for the units u in [lo, hi) (out: grad_unit_count entries).
void grad_unit_sumsq(const float *grads, const size_t *ranges, int n_ranges, size_t lo, size_t hi, double *out);
// sqrt of out[0] + out[1] + ... in order.
double grad_units_norm(const double *sums, size_t n_units);
// The 2-norm of every gradient range together (ranges: pairs offset, count), by units.
double grad_global_norm(const float *grads, const size_t *ranges, int n_ranges);
// clip_grad_norm_: scales the ranges by min(1, max_norm / (norm + 1e-6)); returns norm.
double grad_clip(float *grads, const size_t *ranges, int n_ranges, double max_norm);
// The same scaling for a norm already computed.
void grad_clip_with_norm(float *grads, const size_t *ranges, int n_ranges, double norm, double max_norm);

#endif
