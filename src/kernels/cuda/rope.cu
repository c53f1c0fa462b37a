// Rotary embeddings on the GPU, see rope.h. The tables are made once, on the
// host with rope.c's arithmetic (glibc's powf, cosf, sinf: the CPU build's
// bits), then copied where the caller's pointers are (cudaMemcpyDefault: the
// device, or host memory for a table that is saved to a file); the rotation
// spells out rope.c's roundings (no FMA), so it gives the CPU's bits too.
#include <math.h>
#include <stdlib.h>

#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/rope.h"
}

// rope.c's rope_inv_freq into host memory (the same code: keep the two alike)
static void inv_freq_host(float *inv_freq, int HS, const RopeConfig *cfg) {
    for (int i = 0; i < HS / 2; i++) {
        float f = 1.0f / powf(cfg->theta, (float)(2 * i) / (float)HS);
        if (cfg->factor > 0) {
            float low_wavelen = (float)((double)cfg->original_max_position / cfg->low_freq_factor);
            float high_wavelen = (float)((double)cfg->original_max_position / cfg->high_freq_factor);
            float wavelen = (1.0f / f) * (float)(2 * M_PI);
            if (wavelen > low_wavelen) {
                f = f / cfg->factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = ((1.0f / wavelen) * (float)cfg->original_max_position - cfg->low_freq_factor) /
                               (float)((double)cfg->high_freq_factor - cfg->low_freq_factor);
                f = (1.0f - smooth) * f / cfg->factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

static void *host_buffer(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) cuda_fail("malloc", __FILE__, __LINE__, "out of host memory for the rope tables");
    return p;
}

void rope_inv_freq(float *inv_freq, int HS, const RopeConfig *cfg) {
    size_t bytes = sizeof(float) * (size_t)(HS / 2);
    float *h = (float *)host_buffer(bytes);
    inv_freq_host(h, HS, cfg);
    if (bytes) CUDA_CHECK(cudaMemcpy(inv_freq, h, bytes, cudaMemcpyDefault));
    free(h);
}

void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int HS) {
    int half = HS / 2;
    size_t n = (size_t)T * half;
    float *f = (float *)host_buffer(sizeof(float) * half), *c = (float *)host_buffer(sizeof(float) * n),
          *s = (float *)host_buffer(sizeof(float) * n);
    if (half) CUDA_CHECK(cudaMemcpy(f, inv_freq, sizeof(float) * half, cudaMemcpyDefault));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float angle = (float)t * f[i];
            c[(size_t)t * half + i] = cosf(angle);
            s[(size_t)t * half + i] = sinf(angle);
        }
    if (n) {
        CUDA_CHECK(cudaMemcpy(cos_t, c, sizeof(float) * n, cudaMemcpyDefault));
        CUDA_CHECK(cudaMemcpy(sin_t, s, sizeof(float) * n, cudaMemcpyDefault));
    }
    free(f), free(c), free(s);
}

// one thread per (row, head, pair): rotate (x[i], x[i + half]) by +angle (sign 1) or -angle (sign -1)
__global__ static void rotate(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld,
                              float sign) {
    int half = HS / 2;
    GRID_STRIDE(e, (size_t)B * T * NH * half) {
        size_t row = e / ((size_t)NH * half);  // b * T + t
        int h = (int)(e / half % NH), i = (int)(e % half), t = (int)(row % T);
        float *v = x + row * ld + (size_t)h * HS;
        float c = cos_t[(size_t)t * half + i], si = sign * sin_t[(size_t)t * half + i];
        float x1 = v[i], x2 = v[i + half];
        v[i] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, si));
        v[i + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, si));
    }
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld) {
    LAUNCH(rotate, (size_t)B * T * NH * (HS / 2), x, cos_t, sin_t, B, T, NH, HS, ld, 1.0f);
}

void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld) {
    LAUNCH(rotate, (size_t)B * T * NH * (HS / 2), dx, cos_t, sin_t, B, T, NH, HS, ld, -1.0f);
}
