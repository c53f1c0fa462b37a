// Backend suite: the element-wise kernels (activations, residual, scale,
// RoPE, AdamW and the squared norms, mean pooling) against plain loops.
// Tolerances: the activations 1e-6 norm-wise (the backends' expf / erff
// differ by a few ulp from the double reference); the rest is one rounding
// per operation in a spelt-out order, so bit for bit (AdamW, RoPE's rotation
// and tables, the residual, pooling); the squared norms (double sums in
// another order) 1e-12.
#include <math.h>
#include <string.h>

#include "backend_util.h"
#include "kernels/activation.h"
#include "kernels/adamw.h"
#include "kernels/device.h"
#include "kernels/pool.h"
#include "kernels/residual.h"
#include "kernels/rope.h"

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

START_TEST(activations) {
    bt_seed(11);
    size_t n = 70001;
    float *x = bt_randn(n, 3.0f), *dy = bt_randn(n, 1.0f);
    float *dx = bt_up(x, n), *ddy = bt_up(dy, n), *dout = bt_dev_zeros(n), *dgrad = bt_dev_zeros(n);
    double *fwd = bt_dzeros(n), *bwd = bt_dzeros(n);
    for (int kind = 0; kind < 3; kind++) {
        for (size_t i = 0; i < n; i++) {
            double v = x[i];
            if (kind == 0) {
                double s = sigmoid(1.702 * v);
                fwd[i] = v * s, bwd[i] = dy[i] * (s + 1.702 * v * s * (1 - s));
            } else if (kind == 1) {
                fwd[i] = 0.5 * v * (1 + erf(v / sqrt(2.0)));
                bwd[i] = dy[i] * (0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI));
            } else {
                fwd[i] = v > 0 ? v : 0, bwd[i] = v > 0 ? dy[i] : 0;
            }
        }
        static const char *names[] = {"quick_gelu", "gelu", "relu"};
        if (kind == 0) quick_gelu_forward(dout, dx, n), quick_gelu_backward(dgrad, ddy, dx, n);
        if (kind == 1) gelu_forward(dout, dx, n), gelu_backward(dgrad, ddy, dx, n);
        if (kind == 2) relu_forward(dout, dx, n), relu_backward(dgrad, ddy, dx, n);
        bt_close(names[kind], dout, fwd, n, 1e-6);
        bt_close(names[kind], dgrad, bwd, n, 1e-6);
    }
    bt_free_all();
}
END_TEST

START_TEST(swiglu) {
    bt_seed(12);
    int N = 37, I = 301;
    float *gu = bt_randn((size_t)N * 2 * I, 2.0f), *dy = bt_randn((size_t)N * I, 1.0f);
    double *fwd = bt_dzeros((size_t)N * I), *bwd = bt_dzeros((size_t)N * 2 * I);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < I; i++) {
            double g = gu[(size_t)n * 2 * I + i], u = gu[(size_t)n * 2 * I + I + i], s = sigmoid(g), d = dy[(size_t)n * I + i];
            fwd[(size_t)n * I + i] = g * s * u;
            bwd[(size_t)n * 2 * I + i] = d * u * (s + g * s * (1 - s));
            bwd[(size_t)n * 2 * I + I + i] = d * g * s;
        }
    float *dgu = bt_up(gu, (size_t)N * 2 * I), *ddy = bt_up(dy, (size_t)N * I);
    float *out = bt_dev_zeros((size_t)N * I), *dg = bt_dev_zeros((size_t)N * 2 * I);
    swiglu_forward(out, dgu, N, I);
    swiglu_backward(dg, ddy, dgu, N, I);
    bt_close("swiglu forward", out, fwd, (size_t)N * I, 1e-6);
    bt_close("swiglu backward", dg, bwd, (size_t)N * 2 * I, 1e-6);
    bt_free_all();
}
END_TEST

START_TEST(residual_scale) {
    bt_seed(13);
    size_t n = 12345;
    float *a = bt_randn(n, 1.0f), *b = bt_randn(n, 1.0f), *sum = bt_host(sizeof(float) * n), *scaled = bt_host(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) sum[i] = a[i] + b[i], scaled[i] = 0.37f * a[i];
    float *da = bt_up(a, n), *db = bt_up(b, n), *out = bt_dev_zeros(n);
    residual_forward(out, da, db, n);
    bt_exact("residual", out, sum, n);
    residual_forward(da, da, db, n);  // in place
    bt_exact("residual in place", da, sum, n);
    device_upload(da, a, sizeof(float) * n);
    scale_forward(out, da, 0.37f, n);
    bt_exact("scale", out, scaled, n);
    bt_free_all();
}
END_TEST

