// Attention, see attention.h. The threads share out the (sample, KV head)
// pairs; each pair is its query heads in order, in blocks of ATT_BLOCK query
// rows, every block single-threaded OpenBLAS products over the projections
// (rows of ld floats) limited to the keys the block can see: with a causal
// mask that skips most of the masked upper triangle. A block's scores live
// only in its thread's scratch (ATT_BLOCK x T), never the whole (T, T).
// Softmax in float with the row maximum subtracted, as PyTorch's; the
// backward rebuilds the probabilities as exp(score - lse) (FlashAttention-2).
// A pair's writes (its heads of out, lse and dq, its KV head of dk and dv)
// are its own, in a fixed order: the same result for any number of threads.
#include "kernels/attention.h"

#include <cblas.h>   // cblas_sgemm (single-threaded inside a parallel region)
#include <math.h>    // expf, logf, sqrtf
#include <omp.h>     // omp_get_max_threads, omp_get_thread_num
#include <string.h>  // memset

#define ATT_BLOCK 64

// keys query t of a sample with len real tokens sees: [keys_first, keys_visible)
static inline int keys_visible(int t, int len, int T, int causal) {
    int n = causal ? t + 1 : T;
    return n < len ? n : len;
}

// a sliding window (causal = W > 1): only the last W keys, t - W + 1 .. t
static inline int keys_first(int t, int causal) { return causal > 1 && t - causal + 1 > 0 ? t - causal + 1 : 0; }

size_t attention_state_floats(int B, int NH, int T) { return (size_t)B * NH * T; }

// per thread: the block's scores / probabilities, then (backward) their gradient
size_t attention_scratch_floats(int T) { return (size_t)omp_get_max_threads() * 2 * ATT_BLOCK * T; }

// This thread's scratch: two (ATT_BLOCK, T) blocks.
static inline float *thread_scratch(float *scratch, int T) {
    return scratch + (size_t)omp_get_thread_num() * 2 * ATT_BLOCK * T;
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int ld,
                       const int *lengths, int B, int T, int NH, int NKV, int HS, int causal, float *scratch) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV, ldo = NH * HS;
#pragma omp parallel for schedule(dynamic)
    for (int task = 0; task < B * NKV; task++) {
        int b = task / NKV, kv = task % NKV, len = lengths ? lengths[b] : T;
        const float *kh = k + (size_t)b * T * ld + kv * HS, *vh = v + (size_t)b * T * ld + kv * HS;
        float *p = thread_scratch(scratch, T);  // (m, nk)
        for (int h = kv * group; h < (kv + 1) * group; h++)
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int m = T - r0 < ATT_BLOCK ? T - r0 : ATT_BLOCK, nk = keys_visible(r0 + m - 1, len, T, causal);
                const float *qh = q + ((size_t)b * T + r0) * ld + h * HS;
                float *o = out + ((size_t)b * T + r0) * ldo + h * HS, *l = lse + ((size_t)b * NH + h) * T + r0;
                if (nk == 0) {  // no key visible to any row of the block
                    for (int t = 0; t < m; t++) memset(o + (size_t)t * ldo, 0, sizeof(float) * HS), l[t] = INFINITY;
                    continue;
                }
                // scores (m,nk) = scale * q_h k_h^T over the keys this block sees
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, HS, scale, qh, ld, kh, ld, 0.0f, p, nk);
                for (int t = 0; t < m; t++) {
                    float *row = p + (size_t)t * nk;
                    int n = keys_visible(r0 + t, len, T, causal), j0 = keys_first(r0 + t, causal);
                    if (j0 > n) j0 = n;
                    float maxv = -INFINITY, sum = 0.0f;
                    for (int j = j0; j < n; j++) maxv = row[j] > maxv ? row[j] : maxv;
                    for (int j = j0; j < n; j++) sum += (row[j] = expf(row[j] - maxv));
                    float inv = n > j0 ? 1.0f / sum : 0.0f;
                    for (int j = j0; j < n; j++) row[j] *= inv;
                    memset(row, 0, sizeof(float) * j0);
                    memset(row + n, 0, sizeof(float) * (nk - n));
                    l[t] = n > j0 ? maxv + logf(sum) : INFINITY;
                }
                // out_h (m,HS) = p v_h
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, nk, 1.0f, p, nk, vh, ld, 0.0f, o, ldo);
            }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                        const float *q, const float *k, const float *v, int ld, const int *lengths, int B, int T,
                        int NH, int NKV, int HS, int causal, float *scratch) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV, ldo = NH * HS;
