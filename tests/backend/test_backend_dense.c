// Backend suite: the products and the norms (linear, LoRA, the patch
// embedding, layernorm, rmsnorm) against plain loops in double.
// Tolerances: 1e-5 norm-wise relative for every product and norm output and
// gradient (fp32 sums of up to a few thousand terms in the backend's order);
// the copies (im2col, the ViT's input rows and their gradient, summed in
// image order) bit for bit. The backward passes run twice: the same bits.
#include <math.h>
#include <string.h>

#include "backend_util.h"
#include "kernels/device.h"
#include "kernels/linear.h"
#include "kernels/lora.h"
#include "kernels/norm.h"
#include "kernels/patch_embed.h"

#define TOL 1e-5

// y (N, OC) (+)= x (N, C) w^T, w (OC, C); b (OC) or NULL
static void matmul_ref(double *y, const float *x, const float *w, const float *b, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)x[(size_t)n * C + c] * w[(size_t)o * C + c];
            y[(size_t)n * OC + o] = s;
        }
}

static void linear_case(int N, int C, int OC, int with_bias) {
    float *x = bt_randn((size_t)N * C, 1.0f), *w = bt_randn((size_t)OC * C, 0.1f), *b = with_bias ? bt_randn(OC, 1.0f) : NULL;
    float *dy = bt_randn((size_t)N * OC, 1.0f), *dw0 = bt_randn((size_t)OC * C, 1.0f), *db0 = bt_randn(OC, 1.0f);
    float *dx0 = bt_randn((size_t)N * C, 1.0f);
    double *y = bt_dzeros((size_t)N * OC), *dx = bt_dzeros((size_t)N * C), *dw = bt_dzeros((size_t)OC * C), *db = bt_dzeros(OC);
    matmul_ref(y, x, w, b, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int o = 0; o < OC; o++) s += (double)dy[(size_t)n * OC + o] * w[(size_t)o * C + c];
            dx[(size_t)n * C + c] = s;
        }
    for (int o = 0; o < OC; o++) {
        double sb = db0[o];
        for (int n = 0; n < N; n++) sb += dy[(size_t)n * OC + o];
        db[o] = sb;
        for (int c = 0; c < C; c++) {
            double s = dw0[(size_t)o * C + c];
            for (int n = 0; n < N; n++) s += (double)dy[(size_t)n * OC + o] * x[(size_t)n * C + c];
            dw[(size_t)o * C + c] = s;
        }
    }
    float *d_x = bt_up(x, (size_t)N * C), *d_w = bt_up(w, (size_t)OC * C), *d_b = b ? bt_up(b, OC) : NULL;
    float *d_y = bt_dev_zeros((size_t)N * OC), *d_dy = bt_up(dy, (size_t)N * OC);
    linear_forward(d_y, d_x, d_w, d_b, N, C, OC);
    bt_close("linear_forward", d_y, y, (size_t)N * OC, TOL);
    // dinp written (its start is garbage), dweight and dbias accumulated
    float *d_dx = bt_up(dx0, (size_t)N * C), *d_dw = bt_up(dw0, (size_t)OC * C), *d_db = bt_up(db0, OC);
    linear_backward(d_dx, d_dw, d_db, d_dy, d_x, d_w, N, C, OC);
    bt_close("linear_backward dinp", d_dx, dx, (size_t)N * C, TOL);
    bt_close("linear_backward dweight", d_dw, dw, (size_t)OC * C, TOL);
    bt_close("linear_backward dbias", d_db, db, OC, TOL);
    // the same call again on fresh buffers: the same bits
    float *e_dx = bt_up(dx0, (size_t)N * C), *e_dw = bt_up(dw0, (size_t)OC * C), *e_db = bt_up(db0, OC);
    linear_backward(e_dx, e_dw, e_db, d_dy, d_x, d_w, N, C, OC);
    bt_same("linear_backward dinp twice", e_dx, d_dx, (size_t)N * C);
    bt_same("linear_backward dweight twice", e_dw, d_dw, (size_t)OC * C);
    bt_same("linear_backward dbias twice", e_db, d_db, OC);
    // _acc adds dinp to what is there; NULL gradients are skipped
    for (size_t i = 0; i < (size_t)N * C; i++) dx[i] += dx0[i];
    device_upload(d_dx, dx0, sizeof(float) * N * C);
    linear_backward_acc(d_dx, NULL, NULL, d_dy, d_x, d_w, N, C, OC);
    bt_close("linear_backward_acc dinp", d_dx, dx, (size_t)N * C, TOL);
    linear_backward(NULL, NULL, NULL, d_dy, d_x, d_w, N, C, OC);
}

