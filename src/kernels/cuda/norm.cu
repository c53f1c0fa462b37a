// Normalisation layers on the GPU, see norm.h: one block per row (the row's
// sums a fixed tree, common.cuh), the parameter gradients as two-pass column
// sums, both in a fixed order whatever the schedule.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/norm.h"
}

#define NORM_THREADS 256

__global__ static void layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                     const float *bias, int C, float eps) {
    __shared__ float shared[32];
    const float *x = inp + (size_t)blockIdx.x * C;
    float s = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) s += x[i];
    float m = block_sum(s, shared) / C;
    float v = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) v += (x[i] - m) * (x[i] - m);
    v = block_sum(v, shared) / C;  // biased, as PyTorch
    float r = 1.0f / sqrtf(v + eps);
    float *o = out + (size_t)blockIdx.x * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = (x[i] - m) * r * weight[i] + (bias ? bias[i] : 0.0f);
    if (threadIdx.x == 0) mean[blockIdx.x] = m, rstd[blockIdx.x] = r;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps) {
    if (N <= 0) return;
    layernorm_fwd<<<N, NORM_THREADS>>>(out, mean, rstd, inp, weight, bias, C, eps);
    CUDA_LAUNCHED("layernorm_fwd");
}

struct LnWeightTerm {  // dout * normalised input
    const float *d, *x, *mean, *rstd;
    int C;
    __device__ float operator()(int n, int c) const {
        size_t e = (size_t)n * C + c;
        return d[e] * (x[e] - mean[n]) * rstd[n];
    }
};
struct RowElem {
    const float *d;
    int C;
    __device__ float operator()(int n, int c) const { return d[(size_t)n * C + c]; }
};

__global__ static void layernorm_bwd_inp(float *dinp, const float *dout, const float *inp, const float *weight,
                                         const float *mean, const float *rstd, int C) {
    __shared__ float shared[32];
    size_t row = (size_t)blockIdx.x * C;
    const float *d = dout + row, *x = inp + row;
    float m = mean[blockIdx.x], s = rstd[blockIdx.x], a = 0.0f, b = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float dnorm = d[i] * weight[i];
        a += dnorm;
        b += dnorm * (x[i] - m) * s;
    }
    float dnorm_mean = block_sum(a, shared) / C, dnorm_norm_mean = block_sum(b, shared) / C;
    float *dx = dinp + row;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float norm = (x[i] - m) * s, dnorm = d[i] * weight[i];
        dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C) {
    if (dweight) column_sums(dweight, LnWeightTerm{dout, inp, mean, rstd, C}, N, C, 1);
    if (dbias) column_sums(dbias, RowElem{dout, C}, N, C, 1);
    if (!dinp || N <= 0) return;
    layernorm_bwd_inp<<<N, NORM_THREADS>>>(dinp, dout, inp, weight, mean, rstd, C);
    CUDA_LAUNCHED("layernorm_bwd_inp");
}

__global__ static void rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *weight, const uint8_t *which,
                                   int C, float eps) {
    __shared__ float shared[32];
    const float *x = inp + (size_t)blockIdx.x * C, *w = weight + (which ? (size_t)which[blockIdx.x] * C : 0);
    float ss = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += x[i] * x[i];
    float s = 1.0f / sqrtf(block_sum(ss, shared) / C + eps);
    float *o = out + (size_t)blockIdx.x * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = w[i] * (x[i] * s);
    if (threadIdx.x == 0) rstd[blockIdx.x] = s;
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, const uint8_t *which, int N, int C,
                     float eps) {
    if (N <= 0) return;
    rmsnorm_fwd<<<N, NORM_THREADS>>>(out, rstd, inp, weight, which, C, eps);
    CUDA_LAUNCHED("rmsnorm_fwd");
}

struct RmsWeightTerm {  // dout * x * rstd of the rows that use weight row r
    const float *d, *x, *rstd;
    const uint8_t *which;
    int C, r;
    __device__ float operator()(int n, int c) const {
        if (which && which[n] != r) return 0.0f;
        size_t e = (size_t)n * C + c;
        return d[e] * x[e] * rstd[n];
    }
};

__global__ static void rmsnorm_bwd_inp(float *dinp, const float *dout, const float *inp, const float *weight,
                                       const uint8_t *which, const float *rstd, int C) {
    __shared__ float shared[32];
    size_t row = (size_t)blockIdx.x * C;
    const float *d = dout + row, *x = inp + row, *w = weight + (which ? (size_t)which[blockIdx.x] * C : 0);
    float s = rstd[blockIdx.x], dot = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dot += d[i] * w[i] * x[i];
    dot = block_sum(dot, shared) / C;
    float *dx = dinp + row;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dx[i] += s * (d[i] * w[i]) - x[i] * s * s * s * dot;
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const uint8_t *which, const float *rstd, int N, int C) {
    if (dweight)
        for (int r = 0; r < (which ? NORM_MAX_ROWS : 1); r++)
            column_sums(dweight + (size_t)r * C, RmsWeightTerm{dout, inp, rstd, which, C, r}, N, C, 1);
    if (!dinp || N <= 0) return;
    rmsnorm_bwd_inp<<<N, NORM_THREADS>>>(dinp, dout, inp, weight, which, rstd, C);
    CUDA_LAUNCHED("rmsnorm_bwd_inp");
}
