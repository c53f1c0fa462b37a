// Backend suite: the vision towers' arithmetic kernels (ConvNeXt's depthwise
// convolution and layer scale, the ViT teachers' blocked patch product, the
// bicubic and bilinear resizes, Swin's window attention and its index tables)
// against plain loops in double. Tolerances: 1e-5 norm-wise relative for the
// convolution, the products and the attention (fp32 sums in the backend's
// order); 1e-6 for the resizes (4 or 16 terms, their weights in float as torch
// computes them); layer scale's forward and input gradient (one rounding per
// operation) and the index tables bit for bit. The backward passes run twice:
// the same bits.
#include <math.h>
#include <string.h>

#include "backend_util.h"
#include "kernels/bicubic.h"
#include "kernels/device.h"
#include "kernels/dwconv.h"
#include "kernels/interpolate.h"
#include "kernels/layer_scale.h"
#include "kernels/linear.h"
#include "kernels/window_attention.h"

#define TOL 1e-5

static void dwconv_case(int N, int H, int W, int C, int K, int with_bias) {
    int P = K / 2, KK = K * K;
    size_t n = (size_t)N * H * W * C;
    float *x = bt_randn(n, 1.0f), *w = bt_randn((size_t)C * KK, 0.3f), *b = with_bias ? bt_randn(C, 1.0f) : NULL;
    float *dy = bt_randn(n, 1.0f), *dx0 = bt_randn(n, 1.0f), *dw0 = bt_randn((size_t)C * KK, 1.0f), *db0 = bt_randn(C, 1.0f);
    double *y = bt_dzeros(n), *dx = bt_dzeros(n), *dw = bt_dzeros((size_t)C * KK), *db = bt_dzeros(C);
    for (size_t i = 0; i < n; i++) dx[i] = dx0[i];
    for (size_t i = 0; i < (size_t)C * KK; i++) dw[i] = dw0[i];
    for (int c = 0; c < C; c++) db[c] = db0[c];
    for (int s = 0; s < N; s++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++) {
                    size_t o = (((size_t)s * H + yy) * W + xx) * C + c;
                    double acc = b ? b[c] : 0.0;
                    db[c] += dy[o];
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = yy + ky - P, ix = xx + kx - P;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            size_t i = (((size_t)s * H + iy) * W + ix) * C + c, k = (size_t)c * KK + ky * K + kx;
                            acc += (double)w[k] * x[i];
                            dx[i] += (double)w[k] * dy[o];
                            dw[k] += (double)dy[o] * x[i];
                        }
                    y[o] = acc;
                }
    float *d_x = bt_up(x, n), *d_w = bt_up(w, (size_t)C * KK), *d_b = b ? bt_up(b, C) : NULL, *d_dy = bt_up(dy, n);
    float *d_wt = bt_dev_zeros((size_t)KK * C), *d_y = bt_up(dx0, n);  // written over garbage
    dwconv2d_forward(d_y, d_x, d_w, d_b, d_wt, N, H, W, C, K);
    bt_close("dwconv2d_forward", d_y, y, n, TOL);
    float *d_dx = bt_up(dx0, n), *d_dw = bt_up(dw0, (size_t)C * KK), *d_db = bt_up(db0, C);
    dwconv2d_backward(d_dx, d_dw, d_db, d_dy, d_x, d_w, d_wt, N, H, W, C, K);
    bt_close("dwconv2d_backward dinp (accumulated)", d_dx, dx, n, TOL);
    bt_close("dwconv2d_backward dweight (accumulated)", d_dw, dw, (size_t)C * KK, TOL);
    bt_close("dwconv2d_backward dbias (accumulated)", d_db, db, C, TOL);
    float *e_dx = bt_up(dx0, n), *e_dw = bt_up(dw0, (size_t)C * KK), *e_db = bt_up(db0, C);
    dwconv2d_backward(e_dx, e_dw, e_db, d_dy, d_x, d_w, d_wt, N, H, W, C, K);
    bt_same("dwconv2d_backward dinp twice", e_dx, d_dx, n);
    bt_same("dwconv2d_backward dweight twice", e_dw, d_dw, (size_t)C * KK);
    bt_same("dwconv2d_backward dbias twice", e_db, d_db, C);
    // each gradient alone (the others NULL) gives the same bits
    device_upload(e_dw, dw0, sizeof(float) * C * KK);
    dwconv2d_backward(NULL, e_dw, NULL, d_dy, d_x, d_w, d_wt, N, H, W, C, K);
    bt_same("dwconv2d_backward dweight alone", e_dw, d_dw, (size_t)C * KK);
    device_upload(e_dx, dx0, sizeof(float) * n);
    dwconv2d_backward(e_dx, NULL, NULL, d_dy, d_x, d_w, d_wt, N, H, W, C, K);
    bt_same("dwconv2d_backward dinp alone", e_dx, d_dx, n);
}

