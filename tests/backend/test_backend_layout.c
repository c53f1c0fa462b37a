// Backend suite: the vision towers' layout moves (space_to_depth.h,
// swin_layout.h): ConvNeXt's downsample patches, Swin's padded patchify,
// shifted-window partition and its inverse onto the residual, patch merging's
// gather and tokens to a channels-first map. Pure copies (the residual one
// add), so bit for bit against plain loops that follow the reference's steps
// (pad, torch.roll, window_partition / window_reverse, crop) one at a time.
#include <string.h>

#include "backend_util.h"
#include "kernels/device.h"
#include "kernels/space_to_depth.h"
#include "kernels/swin_layout.h"

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

START_TEST(space_to_depth) {
    bt_seed(71);
    int N = 2, H = 6, W = 10, C = 5, P = 2, OH = H / P, OW = W / P, K = C * P * P;
    size_t n = (size_t)N * H * W * C;
    float *x = bt_randn(n, 1.0f), *dcols = bt_randn(n, 1.0f);
    float *cols = bt_host(sizeof(float) * n), *dx = bt_host(sizeof(float) * n);
    for (int b = 0; b < N; b++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++) {
                    size_t m = (((size_t)b * H + y) * W + xx) * C + c;
                    size_t k = (((size_t)b * OH + y / P) * OW + xx / P) * K + ((size_t)c * P + y % P) * P + xx % P;
                    cols[k] = x[m], dx[m] = dcols[k];
                }
    float *d_cols = bt_up(bt_randn(n, 1.0f), n), *d_dx = bt_up(bt_randn(n, 1.0f), n);  // written over garbage
    space_to_depth_forward(d_cols, bt_up(x, n), N, H, W, C, P);
    bt_exact("space_to_depth_forward", d_cols, cols, n);
    space_to_depth_backward(d_dx, bt_up(dcols, n), N, H, W, C, P);
    bt_exact("space_to_depth_backward", d_dx, dx, n);
    // P 3 on a square map
    int H3 = 9, C3 = 3;
    size_t n3 = (size_t)H3 * H3 * C3;
    float *x3 = bt_randn(n3, 1.0f), *c3 = bt_host(sizeof(float) * n3);
    for (int y = 0; y < H3; y++)
        for (int xx = 0; xx < H3; xx++)
            for (int c = 0; c < C3; c++)
                c3[((size_t)(y / 3) * 3 + xx / 3) * C3 * 9 + ((size_t)c * 3 + y % 3) * 3 + xx % 3] =
                    x3[((size_t)y * H3 + xx) * C3 + c];
    float *d_c3 = bt_dev_zeros(n3);
    space_to_depth_forward(d_c3, bt_up(x3, n3), 1, H3, H3, C3, 3);
    bt_exact("space_to_depth_forward P 3", d_c3, c3, n3);
    bt_free_all();
}
END_TEST

START_TEST(patchify_padded) {
    bt_seed(72);
    int B = 2, H = 11, W = 9, P = 4, GH = 3, GW = 3, K = 3 * P * P;
    size_t npix = (size_t)B * 3 * H * W, ncols = (size_t)B * GH * GW * K;
    float *pix = bt_randn(npix, 1.0f), *cols = bt_host(sizeof(float) * ncols);
    // the padded image (right and bottom), then the conv's patches
    int Hp = GH * P, Wp = GW * P;
    float *pad = bt_host(sizeof(float) * B * 3 * Hp * Wp);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    pad[(((size_t)b * 3 + c) * Hp + y) * Wp + x] = pix[(((size_t)b * 3 + c) * H + y) * W + x];
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < GH; gy++)
            for (int gx = 0; gx < GW; gx++)
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < P; ky++)
                        for (int kx = 0; kx < P; kx++)
                            cols[(((size_t)b * GH + gy) * GW + gx) * K + (c * P + ky) * P + kx] =
                                pad[(((size_t)b * 3 + c) * Hp + gy * P + ky) * Wp + gx * P + kx];
    float *d_cols = bt_up(bt_randn(ncols, 1.0f), ncols);
    patch_im2col_padded(d_cols, bt_up(pix, npix), B, H, W, P);
    bt_exact("patch_im2col_padded", d_cols, cols, ncols);
    bt_free_all();
}
END_TEST

// pad x (B, H, W, C) to Hp x Wp, roll by -shift, cut into windows (window_partition)
static void partition_ref(float *win, const float *x, int B, int H, int W, int C, int ws, int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws), nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
    float *pad = bt_host(sizeof(float) * Hp * Wp * C), *rolled = bt_host(sizeof(float) * Hp * Wp * C);
    for (int b = 0; b < B; b++) {
        memset(pad, 0, sizeof(float) * Hp * Wp * C);
        for (int y = 0; y < H; y++)
            memcpy(pad + (size_t)y * Wp * C, x + ((size_t)b * H + y) * W * C, sizeof(float) * W * C);
        for (int y = 0; y < Hp; y++)  // torch.roll(x, -shift): rolled[i] = pad[(i + shift) mod P]
            for (int xx = 0; xx < Wp; xx++)
                memcpy(rolled + ((size_t)y * Wp + xx) * C, pad + ((size_t)((y + shift) % Hp) * Wp + (xx + shift) % Wp) * C,
                       sizeof(float) * C);
        for (int w = 0; w < nW; w++)
            for (int t = 0; t < T; t++)
                memcpy(win + (((size_t)b * nW + w) * T + t) * C,
                       rolled + ((size_t)((w / nx) * ws + t / ws) * Wp + (w % nx) * ws + t % ws) * C, sizeof(float) * C);
    }
}

