// LoRA adapters, see lora.h. Shapes: x (N, in), A (r, in), B (out, r), t (N, r).
#include "kernels/lora.h"

#include <cblas.h>

// splitmix64 of (seed, stream, i / 4): 16 bits for each of elements i .. i + 3, an element kept
// when its bits are at least the threshold; the dropout mask, made alike by forward and backward
static inline uint64_t mask_bits(uint64_t seed, uint64_t stream, size_t block) {
    uint64_t z = seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)block * 0xBF58476D1CE4E5B9ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The mask's threshold: p of the 65536 16-bit values dropped (p rounded to 1 / 65536)
static uint32_t threshold_of(float p) { return (uint32_t)((double)p * 65536.0 + 0.5); }

// out[i] (+)= x[i] * mask_i / (1 - p) for i < n; acc: add into out, else write it
static void apply_mask(float *out, const float *x, size_t n, LoraDropout d, int acc) {
    uint32_t threshold = threshold_of(d.p);
    float s = 1.0f / (1.0f - d.p);
    size_t blocks = (n + 3) / 4;
#pragma omp parallel for if (n > 65536)
    for (size_t b = 0; b < blocks; b++) {
        uint64_t z = mask_bits(d.seed, d.stream, b);
        for (size_t i = 4 * b, k = 0; i < n && k < 4; i++, k++) {
            float v = ((uint32_t)(z >> (16 * k)) & 0xFFFF) >= threshold ? x[i] * s : 0.0f;
            out[i] = acc ? out[i] + v : v;
        }
    }
}

// xd = dropout(x); x itself when there is none
static const float *dropped(const float *x, float *xd, size_t n, LoraDropout d) {
    if (d.p <= 0.0f) return x;
    apply_mask(xd, x, n, d, 0);
    return xd;
}

void lora_forward(float *y, int ldy, const float *x, const float *A, const float *B, float *t, float *xd, int N, int in,
                  int out, int r, float scale, LoraDropout d) {
    const float *u = dropped(x, xd, (size_t)N * in, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, in, 1.0f, u, in, A, in, 0.0f, t, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, r, scale, t, r, B, r, 1.0f, y, ldy);
}

// g += the product formed in w (gradients.h: each call's contribution in full, then one add)
static void add_to(float *g, const float *w, size_t n) {
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) g[i] += w[i];
}

void lora_backward(float *dx, float *dA, float *dB, const float *dy, int ldy, const float *x, const float *A,
                   const float *B, const float *t, float *dt, float *xd, float *w, int N, int in, int out, int r,
                   float scale, LoraDropout d) {
    // dB += scale dy^T t; dt = scale dy B
    if (dB) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, r, N, scale, dy, ldy, t, r, 0.0f, w, r);
        add_to(dB, w, (size_t)out * r);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, out, scale, dy, ldy, B, r, 0.0f, dt, r);
    // dA += dt^T dropout(x)
    const float *u = dropped(x, xd, (size_t)N * in, d);
    if (dA) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, N, 1.0f, dt, r, u, in, 0.0f, w, in);
        add_to(dA, w, (size_t)r * in);
    }
    if (!dx) return;
    if (d.p <= 0.0f) {  // dx += dt A
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, r, 1.0f, dt, r, A, in, 1.0f, dx, in);
        return;
    }
    // dx += (dt A) * the mask / (1 - p): the product into xd, then through the mask again
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, r, 1.0f, dt, r, A, in, 0.0f, xd, in);
    apply_mask(dx, xd, (size_t)N * in, d, 1);
}

void lora_merge(float *W, const float *A, const float *B, int in, int out, int r, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, r, scale, B, r, A, in, 1.0f, W, in);
}
