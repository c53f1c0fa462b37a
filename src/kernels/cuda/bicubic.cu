// Bicubic resizing on the GPU, see bicubic.h: one thread per output element,
// bicubic.c's taps (Keys's cubic with A = -0.75) and 4 x 4 sum in its float
// order, every product and sum rounded on its own (__fmul_rn / __fadd_rn: no
// FMA contraction), so the CPU's bits.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/bicubic.h"
}

#define A -0.75f

// ((A + 2) x - (A + 3)) x x + 1, |x| <= 1
__device__ static inline float cubic1(float x) {
    return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(__fmul_rn(A + 2, x), A + 3), x), x), 1.0f);
}
// ((A x - 5 A) x + 8 A) x - 4 A, 1 < |x| < 2
__device__ static inline float cubic2(float x) {
    return __fsub_rn(__fmul_rn(__fadd_rn(__fmul_rn(__fsub_rn(__fmul_rn(A, x), 5 * A), x), 8 * A), x), 4 * A);
}

__device__ static void axis_taps(int i, int size, int n, double scale, int idx[4], float w[4]) {
    float s = scale > 0 ? (float)(1.0 / scale) : __fdiv_rn((float)size, (float)n);
    float real = __fsub_rn(__fmul_rn(s, __fadd_rn((float)i, 0.5f)), 0.5f);
    int in = (int)floorf(real);
    if (in > size - 1) in = size - 1;
    float t = __fsub_rn(real, (float)in);
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    float u = __fsub_rn(1.0f, t);
    w[0] = cubic2(__fadd_rn(t, 1.0f)), w[1] = cubic1(t), w[2] = cubic1(u), w[3] = cubic2(__fadd_rn(u, 1.0f));
    for (int j = 0; j < 4; j++) {
        int k = in - 1 + j;
        idx[j] = k < 0 ? 0 : k > size - 1 ? size - 1 : k;
    }
}

__global__ static void bicubic_kernel(float *out, const float *inp, int H, int W, int C, int OH, int OW, double scale_h,
                                      double scale_w) {
    GRID_STRIDE(e, (size_t)OH * OW * C) {
        int c = (int)(e % C), ox = (int)(e / C % OW), oy = (int)(e / ((size_t)C * OW));
        int iy[4], ix[4];
        float wy[4], wx[4];
        axis_taps(oy, H, OH, scale_h, iy, wy);
        axis_taps(ox, W, OW, scale_w, ix, wx);
        float acc = 0.0f;
        for (int i = 0; i < 4; i++) {
            const float *row = inp + (size_t)iy[i] * W * C + c;
            float t = __fmul_rn(row[(size_t)ix[0] * C], wx[0]);
            for (int j = 1; j < 4; j++) t = __fadd_rn(t, __fmul_rn(row[(size_t)ix[j] * C], wx[j]));
            acc = i == 0 ? __fmul_rn(t, wy[0]) : __fadd_rn(acc, __fmul_rn(t, wy[i]));
        }
        out[e] = acc;
    }
}

void bicubic_resize_forward(float *out, const float *inp, int H, int W, int C, int OH, int OW, double scale_h,
                            double scale_w) {
    LAUNCH(bicubic_kernel, (size_t)OH * OW * C, out, inp, H, W, C, OH, OW, scale_h, scale_w);
}
