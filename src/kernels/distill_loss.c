// Embedding-distillation loss, see distill_loss.h.
#include "kernels/distill_loss.h"

#include <math.h>
#include <stddef.h>

static double norm_of(const float *x, int D) {
    double s = 0;
    for (int i = 0; i < D; i++) s += (double)x[i] * x[i];
    return fmax(sqrt(s), 1e-12);  // F.normalize's eps
}

DistillLoss distill_loss(const float *pred, const float *target, int B, int D, float logit_scale,
                         float contrastive_weight, float weight, float *dpred, float *dscale, float *scratch) {
    DistillLoss r = {0, 0, 0};
    double n = (double)B * D, sl1 = 0;
    // smooth L1 (beta 1): 0.5 x^2 below 1, |x| - 0.5 above; its gradient clamps x to [-1, 1]
    for (long i = 0; i < (long)B * D; i++) {
        double x = (double)pred[i] - target[i], ax = fabs(x);
        sl1 += ax < 1.0 ? 0.5 * x * x : ax - 0.5;
        dpred[i] = (float)(weight * (x < -1.0 ? -1.0 : x > 1.0 ? 1.0 : x) / n);
    }
    r.smooth_l1 = sl1 / n;
    // InfoNCE over cosine similarities: logits (B, B) in scratch
    float *logits = scratch, *pn = scratch + (size_t)B * B, *tn = pn + B;
    for (int i = 0; i < B; i++) pn[i] = (float)norm_of(pred + (size_t)i * D, D), tn[i] = (float)norm_of(target + (size_t)i * D, D);
    double e = exp((double)logit_scale), s = fmin(e, 100.0), con = 0, dsum = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += (double)pred[(size_t)i * D + d] * target[(size_t)j * D + d];
            logits[(size_t)i * B + j] = (float)(dot / ((double)pn[i] * tn[j]));  // the cosine
        }
    double cw = weight * contrastive_weight / B;
    for (int i = 0; i < B; i++) {
        float *row = logits + (size_t)i * B;
        double max = -INFINITY, sum = 0;
        for (int j = 0; j < B; j++) max = fmax(max, s * row[j]);
        for (int j = 0; j < B; j++) sum += exp(s * row[j] - max);
        double lse = max + log(sum);
        con += lse - s * row[i];
        // d loss / d cos_ij = cw s (softmax_ij - [i == j]) replaces the row; the scale's part on the way
        double acc_cos = 0;  // sum_j (d loss / d cos_ij) cos_ij, for the normalisation's backward
        for (int j = 0; j < B; j++) {
            double g = exp(s * row[j] - lse) - (i == j), dcos = cw * s * g;
            dsum += g * row[j];
            acc_cos += dcos * row[j];
            row[j] = (float)dcos;
        }
        // cos_ij = p.t_j / (|p| |t_j|): d/dp = t_j / (|p| |t_j|) - cos_ij p / |p|^2
        const float *p = pred + (size_t)i * D;
        for (int d = 0; d < D; d++) {
            double g = 0;
            for (int j = 0; j < B; j++) g += row[j] * (double)target[(size_t)j * D + d] / ((double)pn[i] * tn[j]);
            dpred[(size_t)i * D + d] += (float)(g - acc_cos * p[d] / ((double)pn[i] * pn[i]));
        }
    }
    r.infonce = con / B;
    r.loss = weight * (r.smooth_l1 + contrastive_weight * r.infonce);
    // d/d logit_scale: through s = exp(logit_scale) while below the clamp (torch.clamp passes at most 100)
    *dscale = e <= 100.0 ? (float)(weight * contrastive_weight / B * dsum * e) : 0.0f;
    return r;
}
