// Backend suite: the losses (cross-entropy over the vocabulary, OLA-VLM's
// distillation loss) against double loops. Tolerances: the loss sums 1e-6
// relative, the counts exact, lse and the gradients 1e-5 norm-wise relative.
#include <math.h>
#include <string.h>

#include "backend_util.h"
#include "kernels/crossentropy.h"
#include "kernels/device.h"
#include "kernels/distill_loss.h"

START_TEST(crossentropy) {
    bt_seed(51);
    int N = 9, V = 3001;
    float *logits = bt_randn((size_t)N * V, 3.0f), scale = 0.125f;
    int32_t targets[9] = {5, -100, 3000, 0, 17, -100, 2999, 1, 42};
    double *lse = bt_dzeros(N), *dl = bt_dzeros((size_t)N * V), total = 0.0;
    long used = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        const float *x = logits + (size_t)n * V;
        double m = -INFINITY, s = 0.0;
        for (int i = 0; i < V; i++) m = fmax(m, x[i]);
        for (int i = 0; i < V; i++) s += exp(x[i] - m);
        lse[n] = m + log(s);
        total += lse[n] - x[targets[n]], used++;
        for (int i = 0; i < V; i++) dl[(size_t)n * V + i] = (exp(x[i] - lse[n]) - (i == targets[n])) * scale;
    }
    float *d_logits = bt_up(logits, (size_t)N * V), *d_lse = bt_dev_zeros(N), *d_dl = bt_dev_zeros((size_t)N * V);
    int32_t *d_t = bt_up_bytes(targets, sizeof targets);
    long count = -1;
    double got = crossentropy_forward(d_logits, d_t, N, V, &count, d_lse);
    ck_assert_int_eq(count, used);
    bt_close_scalar("crossentropy_forward sum", got, total, 1e-6);
    // lse of the used rows (the others are not written)
    const float *hl = bt_down(d_lse, N);
    double *ul = bt_dzeros(N);
    float *gl = bt_host(sizeof(float) * N);
    int m = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) ul[m] = lse[n], gl[m++] = hl[n];
    bt_close("crossentropy_forward lse", bt_up(gl, m), ul, m, 1e-6);
    crossentropy_backward(d_dl, d_logits, d_t, d_lse, N, V, scale);
    bt_close("crossentropy_backward", d_dl, dl, (size_t)N * V, 1e-5);
    crossentropy_backward(d_logits, d_logits, d_t, d_lse, N, V, scale);  // in place
    bt_same("crossentropy_backward in place", d_logits, d_dl, (size_t)N * V);
    // nothing to average
    int32_t none[2] = {-100, -100};
    ck_assert_double_eq(crossentropy_forward(d_dl, bt_up_bytes(none, sizeof none), 2, V, &count, d_lse), 0.0);
    ck_assert_int_eq(count, 0);
    bt_free_all();
}
END_TEST

static void distill_case(int B, int D, float logit_scale) {
    float cw = 0.7f, w = 1.3f;
    float *pred = bt_randn((size_t)B * D, 1.0f), *target = bt_randn((size_t)B * D, 1.0f);
    for (int i = 0; i < D; i++) pred[i] = target[i] + 0.1f * pred[i];  // one close pair: |x| < 1 terms
    double n = (double)B * D, sl1 = 0.0, con = 0.0, dsum = 0.0;
    double *dpred = bt_dzeros((size_t)B * D), *pn = bt_dzeros(B), *tn = bt_dzeros(B), *cosm = bt_dzeros((size_t)B * B);
    for (size_t i = 0; i < (size_t)B * D; i++) {
        double x = (double)pred[i] - target[i];
        sl1 += fabs(x) < 1 ? 0.5 * x * x : fabs(x) - 0.5;
        dpred[i] = w * fmax(-1.0, fmin(1.0, x)) / n;
    }
    for (int i = 0; i < B; i++) {
        for (int d = 0; d < D; d++) pn[i] += (double)pred[i * D + d] * pred[i * D + d], tn[i] += (double)target[i * D + d] * target[i * D + d];
        pn[i] = fmax(sqrt(pn[i]), 1e-12), tn[i] = fmax(sqrt(tn[i]), 1e-12);
    }
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double dot = 0.0;
            for (int d = 0; d < D; d++) dot += (double)pred[i * D + d] * target[j * D + d];
            cosm[i * B + j] = dot / (pn[i] * tn[j]);
        }
    double e = exp((double)logit_scale), s = fmin(e, 100.0), c = (double)w * cw / B;
    for (int i = 0; i < B; i++) {
        double max = -INFINITY, sum = 0.0, acc = 0.0;
        for (int j = 0; j < B; j++) max = fmax(max, s * cosm[i * B + j]);
        for (int j = 0; j < B; j++) sum += exp(s * cosm[i * B + j] - max);
        double lse = max + log(sum);
        con += lse - s * cosm[i * B + i];
        double *g = bt_dzeros(B);
        for (int j = 0; j < B; j++) {
            double pg = exp(s * cosm[i * B + j] - lse) - (i == j);
            dsum += pg * cosm[i * B + j];
            g[j] = c * s * pg;
            acc += g[j] * cosm[i * B + j];
        }
        for (int d = 0; d < D; d++) {
            double t = 0.0;
            for (int j = 0; j < B; j++) t += g[j] * target[j * D + d] / (pn[i] * tn[j]);
            dpred[i * D + d] += t - acc * pred[i * D + d] / (pn[i] * pn[i]);
        }
    }
    double loss = w * (sl1 / n + cw * con / B), dscale = e <= 100.0 ? c * dsum * e : 0.0;
    float *d_dpred = bt_dev_zeros((size_t)B * D), *scratch = bt_dev_zeros((size_t)B * B + 2 * B), got_scale = -1.0f;
    DistillLoss r = distill_loss(bt_up(pred, (size_t)B * D), bt_up(target, (size_t)B * D), B, D, logit_scale, cw, w, d_dpred,
                                 &got_scale, scratch);
    bt_close_scalar("distill_loss smooth_l1", r.smooth_l1, sl1 / n, 1e-6);
    bt_close_scalar("distill_loss infonce", r.infonce, con / B, 1e-6);
    bt_close_scalar("distill_loss loss", r.loss, loss, 1e-6);
    bt_close("distill_loss dpred", d_dpred, dpred, (size_t)B * D, 1e-5);
    if (dscale == 0.0) ck_assert_float_eq(got_scale, 0.0f);
    else bt_close_scalar("distill_loss dscale", got_scale, dscale, 1e-5);
}

START_TEST(distill) {
    bt_seed(52);
    distill_case(5, 37, logf(1 / 0.07f));  // CLIP's initial logit scale
    distill_case(3, 300, logf(200.0f));     // past the clamp at 100: no gradient to the scale
    distill_case(1, 8, 0.0f);
    bt_free_all();
}
END_TEST

Suite *backend_losses_suite(void) {
    Suite *s = suite_create("backend_losses");
    TCase *tc = tcase_create("backend_losses");
    tcase_add_test(tc, crossentropy);
    tcase_add_test(tc, distill);
    suite_add_tcase(s, tc);
    return s;
}
