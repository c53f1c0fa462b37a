// The optimizer's element-wise work: the AdamW update and the squared norm of
// global-norm gradient clipping (its scaling is residual.h's scale_forward). The
// host (train/adamw.c) forms every scalar in double, as Python does, and
// hands the kernels float32 operands, as torch does; the kernels only loop.
#ifndef VLM_KERNELS_ADAMW_H
#define VLM_KERNELS_ADAMW_H

#include <stddef.h>

// One step's float32 operands, as torch.optim.AdamW's single-tensor path holds them.
typedef struct {
    float decay;      // 1 - lr * wd
    float w1;         // 1 - beta1 (the lerp weight)
    float beta2;
    float w2;         // 1 - beta2
    float bc2_sqrt;   // sqrt(1 - beta2^t)
    float eps;
    float step_size;  // lr / (1 - beta1^t)
} AdamWScalars;

// p, g, m, v (n): p *= decay; m = lerp(m, g, w1); v = beta2 v + w2 g^2;
// p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, AdamWScalars s);

// One tensor of a group: its parameters, gradient and moments (n each) and its
// step's scalars (ranges of one group differ in step when some had no gradient).
typedef struct {
    float *p;
    const float *g;
    float *m, *v;
    size_t n;
    AdamWScalars s;
} AdamWTensor;
// adamw_kernel on each of the n_tensors tensors (t: host memory): one launch
// for a whole group on a GPU (multi-tensor apply), the same results.
void adamw_multi_kernel(const AdamWTensor *t, int n_tensors);

// sum over x (n) of x^2, accumulated in double serially, in order (callers
// parallelise over blocks: grad_unit_sumsq), so no thread count changes a bit
double sumsq_kernel(const float *x, size_t n);
// sums (ceil(n / unit), device memory) = sumsq_kernel of each unit-long block of x
// (the last one shorter): a range's gradient-norm units in one call, the sums
// staying on the device until the step reads them all at once
void sumsq_units_kernel(double *sums, const float *x, size_t n, size_t unit);

#endif