#pragma omp parallel for schedule(dynamic)
    for (int task = 0; task < B * NKV; task++) {
        int b = task / NKV, kv = task % NKV, len = lengths ? lengths[b] : T;
        size_t ko = (size_t)b * T * ld + kv * HS;
        float *p = thread_scratch(scratch, T);      // (m,nk): probabilities
        float *ds = p + (size_t)ATT_BLOCK * T;      // (m,nk): d(probabilities), then d(scores)
        // the gradients are written: this pair's columns of dq (its heads), dk and dv (its KV head) start at 0
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)b * T + t) * ld;
            memset(dq + row + (size_t)kv * group * HS, 0, sizeof(float) * (size_t)group * HS);
            memset(dk + row + (size_t)kv * HS, 0, sizeof(float) * HS);
            memset(dv + row + (size_t)kv * HS, 0, sizeof(float) * HS);
        }
        for (int h = kv * group; h < (kv + 1) * group; h++)
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int m = T - r0 < ATT_BLOCK ? T - r0 : ATT_BLOCK, nk = keys_visible(r0 + m - 1, len, T, causal);
                if (nk == 0) continue;
                size_t qo = ((size_t)b * T + r0) * ld + h * HS, oo = ((size_t)b * T + r0) * ldo + h * HS;
                const float *l = lse + ((size_t)b * NH + h) * T + r0;
                // p = exp(scale * q_h k_h^T - lse), masked entries 0
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, HS, scale, q + qo, ld, k + ko, ld, 0.0f, p, nk);
                for (int t = 0; t < m; t++) {
                    float *row = p + (size_t)t * nk;
                    int n = keys_visible(r0 + t, len, T, causal), j0 = keys_first(r0 + t, causal);
                    if (j0 > n) j0 = n;
                    for (int j = j0; j < n; j++) row[j] = expf(row[j] - l[t]);
                    memset(row, 0, sizeof(float) * j0);
                    memset(row + n, 0, sizeof(float) * (nk - n));
                }
                // dv_h += p^T dout_h ; dp = dout_h v_h^T
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, m, 1.0f, p, nk, dout + oo, ldo, 1.0f, dv + ko, ld);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, HS, 1.0f, dout + oo, ldo, v + ko, ld, 0.0f, ds, nk);
                // softmax backward with D = rowsum(dout * out) (= rowsum(p * dp)), times the score scale
                for (int t = 0; t < m; t++) {
                    const float *pr = p + (size_t)t * nk, *dor = dout + oo + (size_t)t * ldo;
                    const float *orow = out + oo + (size_t)t * ldo;
                    float *d = ds + (size_t)t * nk, D = 0.0f;
                    int n = keys_visible(r0 + t, len, T, causal), j0 = keys_first(r0 + t, causal);
                    for (int c = 0; c < HS; c++) D += dor[c] * orow[c];
                    for (int j = 0; j < nk; j++) d[j] = j >= j0 && j < n ? pr[j] * (d[j] - D) * scale : 0.0f;
                }
                // dq_h += ds k_h ; dk_h += ds^T q_h
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, nk, 1.0f, ds, nk, k + ko, ld, 1.0f, dq + qo, ld);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, HS, m, 1.0f, ds, nk, q + qo, ld, 1.0f, dk + ko, ld);
            }
    }
}
