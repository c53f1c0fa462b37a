// LoRA adapters on the GPU, see lora.h: the products on cuBLAS, the dropout
// mask made by lora.c's hash (the same masks on either backend: a checkpoint
// resumed on the other one recomputes the same dropout).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/lora.h"
}

// lora.c's mask_bits: splitmix64 of (seed, stream, i / 4), 16 bits for each of elements i .. i + 3
__device__ static inline uint64_t mask_bits(uint64_t seed, uint64_t stream, size_t block) {
    uint64_t z = seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)block * 0xBF58476D1CE4E5B9ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// out[i] (+)= x[i] * mask_i / (1 - p): one thread per block of 4 elements
__global__ static void apply_mask(float *out, const float *x, size_t n, uint64_t seed, uint64_t stream,
                                  uint32_t threshold, float s, int acc) {
    GRID_STRIDE(b, (n + 3) / 4) {
        uint64_t z = mask_bits(seed, stream, b);
        for (size_t i = 4 * b, k = 0; i < n && k < 4; i++, k++) {
            float v = ((uint32_t)(z >> (16 * k)) & 0xFFFF) >= threshold ? x[i] * s : 0.0f;
            out[i] = acc ? out[i] + v : v;
        }
    }
}

static void mask(float *out, const float *x, size_t n, LoraDropout d, int acc) {
    uint32_t threshold = (uint32_t)((double)d.p * 65536.0 + 0.5);  // lora.c's threshold_of
    LAUNCH(apply_mask, (n + 3) / 4, out, x, n, d.seed, d.stream, threshold, 1.0f / (1.0f - d.p), acc);
}

// xd = dropout(x); x itself when there is none
static const float *dropped(const float *x, float *xd, size_t n, LoraDropout d) {
    if (d.p <= 0.0f) return x;
    mask(xd, x, n, d, 0);
    return xd;
}

void lora_forward(float *y, int ldy, const float *x, const float *A, const float *B, float *t, float *xd, int N, int in,
                  int out, int r, float scale, LoraDropout d) {
    const float *u = dropped(x, xd, (size_t)N * in, d);
    gemm_rm(false, true, N, r, in, 1.0f, u, in, A, in, 0.0f, t, r);
    gemm_rm(false, true, N, out, r, scale, t, r, B, r, 1.0f, y, ldy);
}

__global__ static void add_into(float *g, const float *w, size_t n) {
    GRID_STRIDE(i, n) g[i] += w[i];
}

void lora_backward(float *dx, float *dA, float *dB, const float *dy, int ldy, const float *x, const float *A,
                   const float *B, const float *t, float *dt, float *xd, float *w, int N, int in, int out, int r,
                   float scale, LoraDropout d) {
    // dB += scale dy^T t (formed in w, then added: gradients.h); dt = scale dy B
    if (dB) {
        gemm_rm(true, false, out, r, N, scale, dy, ldy, t, r, 0.0f, w, r);
        LAUNCH(add_into, (size_t)out * r, dB, w, (size_t)out * r);
    }
    gemm_rm(false, false, N, r, out, scale, dy, ldy, B, r, 0.0f, dt, r);
    // dA += dt^T dropout(x)
    const float *u = dropped(x, xd, (size_t)N * in, d);
    if (dA) {
        gemm_rm(true, false, r, in, N, 1.0f, dt, r, u, in, 0.0f, w, in);
        LAUNCH(add_into, (size_t)r * in, dA, w, (size_t)r * in);
    }
    if (!dx) return;
    if (d.p <= 0.0f) {  // dx += dt A
        gemm_rm(false, false, N, in, r, 1.0f, dt, r, A, in, 1.0f, dx, in);
        return;
    }
    // dx += (dt A) * the mask / (1 - p): the product into xd, then through the mask again
    gemm_rm(false, false, N, in, r, 1.0f, dt, r, A, in, 0.0f, xd, in);
    mask(dx, xd, (size_t)N * in, d, 1);
}

void lora_merge(float *W, const float *A, const float *B, int in, int out, int r, float scale) {
    gemm_rm(false, false, out, in, r, scale, B, r, A, in, 1.0f, W, in);
}
