// Swin's layout moves on the GPU, see swin_layout.h: pure copies (zeros where
// Swin pads), one thread per output element.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/swin_layout.h"
}

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

__global__ static void im2col_padded(float *cols, const float *pixels, int B, int H, int W, int P, int GH, int GW) {
    int K = 3 * P * P, NP = GH * GW;
    GRID_STRIDE(e, (size_t)B * NP * K) {
        int k = (int)(e % K), p = (int)(e / K % NP);
        size_t b = e / ((size_t)K * NP);
        int c = k / (P * P), y = p / GW * P + k / P % P, x = p % GW * P + k % P;
        cols[e] = y < H && x < W ? pixels[((b * 3 + c) * H + y) * W + x] : 0.0f;
    }
}

void patch_im2col_padded(float *cols, const float *pixels, int B, int H, int W, int P) {
    int GH = round_up(H, P) / P, GW = round_up(W, P) / P;
    LAUNCH(im2col_padded, (size_t)B * GH * GW * 3 * P * P, cols, pixels, B, H, W, P, GH, GW);
}

__global__ static void partition(float *win, const float *x, int B, int H, int W, int C, int ws, int shift, int Hp,
                                 int Wp) {
    int nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
    GRID_STRIDE(e, (size_t)B * nW * T * C) {
        int c = (int)(e % C), t = (int)(e / C % T), w = (int)(e / ((size_t)C * T) % nW);
        size_t b = e / ((size_t)C * T * nW);
        // token t of window w sits at (py, px) of the rolled map, which holds (py + shift) % Hp of the padded one
        int sy = ((w / nx) * ws + t / ws + shift) % Hp, sx = ((w % nx) * ws + t % ws + shift) % Wp;
        win[e] = sy < H && sx < W ? x[((b * H + sy) * W + sx) * C + c] : 0.0f;
    }
}

void window_partition_forward(float *win, const float *x, int B, int H, int W, int C, int ws, int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws);
    LAUNCH(partition, (size_t)B * Hp * Wp * C, win, x, B, H, W, C, ws, shift, Hp, Wp);
}

__global__ static void merge_residual(float *out, const float *res, const float *win, int B, int H, int W, int C,
                                      int ws, int shift, int Hp, int Wp) {
    int nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
    GRID_STRIDE(e, (size_t)B * H * W * C) {
        int c = (int)(e % C), x = (int)(e / C % W), y = (int)(e / ((size_t)C * W) % H);
        size_t b = e / ((size_t)C * W * H);
        int py = (y - shift + Hp) % Hp, px = (x - shift + Wp) % Wp;
        size_t src = ((b * nW + (py / ws) * nx + px / ws) * T + (py % ws) * ws + px % ws) * C + c;
        out[e] = res[e] + win[src];
    }
}

void window_merge_residual_forward(float *out, const float *res, const float *win, int B, int H, int W, int C, int ws,
                                   int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws);
    LAUNCH(merge_residual, (size_t)B * H * W * C, out, res, win, B, H, W, C, ws, shift, Hp, Wp);
}

__global__ static void merge_gather(float *out, const float *x, int B, int H, int W, int C) {
    int H2 = (H + 1) / 2, W2 = (W + 1) / 2;
    GRID_STRIDE(e, (size_t)B * H2 * W2 * 4 * C) {
        int c = (int)(e % C), q = (int)(e / C % 4), j = (int)(e / ((size_t)4 * C) % W2),
            i = (int)(e / ((size_t)4 * C * W2) % H2);
        size_t b = e / ((size_t)4 * C * W2 * H2);
        int y = 2 * i + (q & 1), xx = 2 * j + (q >> 1);  // the torch.cat order: (0,0), (1,0), (0,1), (1,1)
        out[e] = y < H && xx < W ? x[((b * H + y) * W + xx) * C + c] : 0.0f;
    }
}

void patch_merge_gather_forward(float *out, const float *x, int B, int H, int W, int C) {
    LAUNCH(merge_gather, (size_t)B * ((H + 1) / 2) * ((W + 1) / 2) * 4 * C, out, x, B, H, W, C);
}

__global__ static void tokens_to_map(float *map, const float *x, int B, int N, int C) {
    GRID_STRIDE(e, (size_t)B * C * N) {
        size_t n = e % N, c = e / N % C, b = e / ((size_t)N * C);
        map[e] = x[(b * N + n) * C + c];
    }
}

void tokens_to_map_forward(float *map, const float *x, int B, int N, int C) {
    LAUNCH(tokens_to_map, (size_t)B * C * N, map, x, B, N, C);
}
