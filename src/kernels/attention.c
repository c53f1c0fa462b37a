// Attention, see attention.h. Softmax in float with the max subtracted, as
// PyTorch's.
#include "kernels/attention.h"

#include <math.h>  // expf, sqrtf

static inline int keys_visible(int t, int len, int T, int causal) {
    int n = causal ? t + 1 : T;
    return n < len ? n : len;
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *lengths,
                       int B, int T, int NH, int NKV, int HS, int causal) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV;
#pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                int len = lengths ? lengths[b] : T, kv = h / group;
                int n = keys_visible(t, len, T, causal);
                const float *qt = q + (((long)b * T + t) * NH + h) * HS;
                float *p = att + (((long)b * NH + h) * T + t) * T;
                float maxv = -INFINITY;
                for (int j = 0; j < n; j++) {
                    const float *kj = k + (((long)b * T + j) * NKV + kv) * HS;
                    float s = 0.0f;
                    for (int i = 0; i < HS; i++) s += qt[i] * kj[i];
                    p[j] = s * scale;
                    if (p[j] > maxv) maxv = p[j];
                }
                float sum = 0.0f;
                for (int j = 0; j < n; j++) sum += (p[j] = expf(p[j] - maxv));
                float inv = n ? 1.0f / sum : 0.0f;
                for (int j = 0; j < T; j++) p[j] = j < n ? p[j] * inv : 0.0f;
                float *o = out + (((long)b * T + t) * NH + h) * HS;
                for (int i = 0; i < HS; i++) o[i] = 0.0f;
                for (int j = 0; j < n; j++) {
                    const float *vj = v + (((long)b * T + j) * NKV + kv) * HS;
                    for (int i = 0; i < HS; i++) o[i] += p[j] * vj[i];
                }
            }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                        const float *k, const float *v, const int *lengths, int B, int T, int NH, int NKV, int HS,
                        int causal) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV;
    // one thread per (sample, kv head): dk and dv of a kv head get every
    // query head of its group, so no two threads write the same row
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int kv = 0; kv < NKV; kv++) {
            float datt[T > 0 ? T : 1];
            int len = lengths ? lengths[b] : T;
            for (int h = kv * group; h < (kv + 1) * group; h++)
                for (int t = 0; t < T; t++) {
                    int n = keys_visible(t, len, T, causal);
                    const float *p = att + (((long)b * NH + h) * T + t) * T;
                    const float *dot = dout + (((long)b * T + t) * NH + h) * HS;
                    const float *qt = q + (((long)b * T + t) * NH + h) * HS;
                    float dsum = 0.0f;
                    for (int j = 0; j < n; j++) {
                        const float *vj = v + (((long)b * T + j) * NKV + kv) * HS;
                        float s = 0.0f;
                        for (int i = 0; i < HS; i++) s += dot[i] * vj[i];
                        datt[j] = s;
                        dsum += p[j] * s;
                    }
                    float *dqt = dq + (((long)b * T + t) * NH + h) * HS;
                    for (int j = 0; j < n; j++) {
                        float dpre = p[j] * (datt[j] - dsum) * scale;
                        const float *kj = k + (((long)b * T + j) * NKV + kv) * HS;
                        float *dkj = dk + (((long)b * T + j) * NKV + kv) * HS;
                        float *dvj = dv + (((long)b * T + j) * NKV + kv) * HS;
                        for (int i = 0; i < HS; i++) {
                            dqt[i] += dpre * kj[i];
                            dkj[i] += dpre * qt[i];
                            dvj[i] += p[j] * dot[i];
                        }
                    }
                }
        }
}
