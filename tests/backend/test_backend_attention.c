// Backend suite: self-attention (causal, bidirectional, padding, GQA, the
// sliding window, a sample of length 0, packed and separate projections,
// heads of 16 to 256) and cross-attention, forward and backward, against the
// softmax in double. Tolerance 1e-5 norm-wise relative for out, lse (the
// +inf of rows that see no key bit for bit), dq, dk, dv; columns outside the
// heads keep what they held; the backward run twice gives the same bits.
#include <math.h>
#include <string.h>

#include "backend_util.h"
#include "kernels/attention.h"
#include "kernels/cross_attention.h"
#include "kernels/device.h"

#define TOL 1e-5

typedef struct {
    int B, Tq, Tk, NH, NKV, HS, ldq, ldk, causal;
    const int *lengths;  // host, or NULL
    float scale;
} Shape;

static int sees(const Shape *s, int b, int i, int j) {
    int len = s->lengths ? s->lengths[b] : s->Tk;
    return j < len && (s->causal == 0 || (j <= i && (s->causal == 1 || j > i - s->causal)));
}

// out (B, Tq, NH*HS), lse (B, NH, Tq); dq, dk, dv as q, k, v (only their heads' columns: the
// callers start them from the buffers' initial contents)
static void attention_ref(const Shape *s, const float *q, const float *k, const float *v, const float *dout, double *out,
                          double *lse, double *dq, double *dk, double *dv) {
    int HS = s->HS, group = s->NH / s->NKV, ldo = s->NH * HS;
    double *p = bt_dzeros(s->Tk), *dp = bt_dzeros(s->Tk);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++) {
            int kv = h / group;
            for (int i = 0; i < s->Tq; i++) {
                const float *qi = q + ((size_t)b * s->Tq + i) * s->ldq + h * HS;
                size_t orow = ((size_t)b * s->Tq + i) * ldo + h * HS;
                double max = -INFINITY, sum = 0.0;
                for (int j = 0; j < s->Tk; j++) {
                    p[j] = -INFINITY;
                    if (!sees(s, b, i, j)) continue;
                    const float *kj = k + ((size_t)b * s->Tk + j) * s->ldk + kv * HS;
                    double d = 0.0;
                    for (int c = 0; c < HS; c++) d += (double)qi[c] * kj[c];
                    p[j] = s->scale * d;
                    max = fmax(max, p[j]);
                }
                size_t l = ((size_t)b * s->NH + h) * s->Tq + i;
                if (max == -INFINITY) {  // no key: a zero row, lse +inf, no gradient
                    lse[l] = INFINITY;
                    for (int c = 0; c < HS; c++) out[orow + c] = 0.0;
                    continue;
                }
                for (int j = 0; j < s->Tk; j++) sum += p[j] = p[j] == -INFINITY ? 0.0 : exp(p[j] - max);
                lse[l] = max + log(sum);
                for (int c = 0; c < HS; c++) {
                    double o = 0.0;
                    for (int j = 0; j < s->Tk; j++)
                        if (p[j] != 0.0) o += p[j] / sum * v[((size_t)b * s->Tk + j) * s->ldk + kv * HS + c];
                    out[orow + c] = o;
                }
                for (int j = 0; j < s->Tk; j++) p[j] /= sum;
                // backward: dp = dout v^T, ds = p (dp - D) scale, D = sum_j p dp
                const float *di = dout + orow;
                double D = 0.0;
                for (int j = 0; j < s->Tk; j++) {
                    dp[j] = 0.0;
                    if (p[j] == 0.0) continue;
                    for (int c = 0; c < HS; c++) dp[j] += (double)di[c] * v[((size_t)b * s->Tk + j) * s->ldk + kv * HS + c];
                    D += p[j] * dp[j];
                }
                for (int j = 0; j < s->Tk; j++) {
                    if (p[j] == 0.0) continue;
                    double ds = p[j] * (dp[j] - D) * s->scale;
                    size_t kr = ((size_t)b * s->Tk + j) * s->ldk + kv * HS, qr = ((size_t)b * s->Tq + i) * s->ldq + h * HS;
                    for (int c = 0; c < HS; c++) {
                        dq[qr + c] += ds * k[kr + c];
                        dk[kr + c] += ds * qi[c];
                        dv[kr + c] += p[j] * di[c];
                    }
                }
            }
        }
}

