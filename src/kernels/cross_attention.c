// Cross-attention, see cross_attention.h. The threads share out the heads;
// each head is its blocks of XATT_BLOCK query rows in order, every block
// single-threaded OpenBLAS products whose scores live only in the thread's
// scratch. The backward rebuilds the probabilities as exp(score - lse). A
// head's writes (its columns of out, dq, dk, dv and its row of lse) are its
// own, in a fixed order: the same result for any number of threads.
#include "kernels/cross_attention.h"

#include <cblas.h>  // cblas_sgemm (single-threaded inside a parallel region)
#include <math.h>   // expf, logf
#include <omp.h>    // omp_get_max_threads, omp_get_thread_num
#include <string.h> // memset

#define XATT_BLOCK 64

static inline int block_rows(int NQ) { return NQ < XATT_BLOCK ? NQ : XATT_BLOCK; }

size_t cross_attention_state_floats(int NQ, int NH) { return (size_t)NH * NQ; }

// per thread: the block's scores / probabilities, then (backward) their gradient
size_t cross_attention_scratch_floats(int NQ, int NK) {
    return (size_t)omp_get_max_threads() * 2 * block_rows(NQ) * NK;
}

void cross_attention_forward(float *out, float *lse, const float *q, int ldq, const float *k, const float *v, int ldkv,
                             int NQ, int NK, int NH, int HS, float scale, float *scratch) {
    int ldo = NH * HS, rows = block_rows(NQ);
#pragma omp parallel for schedule(dynamic)
    for (int h = 0; h < NH; h++) {
        float *p = scratch + (size_t)omp_get_thread_num() * 2 * rows * NK;  // (m, NK)
        for (int r0 = 0; r0 < NQ; r0 += XATT_BLOCK) {
            int m = NQ - r0 < XATT_BLOCK ? NQ - r0 : XATT_BLOCK;
            // scores (m, NK) = scale * q_h k_h^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, NK, HS, scale, q + (size_t)r0 * ldq + h * HS, ldq,
                        k + h * HS, ldkv, 0.0f, p, NK);
            for (int i = 0; i < m; i++) {
                float *row = p + (size_t)i * NK, max = row[0], sum = 0.0f;
                for (int j = 1; j < NK; j++) max = row[j] > max ? row[j] : max;
                for (int j = 0; j < NK; j++) sum += row[j] = expf(row[j] - max);
                for (int j = 0; j < NK; j++) row[j] /= sum;
                lse[(size_t)h * NQ + r0 + i] = max + logf(sum);
            }
            // out_h (m, HS) = p v_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, NK, 1.0f, p, NK, v + h * HS, ldkv, 0.0f,
                        out + (size_t)r0 * ldo + h * HS, ldo);
        }
    }
}

void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                              const float *q, int ldq, const float *k, const float *v, int ldkv, int NQ, int NK, int NH,
                              int HS, float scale, float *scratch) {
    int ldo = NH * HS, rows = block_rows(NQ);
#pragma omp parallel for schedule(dynamic)
    for (int h = 0; h < NH; h++) {
        float *p = scratch + (size_t)omp_get_thread_num() * 2 * rows * NK;  // (m, NK): probabilities
        float *ds = p + (size_t)rows * NK;                                   // (m, NK): dp, then d(scores)
        // the gradients are written: this head's columns start at 0
        for (int i = 0; i < NQ; i++) memset(dq + (size_t)i * ldq + h * HS, 0, sizeof(float) * HS);
        for (int j = 0; j < NK; j++) {
            memset(dk + (size_t)j * ldkv + h * HS, 0, sizeof(float) * HS);
            memset(dv + (size_t)j * ldkv + h * HS, 0, sizeof(float) * HS);
        }
        for (int r0 = 0; r0 < NQ; r0 += XATT_BLOCK) {
            int m = NQ - r0 < XATT_BLOCK ? NQ - r0 : XATT_BLOCK;
            const float *qh = q + (size_t)r0 * ldq + h * HS, *l = lse + (size_t)h * NQ + r0;
            size_t oo = (size_t)r0 * ldo + h * HS;
            // p = exp(scale * q_h k_h^T - lse)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, NK, HS, scale, qh, ldq, k + h * HS, ldkv, 0.0f, p,
                        NK);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < NK; j++) p[(size_t)i * NK + j] = expf(p[(size_t)i * NK + j] - l[i]);
            // dv_h += p^T dout_h; dp (m, NK) = dout_h v_h^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NK, HS, m, 1.0f, p, NK, dout + oo, ldo, 1.0f,
                        dv + h * HS, ldkv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, NK, HS, 1.0f, dout + oo, ldo, v + h * HS, ldkv, 0.0f,
                        ds, NK);
            // softmax backward: ds = p (dp - D), D = rowsum(dout * out) (= rowsum(p * dp))
            for (int i = 0; i < m; i++) {
                const float *pr = p + (size_t)i * NK, *dor = dout + oo + (size_t)i * ldo;
                const float *orow = out + oo + (size_t)i * ldo;
                float *d = ds + (size_t)i * NK, D = 0.0f;
                for (int c = 0; c < HS; c++) D += dor[c] * orow[c];
                for (int j = 0; j < NK; j++) d[j] = pr[j] * (d[j] - D);
            }
            // dq_h += scale ds k_h; dk_h += scale ds^T q_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, NK, scale, ds, NK, k + h * HS, ldkv, 1.0f,
                        dq + (size_t)r0 * ldq + h * HS, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NK, HS, m, scale, ds, NK, qh, ldq, 1.0f, dk + h * HS,
                        ldkv);
        }
    }
}
