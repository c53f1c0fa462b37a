// Cross-attention on OpenBLAS sgemm, see cross_attention.h.
#include "kernels/cross_attention.h"

#include <cblas.h>
#include <math.h>

void cross_attention_forward(float *out, float *att, const float *q, int ldq, const float *k, const float *v, int ldkv,
                             int NQ, int NK, int NH, int HS, float scale) {
    for (int h = 0; h < NH; h++) {
        float *p = att + (size_t)h * NQ * NK;
        // scores (NQ, NK) = scale * q_h k_h^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NQ, NK, HS, scale, q + h * HS, ldq, k + h * HS, ldkv, 0.0f,
                    p, NK);
        for (int i = 0; i < NQ; i++) {
            float *row = p + (size_t)i * NK, max = row[0], sum = 0.0f;
            for (int j = 1; j < NK; j++) max = row[j] > max ? row[j] : max;
            for (int j = 0; j < NK; j++) sum += row[j] = expf(row[j] - max);
            for (int j = 0; j < NK; j++) row[j] /= sum;
        }
        // out_h (NQ, HS) = p v_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NQ, HS, NK, 1.0f, p, NK, v + h * HS, ldkv, 0.0f,
                    out + h * HS, NH * HS);
    }
}

void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                              int ldq, const float *k, const float *v, int ldkv, int NQ, int NK, int NH, int HS,
                              float scale, float *scratch) {
    int ldo = NH * HS;
    for (int h = 0; h < NH; h++) {
        const float *p = att + (size_t)h * NQ * NK;
        // dv_h += p^T dout_h; dp (NQ, NK) = dout_h v_h^T
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NK, HS, NQ, 1.0f, p, NK, dout + h * HS, ldo, 1.0f,
                    dv + h * HS, ldkv);
        float *ds = scratch;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NQ, NK, HS, 1.0f, dout + h * HS, ldo, v + h * HS, ldkv,
                    0.0f, ds, NK);
        // softmax backward: ds = p (dp - sum_j p dp)
        for (int i = 0; i < NQ; i++) {
            const float *pr = p + (size_t)i * NK;
            float *d = ds + (size_t)i * NK, dot = 0.0f;
            for (int j = 0; j < NK; j++) dot += pr[j] * d[j];
            for (int j = 0; j < NK; j++) d[j] = pr[j] * (d[j] - dot);
        }
        // dq_h += scale ds k_h; dk_h += scale ds^T q_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NQ, HS, NK, scale, ds, NK, k + h * HS, ldkv, 1.0f,
                    dq + h * HS, ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NK, HS, NQ, scale, ds, NK, q + h * HS, ldq, 1.0f,
                    dk + h * HS, ldkv);
    }
}