// lse: the +inf entries bit for bit, the others within TOL
static void check_lse(const char *what, const float *got_dev, const double *ref, size_t n) {
    const float *got = bt_down(got_dev, n);
    double *fin = bt_dzeros(n);
    float *gfin = bt_host(sizeof(float) * n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(ref[i])) {
            ck_assert_msg(isinf(got[i]) && got[i] > 0, "%s[%zu]: %g, expected +inf (a row that sees no key)", what, i,
                          (double)got[i]);
            continue;
        }
        fin[m] = ref[i], gfin[m++] = got[i];
    }
    bt_close(what, bt_up(gfin, m), fin, m, TOL);
}

// dq, dk, dv's expected contents: the reference's sums over their heads' columns, the initial
// values (init, per buffer) elsewhere
static double *expected_grads(const float *init, size_t n) {
    double *e = bt_dzeros(n);
    for (size_t i = 0; i < n; i++) e[i] = init[i];
    return e;
}
static void zero_heads(double *g, int rows, int ld, int first_col, int cols) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) g[(size_t)r * ld + first_col + c] = 0.0;
}

// One self-attention case; packed: q | k | v in one buffer (ld its row), else three buffers of ld floats
static void self_case(int B, int T, int NH, int NKV, int HS, int causal, const int *lengths, int packed) {
    int ld = packed ? (NH + 2 * NKV) * HS : NH * HS + 5, ldo = NH * HS;
    Shape s = {B, T, T, NH, NKV, HS, ld, ld, causal, lengths, 1.0f / sqrtf((float)HS)};
    size_t n = (size_t)B * T * ld, no = (size_t)B * T * ldo, nl = (size_t)B * NH * T;
    // buffers: q, k, v (three of n, or one packed); the gradients the same, prefilled with garbage
    float *hq = bt_randn(n, 1.0f), *hk = packed ? hq : bt_randn(n, 1.0f), *hv = packed ? hq : bt_randn(n, 1.0f);
    float *gq = bt_randn(n, 1.0f), *gk = packed ? gq : bt_randn(n, 1.0f), *gv = packed ? gq : bt_randn(n, 1.0f);
    int kcol = packed ? NH * HS : 0, vcol = packed ? (NH + NKV) * HS : 0;
    float *dout = bt_randn(no, 1.0f);
    double *out = bt_dzeros(no), *lse = bt_dzeros(nl);
    double *eq = expected_grads(gq, n), *ek = packed ? eq : expected_grads(gk, n), *ev = packed ? eq : expected_grads(gv, n);
    zero_heads(eq, B * T, ld, 0, NH * HS), zero_heads(ek, B * T, ld, kcol, NKV * HS), zero_heads(ev, B * T, ld, vcol, NKV * HS);
    attention_ref(&s, hq, hk + kcol, hv + vcol, dout, out, lse, eq, ek + kcol, ev + vcol);
    float *dq = bt_up(hq, n), *dk = packed ? dq : bt_up(hk, n), *dv = packed ? dq : bt_up(hv, n);
    int *dlen = lengths ? bt_up_bytes(lengths, sizeof(int) * B) : NULL;
    float *d_out = bt_dev_zeros(no), *d_lse = bt_dev_zeros(nl), *d_dout = bt_up(dout, no);
    size_t scratch_n = attention_scratch_floats(T);
    float *scratch = bt_dev_zeros(scratch_n ? scratch_n : 1);
    ck_assert_uint_eq(attention_state_floats(B, NH, T), nl);
    attention_forward(d_out, d_lse, dq, dk + kcol, dv + vcol, ld, dlen, B, T, NH, NKV, HS, causal, scratch);
    bt_close("attention_forward out", d_out, out, no, TOL);
    check_lse("attention_forward lse", d_lse, lse, nl);
    float *first[3] = {NULL};
    for (int pass = 0; pass < 2; pass++) {
        float *g1 = bt_up(gq, n), *g2 = packed ? g1 : bt_up(gk, n), *g3 = packed ? g1 : bt_up(gv, n);
        attention_backward(g1, g2 + kcol, g3 + vcol, d_dout, d_out, d_lse, dq, dk + kcol, dv + vcol, ld, dlen, B, T, NH,
                           NKV, HS, causal, scratch);
        bt_close("attention_backward dq", g1, eq, n, TOL);
        if (!packed) bt_close("attention_backward dk", g2, ek, n, TOL), bt_close("attention_backward dv", g3, ev, n, TOL);
        if (pass == 0) first[0] = g1, first[1] = g2, first[2] = g3;
        else {
            bt_same("attention_backward dq twice", g1, first[0], n);
            bt_same("attention_backward dk twice", g2, first[1], n);
            bt_same("attention_backward dv twice", g3, first[2], n);
        }
    }
}

