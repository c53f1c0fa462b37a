// Space-to-depth patches of channels-last maps, see space_to_depth.h.
#include "kernels/space_to_depth.h"

#include <stddef.h>  // size_t

// backward 0: cols = gather(inp); 1: dinp = scatter(dcols) (the same index pairs)
static void move(float *cols, float *map, int N, int H, int W, int C, int P, int backward) {
    int OH = H / P, OW = W / P;
    size_t K = (size_t)C * P * P;
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float *col = cols + (((size_t)n * OH + oy) * OW + ox) * K;
                for (int ky = 0; ky < P; ky++)
                    for (int kx = 0; kx < P; kx++) {
                        float *m = map + (((size_t)n * H + oy * P + ky) * W + ox * P + kx) * C;
                        for (int c = 0; c < C; c++) {
                            float *e = col + ((size_t)c * P + ky) * P + kx;
                            if (backward) m[c] = *e;
                            else *e = m[c];
                        }
                    }
            }
}

void space_to_depth_forward(float *cols, const float *inp, int N, int H, int W, int C, int P) {
    move(cols, (float *)inp, N, H, W, C, P, 0);  // inp is only read
}

void space_to_depth_backward(float *dinp, const float *dcols, int N, int H, int W, int C, int P) {
    move((float *)dcols, dinp, N, H, W, C, P, 1);  // dcols is only read
}