START_TEST(linear) {
    bt_seed(21);
    linear_case(37, 45, 29, 1);
    linear_case(5, 13, 1, 0);
    // a weight gradient over several blocks of LINEAR_DW_SCRATCH floats
    linear_case(6, 512, LINEAR_DW_SCRATCH / 512 + 77, 1);
    ck_assert(linear_workspace_bytes(1000) >= sizeof(float) * LINEAR_DW_SCRATCH);
    bt_free_all();
}
END_TEST

// lora.c's dropout mask: splitmix64 of (seed, stream, i / 4), 16 bits an element
static int lora_keep(LoraDropout d, size_t i) {
    uint64_t z = d.seed ^ (d.stream * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(i / 4) * 0xBF58476D1CE4E5B9ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((uint32_t)(z >> (16 * (i % 4))) & 0xFFFF) >= (uint32_t)((double)d.p * 65536.0 + 0.5);
}

static void lora_case(float p, int with_dx) {
    int N = 23, in = 37, out = 19, r = 5, ldy = out + 11;
    float scale = 2.0f;
    LoraDropout d = {p, 1234, 77};
    float *x = bt_randn((size_t)N * in, 1.0f), *A = bt_randn((size_t)r * in, 0.3f), *B = bt_randn((size_t)out * r, 0.3f);
    float *y0 = bt_randn((size_t)N * ldy, 1.0f), *dy = bt_randn((size_t)N * ldy, 1.0f);
    float *dA0 = bt_randn((size_t)r * in, 1.0f), *dB0 = bt_randn((size_t)out * r, 1.0f), *dx0 = bt_randn((size_t)N * in, 1.0f);
    // the reference: u = dropout(x) in float (as the kernels scale it), products in double
    float *u = bt_host(sizeof(float) * N * in), keep_scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < (size_t)N * in; i++) u[i] = p <= 0.0f ? x[i] : lora_keep(d, i) ? x[i] * keep_scale : 0.0f;
    double *t = bt_dzeros((size_t)N * r), *y = bt_dzeros((size_t)N * ldy), *dt = bt_dzeros((size_t)N * r);
    double *dA = bt_dzeros((size_t)r * in), *dB = bt_dzeros((size_t)out * r), *dx = bt_dzeros((size_t)N * in);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < r; k++)
            for (int i = 0; i < in; i++) t[n * r + k] += (double)u[n * in + i] * A[k * in + i];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < ldy; o++) {
            double s = y0[n * ldy + o];
            for (int k = 0; k < r && o < out; k++) s += scale * t[n * r + k] * B[o * r + k];
            y[n * ldy + o] = s;
        }
    for (int n = 0; n < N; n++)
        for (int k = 0; k < r; k++)
            for (int o = 0; o < out; o++) dt[n * r + k] += scale * (double)dy[n * ldy + o] * B[o * r + k];
    for (int o = 0; o < out; o++)
        for (int k = 0; k < r; k++) {
            double s = dB0[o * r + k];
            for (int n = 0; n < N; n++) s += scale * (double)dy[n * ldy + o] * t[n * r + k];
            dB[o * r + k] = s;
        }
    for (int k = 0; k < r; k++)
        for (int i = 0; i < in; i++) {
            double s = dA0[k * in + i];
            for (int n = 0; n < N; n++) s += dt[n * r + k] * u[n * in + i];
            dA[k * in + i] = s;
        }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < in; i++) {
            double s = 0.0;
            for (int k = 0; k < r; k++) s += dt[n * r + k] * A[k * in + i];
            size_t e = (size_t)n * in + i;
            dx[e] = dx0[e] + (p <= 0.0f ? s : lora_keep(d, e) ? s * keep_scale : 0.0);
        }
    float *d_x = bt_up(x, (size_t)N * in), *d_A = bt_up(A, (size_t)r * in), *d_B = bt_up(B, (size_t)out * r);
    float *d_y = bt_up(y0, (size_t)N * ldy), *d_t = bt_dev_zeros((size_t)N * r), *d_xd = bt_dev_zeros((size_t)N * in);
    lora_forward(d_y, ldy, d_x, d_A, d_B, d_t, d_xd, N, in, out, r, scale, d);
    bt_close("lora_forward t", d_t, t, (size_t)N * r, TOL);
    bt_close("lora_forward y", d_y, y, (size_t)N * ldy, TOL);
    size_t wn = (size_t)r * in > (size_t)out * r ? (size_t)r * in : (size_t)out * r;
    float *d_dA = bt_up(dA0, (size_t)r * in), *d_dB = bt_up(dB0, (size_t)out * r), *d_dx = bt_up(dx0, (size_t)N * in);
    float *d_dt = bt_dev_zeros((size_t)N * r), *d_w = bt_dev_zeros(wn);
    lora_backward(with_dx ? d_dx : NULL, d_dA, d_dB, bt_up(dy, (size_t)N * ldy), ldy, d_x, d_A, d_B, d_t, d_dt, d_xd, d_w,
                  N, in, out, r, scale, d);
    bt_close("lora_backward dA", d_dA, dA, (size_t)r * in, TOL);
    bt_close("lora_backward dB", d_dB, dB, (size_t)out * r, TOL);
    if (with_dx) bt_close("lora_backward dx", d_dx, dx, (size_t)N * in, TOL);
    else bt_exact("lora_backward without dx", d_dx, dx0, (size_t)N * in);
}

