// Depthwise convolution over channels-last maps, see dwconv.h.
#include "kernels/dwconv.h"

#include <stddef.h>  // size_t
#include <string.h>  // memcpy, memset

#define CB 32  // channels per task of the weight and bias gradients

// weight (C,1,K,K) -> wt (K,K,C)
static void transpose_weight(float *wt, const float *weight, int C, int K) {
    int KK = K * K;
#pragma omp parallel for
    for (int c = 0; c < C; c++)
        for (int k = 0; k < KK; k++) wt[(size_t)k * C + c] = weight[(size_t)c * KK + k];
}

void dwconv2d_forward(float *out, const float *inp, const float *weight, const float *bias, float *wt, int N, int H,
                      int W, int C, int K) {
    int P = K / 2;
    transpose_weight(wt, weight, C, K);
#pragma omp parallel for collapse(2)
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *o = out + (((size_t)n * H + y) * W + x) * C;
                if (bias) memcpy(o, bias, sizeof(float) * C);
                else memset(o, 0, sizeof(float) * C);
                for (int ky = 0; ky < K; ky++) {
                    int iy = y + ky - P;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int ix = x + kx - P;
                        if (ix < 0 || ix >= W) continue;
                        const float *in = inp + (((size_t)n * H + iy) * W + ix) * C, *w = wt + (size_t)(ky * K + kx) * C;
                        for (int c = 0; c < C; c++) o[c] += w[c] * in[c];
                    }
                }
            }
}

void dwconv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                       const float *weight, float *wt, int N, int H, int W, int C, int K) {
    int P = K / 2;
    if (dinp) {
        transpose_weight(wt, weight, C, K);
        // the input gradient gathered: input (iy, ix) was read by output (iy - ky + P, ix - kx + P) through tap (ky, kx)
#pragma omp parallel for collapse(2)
        for (int n = 0; n < N; n++)
            for (int iy = 0; iy < H; iy++) {
                float acc[C];
                for (int ix = 0; ix < W; ix++) {
                    memset(acc, 0, sizeof acc);
                    for (int ky = 0; ky < K; ky++) {
                        int y = iy - ky + P;
                        if (y < 0 || y >= H) continue;
                        for (int kx = 0; kx < K; kx++) {
                            int x = ix - kx + P;
                            if (x < 0 || x >= W) continue;
                            const float *g = dout + (((size_t)n * H + y) * W + x) * C, *w = wt + (size_t)(ky * K + kx) * C;
                            for (int c = 0; c < C; c++) acc[c] += w[c] * g[c];
                        }
                    }
                    float *d = dinp + (((size_t)n * H + iy) * W + ix) * C;
                    for (int c = 0; c < C; c++) d[c] += acc[c];
                }
            }
    }
    int blocks = (C + CB - 1) / CB;
    if (dweight) {
        // one task per (kernel row, channel block): the sum over every position, in order
#pragma omp parallel for collapse(2)
        for (int ky = 0; ky < K; ky++)
            for (int b = 0; b < blocks; b++) {
                int c0 = b * CB, m = C - c0 < CB ? C - c0 : CB;
                float acc[DWCONV_MAX_K][CB];
                memset(acc, 0, sizeof acc);
                for (int n = 0; n < N; n++)
                    for (int y = 0; y < H; y++) {
                        int iy = y + ky - P;
                        if (iy < 0 || iy >= H) continue;
                        for (int x = 0; x < W; x++) {
                            const float *g = dout + (((size_t)n * H + y) * W + x) * C + c0;
                            for (int kx = 0; kx < K; kx++) {
                                int ix = x + kx - P;
                                if (ix < 0 || ix >= W) continue;
                                const float *in = inp + (((size_t)n * H + iy) * W + ix) * C + c0;
                                for (int c = 0; c < m; c++) acc[kx][c] += g[c] * in[c];
                            }
                        }
                    }
                for (int kx = 0; kx < K; kx++)
                    for (int c = 0; c < m; c++) dweight[((size_t)(c0 + c) * K + ky) * K + kx] += acc[kx][c];
            }
    }
    if (dbias) {
        size_t rows = (size_t)N * H * W;
#pragma omp parallel for
        for (int b = 0; b < blocks; b++) {
            int c0 = b * CB, m = C - c0 < CB ? C - c0 : CB;
            float s[CB] = {0};
            for (size_t r = 0; r < rows; r++)
                for (int c = 0; c < m; c++) s[c] += dout[r * C + c0 + c];
            for (int c = 0; c < m; c++) dbias[c0 + c] += s[c];
        }
    }
}
