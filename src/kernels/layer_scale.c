// Layer scale, see layer_scale.h.
#include "kernels/layer_scale.h"

#include <stddef.h>  // size_t

#define CB 32  // channels per task of gamma's gradient

void layer_scale_forward(float *out, const float *x, const float *y, const float *gamma, int R, int C) {
#pragma omp parallel for
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            float branch = y[i] * gamma[c];  // rounded before the add, as torch's two ops
            out[i] = x[i] + branch;
        }
}

void layer_scale_backward(float *dy, float *dgamma, const float *dout, const float *y, const float *gamma, int R, int C) {
#pragma omp parallel for
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) dy[(size_t)r * C + c] = dout[(size_t)r * C + c] * gamma[c];
    if (!dgamma) return;
#pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += CB) {
        int m = C - c0 < CB ? C - c0 : CB;
        float s[CB] = {0};
        for (int r = 0; r < R; r++)
            for (int c = 0; c < m; c++) s[c] += dout[(size_t)r * C + c0 + c] * y[(size_t)r * C + c0 + c];
        for (int c = 0; c < m; c++) dgamma[c0 + c] += s[c];
    }
}
