// Bilinear resizing, see interpolate.h: PyTorch's upsample_bilinear2d (CPU):
// area_pixel_compute_source_index, then h0l * (w0l * x00 + w1l * x01) +
// h1l * (w0l * x10 + w1l * x11), in float.
#include "kernels/interpolate.h"

#include <stddef.h>  // size_t

// One axis' source taps of output o: i0, i1 (= i0 or i0 + 1) with weights l0, l1.
static inline void taps(int o, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out, src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = src - (float)i;
    *l0 = 1.0f - *l1;
}

void bilinear_resize_forward(float *out, const float *inp, int N, int H, int W, int OH, int OW) {
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1;
            float h0, h1;
            taps(oy, H, OH, &y0, &y1, &h0, &h1);
            const float *r0 = inp + ((size_t)n * H + y0) * W, *r1 = inp + ((size_t)n * H + y1) * W;
            float *o = out + ((size_t)n * OH + oy) * OW;
            for (int ox = 0; ox < OW; ox++) {
                int x0, x1;
                float w0, w1;
                taps(ox, W, OW, &x0, &x1, &w0, &w1);
                o[ox] = h0 * (w0 * r0[x0] + w1 * r0[x1]) + h1 * (w0 * r1[x0] + w1 * r1[x1]);
            }
        }
}
