// The optimizer's element-wise work on the GPU, see adamw.h. The update
// spells out each rounding (__fmul_rn and friends are never fused into an
// FMA) in adamw.c's order, so a GPU step gives the CPU's bits. The squared
// norms: each thread a strided serial sum in double, then a fixed tree
// (common.cuh), so no schedule changes a bit.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/adamw.h"
}

__device__ static inline void adamw_elem(float *p, const float *g, float *m, float *v, size_t i, const AdamWScalars &s) {
    float gi = g[i], pi = __fmul_rn(p[i], s.decay);
    float mi = __fadd_rn(m[i], __fmul_rn(s.w1, __fsub_rn(gi, m[i])));  // lerp with weight < 0.5
    float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.w2, gi), gi));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    p[i] = __fadd_rn(pi, __fmul_rn(-s.step_size, __fdiv_rn(mi, denom)));
    m[i] = mi, v[i] = vi;
}

__global__ static void adamw_one(float *p, const float *g, float *m, float *v, size_t n, AdamWScalars s) {
    GRID_STRIDE(i, n) adamw_elem(p, g, m, v, i, s);
}

void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, AdamWScalars s) {
    LAUNCH(adamw_one, n, p, g, m, v, n, s);
}

// blockIdx.y: the tensor (of this launch's part of the list); x: a grid stride over its elements
__global__ static void adamw_many(const AdamWTensor *t) {
    const AdamWTensor &x = t[blockIdx.y];
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < x.n; i += (size_t)gridDim.x * blockDim.x)
        adamw_elem(x.p, x.g, x.m, x.v, i, x.s);
}

void adamw_multi_kernel(const AdamWTensor *t, int n_tensors) {
    if (n_tensors <= 0) return;
    size_t most = 0;
    for (int i = 0; i < n_tensors; i++) most = t[i].n > most ? t[i].n : most;
    if (most == 0) return;
    // the list goes up once (the copy waits for earlier launches, which may still read the scratch)
    AdamWTensor *list = (AdamWTensor *)cuda_scratch(SCRATCH_ADAMW, sizeof(AdamWTensor) * (size_t)n_tensors);
    CUDA_CHECK(cudaMemcpy(list, t, sizeof(AdamWTensor) * (size_t)n_tensors, cudaMemcpyHostToDevice));
    size_t blocks = (most + 255) / 256;
    unsigned int gx = (unsigned int)(blocks < 1024 ? blocks : 1024);
    for (int first = 0; first < n_tensors; first += 65535) {  // gridDim.y's limit
        int count = n_tensors - first < 65535 ? n_tensors - first : 65535;
        adamw_many<<<dim3(gx, (unsigned int)count), 256>>>(list + first);
        CUDA_LAUNCHED("adamw_many");
    }
}

#define SUMSQ_THREADS 256

// sums[blockIdx.x] = the squared norm of the block's unit of x
__global__ static void sumsq_units(double *sums, const float *x, size_t n, size_t unit) {
    __shared__ double shared[32];
    size_t lo = (size_t)blockIdx.x * unit, hi = lo + unit < n ? lo + unit : n;
    double s = 0.0;
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) sums[blockIdx.x] = s;
}

double sumsq_kernel(const float *x, size_t n) {
    // called from several host threads at once (grad_unit_sumsq): each has its own result slot
    static thread_local double *result;
    if (!result) CUDA_CHECK(cudaMalloc(&result, sizeof(double)));
    double s = 0.0;
    if (n == 0) return s;
    sumsq_units<<<1, SUMSQ_THREADS>>>(result, x, n, n);
    CUDA_LAUNCHED("sumsq_units");
    CUDA_CHECK(cudaMemcpy(&s, result, sizeof(double), cudaMemcpyDeviceToHost));
    return s;
}

void sumsq_units_kernel(double *sums, const float *x, size_t n, size_t unit) {
    if (n == 0 || unit == 0) return;
    size_t units = (n + unit - 1) / unit;
    for (size_t first = 0; first < units; first += 65535u * 16) {  // gridDim.x's practical cap, in parts
        size_t count = units - first < 65535u * 16 ? units - first : 65535u * 16;
        sumsq_units<<<(unsigned int)count, SUMSQ_THREADS>>>(sums + first, x + first * unit, n - first * unit, unit);
        CUDA_LAUNCHED("sumsq_units");
    }
}