START_TEST(dwconv) {
    bt_seed(81);
    dwconv_case(2, 7, 6, 37, 7, 1);  // ConvNeXt's 7 x 7, channels past one block of 32
    dwconv_case(1, 5, 9, 3, 3, 0);
    dwconv_case(1, 2, 3, 5, 5, 1);   // a kernel larger than the map
    bt_free_all();
}
END_TEST

START_TEST(layer_scale) {
    bt_seed(82);
    int R = 45, C = 70;
    size_t n = (size_t)R * C;
    float *x = bt_randn(n, 1.0f), *y = bt_randn(n, 1.0f), *g = bt_randn(C, 0.5f), *dout = bt_randn(n, 1.0f);
    float *g0 = bt_randn(C, 1.0f), *out = bt_host(sizeof(float) * n), *dy = bt_host(sizeof(float) * n);
    double *dg = bt_dzeros(C);
    for (int c = 0; c < C; c++) dg[c] = g0[c];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            float branch = y[i] * g[c];
            out[i] = x[i] + branch;
            dy[i] = dout[i] * g[c];
            dg[c] += (double)dout[i] * y[i];
        }
    float *d_x = bt_up(x, n), *d_y = bt_up(y, n), *d_g = bt_up(g, C), *d_out = bt_dev_zeros(n), *d_dout = bt_up(dout, n);
    layer_scale_forward(d_out, d_x, d_y, d_g, R, C);
    bt_exact("layer_scale_forward", d_out, out, n);
    layer_scale_forward(d_x, d_x, d_y, d_g, R, C);  // in place
    bt_exact("layer_scale_forward (in place)", d_x, out, n);
    float *d_dy = bt_up(x, n), *d_dg = bt_up(g0, C);
    layer_scale_backward(d_dy, d_dg, d_dout, d_y, d_g, R, C);
    bt_exact("layer_scale_backward dy", d_dy, dy, n);
    bt_close("layer_scale_backward dgamma (accumulated)", d_dg, dg, C, TOL);
    float *e_dy = bt_dev_zeros(n), *e_dg = bt_up(g0, C);
    layer_scale_backward(e_dy, e_dg, d_dout, d_y, d_g, R, C);
    bt_same("layer_scale_backward dgamma twice", e_dg, d_dg, C);
    layer_scale_backward(e_dy, NULL, d_dout, d_y, d_g, R, C);
    bt_exact("layer_scale_backward dy without dgamma", e_dy, dy, n);
    // rows past one chunk of the column sums
    int R2 = 700, C2 = 3;
    float *y2 = bt_randn((size_t)R2 * C2, 1.0f), *d2 = bt_randn((size_t)R2 * C2, 1.0f);
    double *dg2 = bt_dzeros(C2);
    for (int r = 0; r < R2; r++)
        for (int c = 0; c < C2; c++) dg2[c] += (double)d2[(size_t)r * C2 + c] * y2[(size_t)r * C2 + c];
    float *d_dg2 = bt_dev_zeros(C2);
    layer_scale_backward(bt_dev_zeros((size_t)R2 * C2), d_dg2, bt_up(d2, (size_t)R2 * C2), bt_up(y2, (size_t)R2 * C2),
                         d_g, R2, C2);
    bt_close("layer_scale_backward dgamma (700 rows)", d_dg2, dg2, C2, TOL);
    bt_free_all();
}
END_TEST

static void blocked_case(int N, int C, int OC, int with_bias) {
    float *x = bt_randn((size_t)N * C, 1.0f), *w = bt_randn((size_t)OC * C, 0.1f), *b = with_bias ? bt_randn(OC, 1.0f) : NULL;
    double *y = bt_dzeros((size_t)N * OC);
    for (int r = 0; r < N; r++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)x[(size_t)r * C + c] * w[(size_t)o * C + c];
            y[(size_t)r * OC + o] = s;
        }
    float *d_y = bt_up(bt_randn((size_t)N * OC, 1.0f), (size_t)N * OC);  // written over garbage
    linear_forward_blocked(d_y, bt_up(x, (size_t)N * C), bt_up(w, (size_t)OC * C), b ? bt_up(b, OC) : NULL, N, C, OC);
    bt_close("linear_forward_blocked", d_y, y, (size_t)N * OC, TOL);
}