START_TEST(lora) {
    bt_seed(22);
    lora_case(0.0f, 1);
    lora_case(0.25f, 1);
    lora_case(0.1f, 0);
    // the merge: W += scale B A
    int in = 31, out = 17, r = 3;
    float *W = bt_randn((size_t)out * in, 1.0f), *A = bt_randn((size_t)r * in, 1.0f), *B = bt_randn((size_t)out * r, 1.0f);
    double *want = bt_dzeros((size_t)out * in);
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++) {
            double s = W[o * in + i];
            for (int k = 0; k < r; k++) s += 0.5 * B[o * r + k] * A[k * in + i];
            want[o * in + i] = s;
        }
    float *dW = bt_up(W, (size_t)out * in);
    lora_merge(dW, bt_up(A, (size_t)r * in), bt_up(B, (size_t)out * r), in, out, r, 0.5f);
    bt_close("lora_merge", dW, want, (size_t)out * in, TOL);
    bt_free_all();
}
END_TEST

START_TEST(patch_embed) {
    bt_seed(23);
    int B = 2, S = 12, P = 4, G = S / P, NP = G * G, K = 3 * P * P, C = 20;
    float *pix = bt_randn((size_t)B * 3 * S * S, 1.0f), *cols = bt_host(sizeof(float) * B * NP * K);
    for (int b = 0; b < B; b++)
        for (int p = 0; p < NP; p++)
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    for (int kx = 0; kx < P; kx++)
                        cols[((size_t)b * NP + p) * K + (c * P + ky) * P + kx] =
                            pix[(((size_t)b * 3 + c) * S + p / G * P + ky) * S + p % G * P + kx];
    float *d_cols = bt_dev_zeros((size_t)B * NP * K);
    patch_im2col(d_cols, bt_up(pix, (size_t)B * 3 * S * S), B, S, P);
    bt_exact("patch_im2col", d_cols, cols, (size_t)B * NP * K);
    float *w = bt_randn((size_t)C * K, 0.1f), *dy = bt_randn((size_t)B * NP * C, 1.0f), *dw0 = bt_randn((size_t)C * K, 1.0f);
    double *y = bt_dzeros((size_t)B * NP * C), *dw = bt_dzeros((size_t)C * K);
    matmul_ref(y, cols, w, NULL, B * NP, K, C);
    for (int o = 0; o < C; o++)
        for (int k = 0; k < K; k++) {
            double s = dw0[o * K + k];
            for (int n = 0; n < B * NP; n++) s += (double)dy[(size_t)n * C + o] * cols[(size_t)n * K + k];
            dw[o * K + k] = s;
        }
    float *d_y = bt_dev_zeros((size_t)B * NP * C), *d_dw = bt_up(dw0, (size_t)C * K);
    patch_embed_forward(d_y, d_cols, bt_up(w, (size_t)C * K), B, NP, P, C);
    bt_close("patch_embed_forward", d_y, y, (size_t)B * NP * C, TOL);
    patch_embed_backward(d_dw, bt_up(dy, (size_t)B * NP * C), d_cols, B, NP, P, C);
    bt_close("patch_embed_backward", d_dw, dw, (size_t)C * K, TOL);
    // the ViT's input rows: cls then the patches, plus the positions
    int T = NP + 1;
    float *patches = bt_randn((size_t)B * NP * C, 1.0f), *cls = bt_randn(C, 1.0f), *pos = bt_randn((size_t)T * C, 1.0f);
    float *emb = bt_host(sizeof(float) * B * T * C), *demb = bt_randn((size_t)B * T * C, 1.0f);
    float *dcls0 = bt_randn(C, 1.0f), *dpos0 = bt_randn((size_t)T * C, 1.0f);
    float *dpatches = bt_host(sizeof(float) * B * NP * C), *dcls = bt_host(sizeof(float) * C), *dpos = bt_host(sizeof(float) * T * C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++) {
                float src = t == 0 ? cls[i] : patches[((size_t)b * NP + t - 1) * C + i];
                emb[((size_t)b * T + t) * C + i] = src + pos[t * C + i];
                if (t > 0) dpatches[((size_t)b * NP + t - 1) * C + i] = demb[((size_t)b * T + t) * C + i];
            }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += demb[((size_t)b * T + t) * C + i];
            dpos[t * C + i] = dpos0[t * C + i] + s;
            if (t == 0) dcls[i] = dcls0[i] + s;
        }
    float *d_emb = bt_dev_zeros((size_t)B * T * C), *d_dp = bt_dev_zeros((size_t)B * NP * C);
    float *d_dcls = bt_up(dcls0, C), *d_dpos = bt_up(dpos0, (size_t)T * C), *d_demb = bt_up(demb, (size_t)B * T * C);
    vit_embed_forward(d_emb, bt_up(patches, (size_t)B * NP * C), bt_up(cls, C), bt_up(pos, (size_t)T * C), B, NP, C);
    bt_exact("vit_embed_forward", d_emb, emb, (size_t)B * T * C);
    vit_embed_backward(d_dp, d_dcls, d_dpos, d_demb, B, NP, C);
    bt_exact("vit_embed_backward dpatches", d_dp, dpatches, (size_t)B * NP * C);
    bt_exact("vit_embed_backward dcls", d_dcls, dcls, C);
    bt_exact("vit_embed_backward dpos", d_dpos, dpos, (size_t)T * C);
    vit_embed_backward(NULL, NULL, d_dpos, d_demb, B, NP, C);  // dpos alone: accumulates once more
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += demb[((size_t)b * T + t) * C + i];
            dpos[t * C + i] += s;
        }
    bt_exact("vit_embed_backward dpos again", d_dpos, dpos, (size_t)T * C);
    bt_free_all();
}
END_TEST