START_TEST(rope) {
    bt_seed(14);
    int B = 2, T = 19, NH = 3, HS = 10, ld = NH * HS + 14, half = HS / 2;
    RopeConfig cfgs[2] = {{10000.0f, 0, 0, 0, 0}, {500000.0f, 8.0f, 1.0f, 4.0f, 16}};  // plain, llama3 scaling
    for (int ci = 0; ci < 2; ci++) {
        const RopeConfig *cfg = &cfgs[ci];
        // the tables: the same float arithmetic as rope.c (both backends make them on the host)
        float *f = bt_host(sizeof(float) * half), *c = bt_host(sizeof(float) * T * half), *s = bt_host(sizeof(float) * T * half);
        for (int i = 0; i < half; i++) {
            float v = 1.0f / powf(cfg->theta, (float)(2 * i) / (float)HS);
            if (cfg->factor > 0) {
                float low = (float)((double)cfg->original_max_position / cfg->low_freq_factor);
                float high = (float)((double)cfg->original_max_position / cfg->high_freq_factor);
                float wl = (1.0f / v) * (float)(2 * M_PI);
                if (wl > low) {
                    v = v / cfg->factor;
                } else if (wl >= high) {
                    float sm = ((1.0f / wl) * (float)cfg->original_max_position - cfg->low_freq_factor) /
                               (float)((double)cfg->high_freq_factor - cfg->low_freq_factor);
                    v = (1.0f - sm) * v / cfg->factor + sm * v;
                }
            }
            f[i] = v;
        }
        for (int t = 0; t < T; t++)
            for (int i = 0; i < half; i++) c[t * half + i] = cosf((float)t * f[i]), s[t * half + i] = sinf((float)t * f[i]);
        float *df = bt_dev_zeros(half), *dc = bt_dev_zeros((size_t)T * half), *ds = bt_dev_zeros((size_t)T * half);
        rope_inv_freq(df, HS, cfg);
        bt_exact("rope_inv_freq", df, f, half);
        float *hf = bt_host(sizeof(float) * half);  // into host memory too (rope.h)
        rope_inv_freq(hf, HS, cfg);
        ck_assert_mem_eq(hf, f, sizeof(float) * half);
        rope_tables(dc, ds, df, T, HS);
        bt_exact("rope cos", dc, c, (size_t)T * half);
        bt_exact("rope sin", ds, s, (size_t)T * half);
        // the rotation of the first NH heads of each row; the rest of the row untouched
        size_t n = (size_t)B * T * ld;
        float *x = bt_randn(n, 1.0f), *want = bt_host(sizeof(float) * n), *back = bt_host(sizeof(float) * n);
        memcpy(want, x, sizeof(float) * n);
        for (int r = 0; r < B * T; r++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < half; i++) {
                    int t = r % T;
                    float *v = want + (size_t)r * ld + h * HS, x1 = v[i], x2 = v[i + half];
                    float co = c[t * half + i], si = s[t * half + i];
                    v[i] = x1 * co - x2 * si, v[i + half] = x2 * co + x1 * si;
                }
        memcpy(back, want, sizeof(float) * n);
        for (int r = 0; r < B * T; r++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < half; i++) {
                    int t = r % T;
                    float *v = back + (size_t)r * ld + h * HS, x1 = v[i], x2 = v[i + half];
                    float co = c[t * half + i], si = -1.0f * s[t * half + i];
                    v[i] = x1 * co - x2 * si, v[i + half] = x2 * co + x1 * si;
                }
        float *dx = bt_up(x, n);
        rope_forward(dx, dc, ds, B, T, NH, HS, ld);
        bt_exact("rope_forward", dx, want, n);
        rope_backward(dx, dc, ds, B, T, NH, HS, ld);
        bt_exact("rope_backward", dx, back, n);
    }
    bt_free_all();
}
END_TEST

// adamw.c's update in its order, one rounding per operation
static void adamw_ref(float *p, const float *g, float *m, float *v, size_t n, AdamWScalars s) {
    for (size_t i = 0; i < n; i++) {
        p[i] *= s.decay;
        m[i] = m[i] + s.w1 * (g[i] - m[i]);
        v[i] = v[i] * s.beta2 + s.w2 * g[i] * g[i];
        float denom = sqrtf(v[i]) / s.bc2_sqrt + s.eps;
        p[i] += -s.step_size * (m[i] / denom);
    }
}