START_TEST(linear_blocked) {
    bt_seed(83);
    blocked_case(9, 588, 17, 1);  // a ViT/14's patch product: three blocks, the last partial
    blocked_case(4, 2 * LINEAR_K_BLOCK, 5, 0);
    blocked_case(7, 100, 3, 1);   // one block
    bt_free_all();
}
END_TEST

// ---- resizes: the taps as the headers state them (float, torch's arithmetic), the sums in double
static void cubic_taps(int i, int size, int n, double scale, int idx[4], double w[4]) {
    const float A = -0.75f;
    float s = scale > 0 ? (float)(1.0 / scale) : (float)size / (float)n;
    float real = s * ((float)i + 0.5f) - 0.5f;
    int in = (int)floorf(real);
    if (in > size - 1) in = size - 1;
    float t = real - (float)in;
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    float d[4] = {t + 1.0f, t, 1.0f - t, 2.0f - t};
    for (int j = 0; j < 4; j++) {
        float x = d[j];
        w[j] = x <= 1.0f ? ((A + 2) * x - (A + 3)) * x * x + 1 : ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
        int k = in - 1 + j;
        idx[j] = k < 0 ? 0 : k > size - 1 ? size - 1 : k;
    }
}

static void bicubic_case(int H, int W, int C, int OH, int OW, double sh, double sw) {
    size_t n = (size_t)H * W * C, no = (size_t)OH * OW * C;
    float *inp = bt_randn(n, 1.0f);
    double *out = bt_dzeros(no);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int iy[4], ix[4];
            double wy[4], wx[4];
            cubic_taps(oy, H, OH, sh, iy, wy);
            cubic_taps(ox, W, OW, sw, ix, wx);
            for (int c = 0; c < C; c++) {
                double s = 0.0;
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) s += wy[i] * wx[j] * inp[((size_t)iy[i] * W + ix[j]) * C + c];
                out[((size_t)oy * OW + ox) * C + c] = s;
            }
        }
    float *d_out = bt_up(bt_randn(no, 1.0f), no);
    bicubic_resize_forward(d_out, bt_up(inp, n), H, W, C, OH, OW, sh, sw);
    bt_close("bicubic_resize_forward", d_out, out, no, 1e-6);
}

START_TEST(bicubic) {
    bt_seed(84);
    bicubic_case(5, 5, 7, 8, 8, 8.0 / 5.0, 8.0 / 5.0);       // DINOv2's scale factors (up)
    bicubic_case(6, 6, 3, 4, 5, 4.0 / 6.0, 5.0 / 6.0);       // down, unequal axes
    bicubic_case(4, 7, 2, 9, 3, 0.0, 0.0);                   // sizes given
    bt_free_all();
}
END_TEST

static void linear_taps(int o, int in, int out, int *i0, int *i1, double *l0, double *l1) {
    float scale = (float)in / (float)out, src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    *i0 = i, *i1 = i < in - 1 ? i + 1 : i;
    float f = src - (float)i;
    *l1 = f, *l0 = 1.0f - f;
}

START_TEST(bilinear) {
    bt_seed(85);
    int shapes[3][5] = {{3, 5, 7, 11, 13}, {2, 9, 8, 4, 3}, {1, 1, 4, 3, 1}};  // N, H, W, OH, OW: up, down, one row
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], H = shapes[s][1], W = shapes[s][2], OH = shapes[s][3], OW = shapes[s][4];
        size_t n = (size_t)N * H * W, no = (size_t)N * OH * OW;
        float *inp = bt_randn(n, 1.0f);
        double *out = bt_dzeros(no);
        for (int p = 0; p < N; p++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    int y0, y1, x0, x1;
                    double h0, h1, w0, w1;
                    linear_taps(oy, H, OH, &y0, &y1, &h0, &h1);
                    linear_taps(ox, W, OW, &x0, &x1, &w0, &w1);
                    const float *pl = inp + (size_t)p * H * W;
                    out[((size_t)p * OH + oy) * OW + ox] = h0 * (w0 * pl[y0 * W + x0] + w1 * pl[y0 * W + x1]) +
                                                          h1 * (w0 * pl[y1 * W + x0] + w1 * pl[y1 * W + x1]);
                }
        float *d_out = bt_up(bt_randn(no, 1.0f), no);
        bilinear_resize_forward(d_out, bt_up(inp, n), N, H, W, OH, OW);
        bt_close("bilinear_resize_forward", d_out, out, no, 1e-6);
    }
    bt_free_all();
}
END_TEST

