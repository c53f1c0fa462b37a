// Attention, see attention.h. Each (sample, head) is three matrix products
// on OpenBLAS over the packed projections (leading dimension NH*HS or
// NKV*HS), with a row-wise masked softmax in between; softmax in float with
// the row maximum subtracted, as PyTorch's.
#include "kernels/attention.h"

#include <cblas.h>   // cblas_sgemm
#include <math.h>    // expf, sqrtf
#include <string.h>  // memset

static inline int keys_visible(int t, int len, int T, int causal) {
    int n = causal ? t + 1 : T;
    return n < len ? n : len;
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *lengths,
                       int B, int T, int NH, int NKV, int HS, int causal) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV, ldq = NH * HS, ldk = NKV * HS;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int len = lengths ? lengths[b] : T, kv = h / group;
            const float *qh = q + (size_t)b * T * ldq + h * HS, *kh = k + (size_t)b * T * ldk + kv * HS;
            const float *vh = v + (size_t)b * T * ldk + kv * HS;
            float *p = att + ((size_t)b * NH + h) * T * T;
            // scores (T,T) = scale * q_h k_h^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, qh, ldq, kh, ldk, 0.0f, p, T);
#pragma omp parallel for
            for (int t = 0; t < T; t++) {
                float *row = p + (size_t)t * T;
                int n = keys_visible(t, len, T, causal);
                float maxv = -INFINITY, sum = 0.0f;
                for (int j = 0; j < n; j++) maxv = row[j] > maxv ? row[j] : maxv;
                for (int j = 0; j < n; j++) sum += (row[j] = expf(row[j] - maxv));
                float inv = n ? 1.0f / sum : 0.0f;
                for (int j = 0; j < T; j++) row[j] = j < n ? row[j] * inv : 0.0f;
            }
            // out_h (T,HS) = p v_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, vh, ldk, 0.0f,
                        out + (size_t)b * T * ldq + h * HS, ldq);
        }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, const int *lengths, int B, int T, int NH, int NKV, int HS,
                        int causal, float *scratch) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV, ldq = NH * HS, ldk = NKV * HS;
    float *ds = scratch;  // (T,T): d(probabilities), then d(scores)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int len = lengths ? lengths[b] : T, kv = h / group;
            size_t qo = (size_t)b * T * ldq + h * HS, ko = (size_t)b * T * ldk + kv * HS;
            const float *p = att + ((size_t)b * NH + h) * T * T;
            // dv_h += p^T dout_h ; dp = dout_h v_h^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, dout + qo, ldq, 1.0f, dv + ko, ldk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dout + qo, ldq, v + ko, ldk, 0.0f, ds, T);
            // softmax backward, masked entries to zero, times the score scale
#pragma omp parallel for
            for (int t = 0; t < T; t++) {
                const float *pr = p + (size_t)t * T;
                float *d = ds + (size_t)t * T, dot = 0.0f;
                int n = keys_visible(t, len, T, causal);
                for (int j = 0; j < n; j++) dot += pr[j] * d[j];
                for (int j = 0; j < T; j++) d[j] = j < n ? pr[j] * (d[j] - dot) * scale : 0.0f;
            }
            // dq_h += ds k_h ; dk_h += ds^T q_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, k + ko, ldk, 1.0f, dq + qo, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, ds, T, q + qo, ldq, 1.0f, dk + ko, ldk);
        }
}
