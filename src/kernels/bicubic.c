// Bicubic resize as torch's CPU upsample_bicubic2d computes it, see bicubic.h:
// per output row / column a source index and four weights in float
// (HelperInterpCubic), then the 4 x 4 sum, rows outer: sum_i wy_i * (sum_j wx_j * v).
#include "kernels/bicubic.h"

#include <math.h>    // floorf
#include <stddef.h>  // size_t

#define A -0.75f  // torch's cubic coefficient

static float cubic1(float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; }           // |x| <= 1
static float cubic2(float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }      // 1 < |x| < 2

// Output i of n along an axis of `size` source points: the four source indices
// (clamped) and their weights.
static void axis_taps(int i, int size, int n, double scale, int idx[4], float w[4]) {
    // area_pixel_compute_scale: 1 / scale_factor (in double, then float), or size / n
    float s = scale > 0 ? (float)(1.0 / scale) : (float)size / (float)n;
    float real = s * ((float)i + 0.5f) - 0.5f;  // cubic: negative indices are kept
    int in = (int)floorf(real);
    if (in > size - 1) in = size - 1;
    float t = real - (float)in;
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    float u = 1.0f - t;  // get_cubic_upsample_coefficients' x2
    w[0] = cubic2(t + 1.0f), w[1] = cubic1(t), w[2] = cubic1(u), w[3] = cubic2(u + 1.0f);
    for (int j = 0; j < 4; j++) {
        int k = in - 1 + j;
        idx[j] = k < 0 ? 0 : k > size - 1 ? size - 1 : k;
    }
}

void bicubic_resize_forward(float *out, const float *inp, int H, int W, int C, int OH, int OW, double scale_h,
                            double scale_w) {
#pragma omp parallel for collapse(2)
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int iy[4], ix[4];
            float wy[4], wx[4];
            axis_taps(oy, H, OH, scale_h, iy, wy);
            axis_taps(ox, W, OW, scale_w, ix, wx);
            float *o = out + ((size_t)oy * OW + ox) * C;
            for (int c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int i = 0; i < 4; i++) {
                    const float *row = inp + (size_t)iy[i] * W * C + c;
                    float t = row[(size_t)ix[0] * C] * wx[0];
                    for (int j = 1; j < 4; j++) t += row[(size_t)ix[j] * C] * wx[j];
                    acc = i == 0 ? t * wy[0] : acc + t * wy[i];
                }
                o[c] = acc;
            }
        }
}