// res + (window_reverse, roll by +shift, crop)
static void merge_ref(float *out, const float *res, const float *win, int B, int H, int W, int C, int ws, int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws), nx = Wp / ws, T = ws * ws, nW = (Hp / ws) * nx;
    float *map = bt_host(sizeof(float) * Hp * Wp * C), *rolled = bt_host(sizeof(float) * Hp * Wp * C);
    for (int b = 0; b < B; b++) {
        for (int w = 0; w < nW; w++)
            for (int t = 0; t < T; t++)
                memcpy(map + ((size_t)((w / nx) * ws + t / ws) * Wp + (w % nx) * ws + t % ws) * C,
                       win + (((size_t)b * nW + w) * T + t) * C, sizeof(float) * C);
        for (int y = 0; y < Hp; y++)  // torch.roll(x, +shift): rolled[i] = map[(i - shift) mod P]
            for (int xx = 0; xx < Wp; xx++)
                memcpy(rolled + ((size_t)y * Wp + xx) * C,
                       map + ((size_t)((y - shift + Hp) % Hp) * Wp + (xx - shift + Wp) % Wp) * C, sizeof(float) * C);
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++) {
                    size_t o = (((size_t)b * H + y) * W + xx) * C + c;
                    out[o] = res[o] + rolled[((size_t)y * Wp + xx) * C + c];
                }
    }
}

static void windows_case(int B, int H, int W, int C, int ws, int shift) {
    int Hp = round_up(H, ws), Wp = round_up(W, ws);
    size_t nx = (size_t)B * H * W * C, nwin = (size_t)B * Hp * Wp * C;
    float *x = bt_randn(nx, 1.0f), *win = bt_host(sizeof(float) * nwin);
    partition_ref(win, x, B, H, W, C, ws, shift);
    float *d_x = bt_up(x, nx), *d_win = bt_up(bt_randn(nwin, 1.0f), nwin);
    window_partition_forward(d_win, d_x, B, H, W, C, ws, shift);
    bt_exact(shift ? "window_partition_forward (shifted)" : "window_partition_forward", d_win, win, nwin);
    float *res = bt_randn(nx, 1.0f), *wout = bt_randn(nwin, 1.0f), *out = bt_host(sizeof(float) * nx);
    merge_ref(out, res, wout, B, H, W, C, ws, shift);
    float *d_res = bt_up(res, nx), *d_wout = bt_up(wout, nwin), *d_out = bt_dev_zeros(nx);
    window_merge_residual_forward(d_out, d_res, d_wout, B, H, W, C, ws, shift);
    bt_exact("window_merge_residual_forward", d_out, out, nx);
    window_merge_residual_forward(d_res, d_res, d_wout, B, H, W, C, ws, shift);  // in place
    bt_exact("window_merge_residual_forward (in place)", d_res, out, nx);
}

START_TEST(windows) {
    bt_seed(73);
    windows_case(2, 7, 10, 5, 3, 0);  // padded on both axes
    windows_case(2, 7, 10, 5, 3, 1);
    windows_case(1, 8, 8, 3, 4, 2);   // no padding, Swin's shift ws / 2
    windows_case(1, 5, 6, 2, 7, 3);   // one window larger than the map
    bt_free_all();
}
END_TEST

START_TEST(merge_and_map) {
    bt_seed(74);
    int B = 2, H = 5, W = 6, C = 7, H2 = 3, W2 = 3;
    size_t nx = (size_t)B * H * W * C, nout = (size_t)B * H2 * W2 * 4 * C;
    float *x = bt_randn(nx, 1.0f), *out = bt_host(sizeof(float) * nout);
    // zero-pad to even sides, then torch.cat of x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H2; i++)
            for (int j = 0; j < W2; j++)
                for (int q = 0; q < 4; q++)
                    for (int c = 0; c < C; c++) {
                        int y = 2 * i + dy[q], xx = 2 * j + dx[q];
                        out[(((size_t)b * H2 + i) * W2 + j) * 4 * C + (size_t)q * C + c] =
                            y < H && xx < W ? x[(((size_t)b * H + y) * W + xx) * C + c] : 0.0f;
                    }
    float *d_x = bt_up(x, nx), *d_out = bt_up(bt_randn(nout, 1.0f), nout);
    patch_merge_gather_forward(d_out, d_x, B, H, W, C);
    bt_exact("patch_merge_gather_forward", d_out, out, nout);
    // tokens (B, N, C) -> (B, C, N)
    int N = H * W;
    float *map = bt_host(sizeof(float) * nx);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) map[((size_t)b * C + c) * N + n] = x[((size_t)b * N + n) * C + c];
    float *d_map = bt_dev_zeros(nx);
    tokens_to_map_forward(d_map, d_x, B, N, C);
    bt_exact("tokens_to_map_forward", d_map, map, nx);
    bt_free_all();
}
END_TEST

Suite *backend_layout_suite(void) {
    Suite *s = suite_create("backend_layout");
    TCase *tc = tcase_create("backend_layout");
    tcase_add_test(tc, space_to_depth);
    tcase_add_test(tc, patchify_padded);
    tcase_add_test(tc, windows);
    tcase_add_test(tc, merge_and_map);
    suite_add_tcase(s, tc);
    return s;
}