// ---- Swin's window attention
static void window_attention_case(int B, int Hp, int Wp, int ws, int shift, int NH, int HS) {
    int T = ws * ws, nx = Wp / ws, nW = (Hp / ws) * nx, Bw = B * nW, C = NH * HS, R = 2 * ws - 1;
    // the tables: SwinSelfAttention's relative_position_index and SwinLayer's img_mask, built as they build them
    int32_t *idx = bt_host(sizeof(int32_t) * T * T), *ref_idx = bt_host(sizeof(int32_t) * T * T);
    window_relative_index(idx, ws);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            int dy = i / ws - j / ws + ws - 1, dx = i % ws - j % ws + ws - 1;  // relative_coords[..., 0] *= 2 ws - 1
            ref_idx[(size_t)i * T + j] = dy * R + dx;
        }
    ck_assert_mem_eq(idx, ref_idx, sizeof(int32_t) * T * T);
    int32_t *region = NULL;
    if (shift) {
        int32_t *img = bt_host(sizeof(int32_t) * Hp * Wp), *ref_reg = bt_host(sizeof(int32_t) * nW * T);
        int hs[4] = {0, Hp - ws, Hp - shift, Hp}, wsl[4] = {0, Wp - ws, Wp - shift, Wp}, cnt = 0;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++, cnt++)
                for (int y = hs[a]; y < hs[a + 1]; y++)
                    for (int x = wsl[b]; x < wsl[b + 1]; x++) img[y * Wp + x] = cnt;
        for (int w = 0; w < nW; w++)
            for (int t = 0; t < T; t++) ref_reg[(size_t)w * T + t] = img[((w / nx) * ws + t / ws) * Wp + (w % nx) * ws + t % ws];
        region = bt_host(sizeof(int32_t) * nW * T);
        window_shift_regions(region, Hp, Wp, ws, shift);
        ck_assert_mem_eq(region, ref_reg, sizeof(int32_t) * nW * T);
    }
    size_t nqkv = (size_t)Bw * T * 3 * C, nout = (size_t)Bw * T * C;
    float *qkv = bt_randn(nqkv, 1.0f), *table = bt_randn((size_t)R * R * NH, 1.0f);
    double *out = bt_dzeros(nout), *p = bt_dzeros(T);
    double div = (float)sqrt((double)HS);
    for (int w = 0; w < Bw; w++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)w * T + i) * 3 * C + h * HS;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + ((size_t)w * T + j) * 3 * C + C + h * HS;
                    double s = 0.0;
                    for (int d = 0; d < HS; d++) s += (double)q[d] * k[d];
                    s = s / div + table[(size_t)idx[(size_t)i * T + j] * NH + h];
                    if (region && region[(size_t)(w % nW) * T + i] != region[(size_t)(w % nW) * T + j]) s += -100.0;
                    p[j] = s, mx = s > mx ? s : mx;
                }
                for (int j = 0; j < T; j++) p[j] = exp(p[j] - mx), sum += p[j];
                for (int d = 0; d < HS; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < T; j++) acc += p[j] / sum * qkv[((size_t)w * T + j) * 3 * C + 2 * C + h * HS + d];
                    out[((size_t)w * T + i) * C + h * HS + d] = acc;
                }
            }
    size_t scratch = window_attention_scratch_floats(T);
    float *d_out = bt_up(bt_randn(nout, 1.0f), nout), *d_scratch = bt_dev_zeros(scratch ? scratch : 1);
    window_attention_forward(d_out, bt_up(qkv, nqkv), bt_up(table, (size_t)R * R * NH),
                             bt_up_bytes(idx, sizeof(int32_t) * T * T),
                             region ? bt_up_bytes(region, sizeof(int32_t) * nW * T) : NULL, Bw, nW, T, NH, HS, d_scratch);
    bt_close(shift ? "window_attention_forward (shifted)" : "window_attention_forward", d_out, out, nout, TOL);
}

START_TEST(window_attention) {
    bt_seed(86);
    window_attention_case(2, 6, 9, 3, 0, 2, 5);
    window_attention_case(2, 6, 9, 3, 1, 2, 5);
    window_attention_case(1, 14, 7, 7, 3, 3, 40);  // T 49: keys past one warp; a head past 32 columns
    window_attention_case(1, 4, 4, 2, 1, 1, 1);
    bt_free_all();
}
END_TEST

Suite *backend_vision_suite(void) {
    Suite *s = suite_create("backend_vision");
    TCase *tc = tcase_create("backend_vision");
    tcase_add_test(tc, dwconv);
    tcase_add_test(tc, layer_scale);
    tcase_add_test(tc, linear_blocked);
    tcase_add_test(tc, bicubic);
    tcase_add_test(tc, bilinear);
    tcase_add_test(tc, window_attention);
    suite_add_tcase(s, tc);
    return s;
}
