// Cross-entropy on the GPU, see crossentropy.h: one block per row, its max
// and its sum of exponentials (in double, as crossentropy.c) over the
// vocabulary in strides of the block, then the rows' losses summed in a fixed
// order by one block; the sum and the count come back to the host (the one
// synchronising step of the loss).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/crossentropy.h"
}

#define CE_THREADS 256

// loss (N): the row's loss, 0 for an ignored row; lse written for used rows only (as the CPU)
__global__ static void ce_rows(double *loss, float *lse, const float *logits, const int32_t *targets, int V) {
    __shared__ float fshared[32];
    __shared__ double dshared[32];
    int n = blockIdx.x, t = targets[n];
    if (t < 0) {  // the whole block leaves together
        if (threadIdx.x == 0) loss[n] = 0.0;
        return;
    }
    const float *x = logits + (size_t)n * V;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) m = fmaxf(m, x[i]);
    m = block_max(m, fshared);
    double s = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(x[i] - m);
    s = block_sum(s, dshared);
    if (threadIdx.x == 0) {
        double l = m + log(s);
        lse[n] = (float)l;
        loss[n] = l - x[t];
    }
}

// out[0] = the sum of loss (N), out[1] = the number of used rows: one block, a fixed order
__global__ static void ce_total(double *out, const double *loss, const int32_t *targets, int N) {
    __shared__ double shared[32];
    double s = 0.0, c = 0.0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        s += loss[n];
        c += targets[n] >= 0;
    }
    s = block_sum(s, shared);
    c = block_sum(c, shared);
    if (threadIdx.x == 0) out[0] = s, out[1] = c;
}

double crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, long *count, float *lse) {
    *count = 0;
    if (N <= 0) return 0.0;
    double *buf = (double *)cuda_scratch(SCRATCH_CE, sizeof(double) * ((size_t)N + 2)), *out = buf + N;
    ce_rows<<<N, CE_THREADS>>>(buf, lse, logits, targets, V);
    CUDA_LAUNCHED("ce_rows");
    ce_total<<<1, 1024>>>(out, buf, targets, N);
    CUDA_LAUNCHED("ce_total");
    double host[2];
    CUDA_CHECK(cudaMemcpy(host, out, sizeof host, cudaMemcpyDeviceToHost));
    *count = (long)host[1];
    return host[0];
}

// element-wise; in place when dlogits is logits (each thread reads its element, then writes it)
__global__ static void ce_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *lse, int N, int V,
                              float scale) {
    GRID_STRIDE(e, (size_t)N * V) {
        size_t n = e / V;
        int t = targets[n];
        if (t < 0) {
            dlogits[e] = 0.0f;
            continue;
        }
        float d = expf(logits[e] - lse[n]) * scale;
        if ((int)(e % V) == t) d -= scale;
        dlogits[e] = d;
    }
}

void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, const float *lse, int N, int V,
                           float scale) {
    LAUNCH(ce_bwd, (size_t)N * V, dlogits, logits, targets, lse, N, V, scale);
}
