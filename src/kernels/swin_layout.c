// Swin's layout moves, see swin_layout.h.
#include "kernels/swin_layout.h"

#include <stddef.h>  // size_t
#include <string.h>  // memcpy, memset

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

void patch_im2col_padded(float *cols, const float *pixels, int B, int H, int W, int P) {
    int GH = round_up(H, P) / P, GW = round_up(W, P) / P, K = 3 * P * P;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int p = 0; p < GH * GW; p++) {
            int gy = p / GW, gx = p % GW;
            float *col = cols + ((size_t)b * GH * GW + p) * K;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    for (int kx = 0; kx < P; kx++) {
                        int y = gy * P + ky, x = gx * P + kx;
                        *col++ = y < H && x < W ? pixels[(((size_t)b * 3 + c) * H + y) * W + x] : 0.0f;
                    }
        }
}

void window_partition_forward(float *win, const float *x, int B, int H, int W, int C, int ws, int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws), nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int w = 0; w < nW; w++)
            for (int t = 0; t < T; t++) {
                // token t of window w sits at (py, px) of the rolled map, which holds (py + shift) % Hp of the padded
                // one
                int sy = ((w / nx) * ws + t / ws + shift) % Hp, sx = ((w % nx) * ws + t % ws + shift) % Wp;
                float *dst = win + (((size_t)b * nW + w) * T + t) * C;
                if (sy < H && sx < W)
                    memcpy(dst, x + (((size_t)b * H + sy) * W + sx) * C, sizeof(float) * C);
                else
                    memset(dst, 0, sizeof(float) * C);
            }
}

void window_merge_residual_forward(float *out, const float *res, const float *win, int B, int H, int W, int C, int ws,
                                   int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws), nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int py = (y - shift + Hp) % Hp, px = (x - shift + Wp) % Wp;
                const float *src =
                    win + (((size_t)b * nW + (py / ws) * nx + px / ws) * T + (py % ws) * ws + px % ws) * C;
                size_t o = (((size_t)b * H + y) * W + x) * C;
                for (int c = 0; c < C; c++) out[o + c] = res[o + c] + src[c];
            }
}

void patch_merge_gather_forward(float *out, const float *x, int B, int H, int W, int C) {
    int H2 = (H + 1) / 2, W2 = (W + 1) / 2;
    static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H2; i++)
            for (int j = 0; j < W2; j++)
                for (int q = 0; q < 4; q++) {
                    int y = 2 * i + dy[q], xx = 2 * j + dx[q];
                    float *dst = out + (((size_t)b * H2 + i) * W2 + j) * 4 * C + (size_t)q * C;
                    if (y < H && xx < W)
                        memcpy(dst, x + (((size_t)b * H + y) * W + xx) * C, sizeof(float) * C);
                    else
                        memset(dst, 0, sizeof(float) * C);
                }
}

void tokens_to_map_forward(float *map, const float *x, int B, int N, int C) {
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *dst = map + ((size_t)b * C + c) * N;
            const float *src = x + (size_t)b * N * C + c;
            for (int n = 0; n < N; n++) dst[n] = src[(size_t)n * C];
        }
}