// layernorm (rms 0) or rmsnorm (rms 1, with which when rows == 2) forward and backward against double loops
static void norm_case(int rms, int N, int C, int rows, int with_bias) {
    float eps = rms ? 1e-6f : 1e-5f;
    float *x = bt_randn((size_t)N * C, 2.0f), *w = bt_randn((size_t)rows * C, 1.0f), *b = with_bias ? bt_randn(C, 1.0f) : NULL;
    float *dy = bt_randn((size_t)N * C, 1.0f), *dx0 = bt_randn((size_t)N * C, 1.0f), *dw0 = bt_randn((size_t)rows * C, 1.0f);
    float *db0 = bt_randn(C, 1.0f);
    uint8_t *which = NULL;
    if (rows == 2) {
        which = bt_host(N);
        for (int n = 0; n < N; n++) which[n] = (uint8_t)(n % 3 == 1);
    }
    double *y = bt_dzeros((size_t)N * C), *mean = bt_dzeros(N), *rstd = bt_dzeros(N), *dx = bt_dzeros((size_t)N * C);
    double *dw = bt_dzeros((size_t)rows * C), *db = bt_dzeros(C);
    for (size_t i = 0; i < (size_t)rows * C; i++) dw[i] = dw0[i];
    for (int i = 0; i < C; i++) db[i] = db0[i];
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *wr = w + (which ? (size_t)which[n] * C : 0);
        const float *d = dy + (size_t)n * C;
        double m = 0.0, v = 0.0;
        if (!rms) {
            for (int i = 0; i < C; i++) m += xr[i];
            m /= C;
        }
        for (int i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m);
        double s = 1.0 / sqrt(v / C + eps), a = 0.0, bsum = 0.0;
        mean[n] = m, rstd[n] = s;
        for (int i = 0; i < C; i++) {
            double xhat = (xr[i] - m) * s;
            y[(size_t)n * C + i] = xhat * wr[i] + (b ? b[i] : 0.0);
            a += d[i] * wr[i], bsum += d[i] * wr[i] * xhat;
            dw[(which ? (size_t)which[n] * C : 0) + i] += d[i] * xhat;
            db[i] += d[i];
        }
        for (int i = 0; i < C; i++) {
            double xhat = (xr[i] - m) * s, g = d[i] * wr[i];
            dx[(size_t)n * C + i] = dx0[(size_t)n * C + i] + (rms ? s * g - xhat * s * bsum / C : (g - a / C - xhat * bsum / C) * s);
        }
    }
    float *d_x = bt_up(x, (size_t)N * C), *d_w = bt_up(w, (size_t)rows * C), *d_b = b ? bt_up(b, C) : NULL;
    uint8_t *d_which = which ? bt_up_bytes(which, N) : NULL;
    float *d_y = bt_dev_zeros((size_t)N * C), *d_mean = bt_dev_zeros(N), *d_rstd = bt_dev_zeros(N);
    if (rms) rmsnorm_forward(d_y, d_rstd, d_x, d_w, d_which, N, C, eps);
    else layernorm_forward(d_y, d_mean, d_rstd, d_x, d_w, d_b, N, C, eps);
    bt_close("norm forward", d_y, y, (size_t)N * C, TOL);
    bt_close("norm rstd", d_rstd, rstd, N, TOL);
    if (!rms) bt_close("layernorm mean", d_mean, mean, N, TOL);
    for (int pass = 0; pass < 2; pass++) {  // twice on fresh buffers: the same bits
        float *d_dx = bt_up(dx0, (size_t)N * C), *d_dw = bt_up(dw0, (size_t)rows * C), *d_db = bt_up(db0, C);
        float *d_dy = bt_up(dy, (size_t)N * C);
        if (rms) rmsnorm_backward(d_dx, d_dw, d_dy, d_x, d_w, d_which, d_rstd, N, C);
        else layernorm_backward(d_dx, d_dw, b ? d_db : NULL, d_dy, d_x, d_w, d_mean, d_rstd, N, C);
        bt_close("norm backward dinp (accumulated)", d_dx, dx, (size_t)N * C, TOL);
        bt_close("norm backward dweight (accumulated)", d_dw, dw, (size_t)rows * C, TOL);
        if (b) bt_close("layernorm backward dbias (accumulated)", d_db, db, C, TOL);
        static float *first[3];
        if (pass == 0) first[0] = d_dx, first[1] = d_dw, first[2] = d_db;
        else {
            bt_same("norm backward dinp twice", d_dx, first[0], (size_t)N * C);
            bt_same("norm backward dweight twice", d_dw, first[1], (size_t)rows * C);
            bt_same("norm backward dbias twice", d_db, first[2], C);
        }
    }
}

START_TEST(norms) {
    bt_seed(24);
    norm_case(0, 37, 300, 1, 1);
    norm_case(0, 300, 19, 1, 0);  // more rows than a column-sum chunk
    norm_case(1, 41, 257, 1, 0);
    norm_case(1, 29, 64, 2, 0);  // mPLUG-Owl2's per-modality weights
    bt_free_all();
}
END_TEST

Suite *backend_dense_suite(void) {
    Suite *s = suite_create("backend_dense");
    TCase *tc = tcase_create("backend_dense");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, linear);
    tcase_add_test(tc, lora);
    tcase_add_test(tc, patch_embed);
    tcase_add_test(tc, norms);
    suite_add_tcase(s, tc);
    return s;
}