START_TEST(self_attention) {
    bt_seed(31);
    int lengths[2] = {70, 41}, empty[2] = {70, 0}, short_len[3] = {45, 1, 30};
    self_case(2, 70, 4, 2, 16, 1, lengths, 0);  // causal, padded, GQA
    self_case(2, 70, 4, 2, 16, 0, lengths, 0);  // bidirectional (the ViT) with padding
    self_case(2, 70, 4, 4, 8, 5, empty, 0);     // a window of 5; a sample of length 0
    self_case(1, 70, 2, 1, 16, 33, NULL, 0);    // a window across tiles, no padding
    self_case(3, 45, 2, 1, 128, 1, short_len, 1);  // LLaMA's head size, packed q | k | v
    self_case(1, 20, 3, 3, 96, 0, NULL, 1);        // Phi-3's
    self_case(1, 20, 1, 1, 256, 1, NULL, 0);       // the largest tile the shared memory decides
    bt_free_all();
}
END_TEST

static void cross_case(int NQ, int NK, int NH, int HS, float scale) {
    int ldq = NH * HS + 3, ldkv = NH * HS + 7, ldo = NH * HS;
    Shape s = {1, NQ, NK, NH, NH, HS, ldq, ldkv, 0, NULL, scale};
    size_t nq = (size_t)NQ * ldq, nk = (size_t)NK * ldkv, no = (size_t)NQ * ldo, nl = (size_t)NH * NQ;
    float *q = bt_randn(nq, 1.0f), *k = bt_randn(nk, 1.0f), *v = bt_randn(nk, 1.0f), *dout = bt_randn(no, 1.0f);
    float *gq = bt_randn(nq, 1.0f), *gk = bt_randn(nk, 1.0f), *gv = bt_randn(nk, 1.0f);
    double *out = bt_dzeros(no), *lse = bt_dzeros(nl);
    double *eq = expected_grads(gq, nq), *ek = expected_grads(gk, nk), *ev = expected_grads(gv, nk);
    zero_heads(eq, NQ, ldq, 0, NH * HS), zero_heads(ek, NK, ldkv, 0, NH * HS), zero_heads(ev, NK, ldkv, 0, NH * HS);
    attention_ref(&s, q, k, v, dout, out, lse, eq, ek, ev);
    float *d_q = bt_up(q, nq), *d_k = bt_up(k, nk), *d_v = bt_up(v, nk), *d_out = bt_dev_zeros(no), *d_lse = bt_dev_zeros(nl);
    size_t scratch_n = cross_attention_scratch_floats(NQ, NK);
    float *scratch = bt_dev_zeros(scratch_n ? scratch_n : 1);
    ck_assert_uint_eq(cross_attention_state_floats(NQ, NH), nl);
    cross_attention_forward(d_out, d_lse, d_q, ldq, d_k, d_v, ldkv, NQ, NK, NH, HS, scale, scratch);
    bt_close("cross_attention_forward out", d_out, out, no, TOL);
    check_lse("cross_attention_forward lse", d_lse, lse, nl);
    float *g[2][3];
    for (int pass = 0; pass < 2; pass++) {
        g[pass][0] = bt_up(gq, nq), g[pass][1] = bt_up(gk, nk), g[pass][2] = bt_up(gv, nk);
        cross_attention_backward(g[pass][0], g[pass][1], g[pass][2], bt_up(dout, no), d_out, d_lse, d_q, ldq, d_k, d_v,
                                 ldkv, NQ, NK, NH, HS, scale, scratch);
        bt_close("cross_attention_backward dq", g[pass][0], eq, nq, TOL);
        bt_close("cross_attention_backward dk", g[pass][1], ek, nk, TOL);
        bt_close("cross_attention_backward dv", g[pass][2], ev, nk, TOL);
    }
    bt_same("cross_attention_backward dq twice", g[1][0], g[0][0], nq);
    bt_same("cross_attention_backward dk twice", g[1][1], g[0][1], nk);
    bt_same("cross_attention_backward dv twice", g[1][2], g[0][2], nk);
}

START_TEST(cross_attention) {
    bt_seed(32);
    cross_case(70, 45, 3, 20, 0.3f);
    cross_case(5, 100, 2, 64, 0.125f);
    bt_free_all();
}
END_TEST

Suite *backend_attention_suite(void) {
    Suite *s = suite_create("backend_attention");
    TCase *tc = tcase_create("backend_attention");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, self_attention);
    tcase_add_test(tc, cross_attention);
    suite_add_tcase(s, tc);
    return s;
}
