// Bilinear resizing on the GPU, see interpolate.h: one thread per output
// element, interpolate.c's taps and sums in its float order, every product and
// sum rounded on its own (__fmul_rn / __fadd_rn: no FMA contraction), so the
// CPU's bits.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/interpolate.h"
}

// interpolate.c's taps
__device__ static inline void bilinear_taps(int o, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = __fdiv_rn((float)in, (float)out), src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)o, 0.5f)), 0.5f);
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = __fsub_rn(src, (float)i);
    *l0 = __fsub_rn(1.0f, *l1);
}

__global__ static void bilinear_kernel(float *out, const float *inp, int N, int H, int W, int OH, int OW) {
    GRID_STRIDE(e, (size_t)N * OH * OW) {
        int ox = (int)(e % OW), oy = (int)(e / OW % OH);
        size_t n = e / ((size_t)OW * OH);
        int y0, y1, x0, x1;
        float h0, h1, w0, w1;
        bilinear_taps(oy, H, OH, &y0, &y1, &h0, &h1);
        bilinear_taps(ox, W, OW, &x0, &x1, &w0, &w1);
        const float *r0 = inp + (n * H + y0) * W, *r1 = inp + (n * H + y1) * W;
        float a = __fadd_rn(__fmul_rn(w0, r0[x0]), __fmul_rn(w1, r0[x1]));
        float b = __fadd_rn(__fmul_rn(w0, r1[x0]), __fmul_rn(w1, r1[x1]));
        out[e] = __fadd_rn(__fmul_rn(h0, a), __fmul_rn(h1, b));
    }
}

void bilinear_resize_forward(float *out, const float *inp, int N, int H, int W, int OH, int OW) {
    LAUNCH(bilinear_kernel, (size_t)N * OH * OW, out, inp, N, H, W, OH, OW);
}