START_TEST(adamw) {
    bt_seed(15);
    enum { K = 4 };
    size_t sizes[K] = {1, 1000, 70001, 0};
    AdamWScalars sc[K];
    float *p[K], *g[K], *m[K], *v[K], *dp[K], *dg[K], *dm[K], *dv[K], *sp[K], *sm[K], *sv[K];
    AdamWTensor list[K];
    for (int t = 0; t < K; t++) {
        size_t n = sizes[t];
        sc[t] = (AdamWScalars){1.0f - 2e-4f * (t + 1), 0.1f, 0.999f, 1e-3f, sqrtf(1 - powf(0.999f, (float)(t + 3))), 1e-8f,
                               2e-4f / (1 - powf(0.9f, (float)(t + 3)))};
        p[t] = bt_randn(n, 1.0f), g[t] = bt_randn(n, 0.01f), m[t] = bt_randn(n, 0.01f), v[t] = bt_randn(n, 1e-4f);
        for (size_t i = 0; i < n; i++) v[t][i] = fabsf(v[t][i]);
        dp[t] = bt_up(p[t], n), dg[t] = bt_up(g[t], n), dm[t] = bt_up(m[t], n), dv[t] = bt_up(v[t], n);
        sp[t] = bt_up(p[t], n), sm[t] = bt_up(m[t], n), sv[t] = bt_up(v[t], n);
        list[t] = (AdamWTensor){dp[t], dg[t], dm[t], dv[t], n, sc[t]};
    }
    adamw_multi_kernel(list, K);
    for (int t = 0; t < K; t++) {
        adamw_kernel(sp[t], dg[t], sm[t], sv[t], sizes[t], sc[t]);
        adamw_ref(p[t], g[t], m[t], v[t], sizes[t], sc[t]);
        bt_exact("adamw_multi_kernel p", dp[t], p[t], sizes[t]);
        bt_exact("adamw_multi_kernel m", dm[t], m[t], sizes[t]);
        bt_exact("adamw_multi_kernel v", dv[t], v[t], sizes[t]);
        bt_exact("adamw_kernel p", sp[t], p[t], sizes[t]);
        bt_exact("adamw_kernel m", sm[t], m[t], sizes[t]);
        bt_exact("adamw_kernel v", sv[t], v[t], sizes[t]);
    }
    bt_free_all();
}
END_TEST

START_TEST(sumsq) {
    bt_seed(16);
    size_t n = 200003, unit = 65536, units = (n + unit - 1) / unit;
    float *x = bt_randn(n, 2.0f), *dx = bt_up(x, n);
    double *want = bt_dzeros(units), all = 0.0;
    for (size_t i = 0; i < n; i++) want[i / unit] += (double)x[i] * x[i], all += (double)x[i] * x[i];
    bt_close_scalar("sumsq_kernel", sumsq_kernel(dx, n), all, 1e-12);
    bt_close_scalar("sumsq_kernel of 1", sumsq_kernel(dx + 5, 1), (double)x[5] * x[5], 0);
    double *dsums = bt_dev(sizeof(double) * units), got[4];
    sumsq_units_kernel(dsums, dx, n, unit);
    device_download(got, dsums, sizeof(double) * units);
    for (size_t k = 0; k < units; k++) bt_close_scalar("sumsq_units_kernel", got[k], want[k], 1e-12);
    ck_assert_double_eq(got[0], sumsq_kernel(dx, unit));  // one unit's sum, either way
    bt_free_all();
}
END_TEST

START_TEST(pool) {
    bt_seed(17);
    int R = 5, group = 7, C = 33;
    size_t nin = (size_t)R * group * C;
    float *x = bt_randn(nin, 1.0f), *dy = bt_randn((size_t)R * C, 1.0f), *g0 = bt_randn(nin, 1.0f);
    float *fwd = bt_host(sizeof(float) * R * C), *bwd = bt_host(sizeof(float) * nin);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int j = 0; j < group; j++) s += x[((size_t)r * group + j) * C + c];
            fwd[r * C + c] = s / (float)group;
            for (int j = 0; j < group; j++) {
                size_t e = ((size_t)r * group + j) * C + c;
                bwd[e] = g0[e] + dy[r * C + c] / (float)group;
            }
        }
    float *dx = bt_up(x, nin), *out = bt_dev_zeros((size_t)R * C), *dg = bt_up(g0, nin);
    group_mean_forward(out, dx, R, group, C);
    bt_exact("group_mean_forward", out, fwd, (size_t)R * C);
    group_mean_backward(dg, bt_up(dy, (size_t)R * C), R, group, C);  // accumulates
    bt_exact("group_mean_backward", dg, bwd, nin);
    bt_free_all();
}
END_TEST

Suite *backend_elementwise_suite(void) {
    Suite *s = suite_create("backend_elementwise");
    TCase *tc = tcase_create("backend_elementwise");
    tcase_add_test(tc, activations);
    tcase_add_test(tc, swiglu);
    tcase_add_test(tc, residual_scale);
    tcase_add_test(tc, rope);
    tcase_add_test(tc, adamw);
    tcase_add_test(tc, sumsq);
    tcase_add_test(tc, pool);
    suite_add_tcase(s, tc);
    return s;
}
