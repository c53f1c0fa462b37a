// Swin's window attention, see window_attention.h. The threads share out the
// (window, head) pairs; each pair's scores are one single-threaded OpenBLAS
// product into its thread's (T, T) scratch, then scaled, biased, masked and
// softmaxed row by row in float (the row maximum subtracted, as PyTorch's
// softmax), then one product with the values. A pair writes only its own
// head's columns of its window's rows: the same bytes for any thread count.
#include "kernels/window_attention.h"

#include <cblas.h>  // cblas_sgemm (single-threaded inside a parallel region)
#include <math.h>   // expf, sqrt
#include <omp.h>    // omp_get_max_threads, omp_get_thread_num

#define MASKED (-100.0f)  // SwinLayer.get_attn_mask's masked_fill value

size_t window_attention_scratch_floats(int T) { return (size_t)omp_get_max_threads() * T * T; }

void window_attention_forward(float *out, const float *qkv, const float *table, const int32_t *idx,
                              const int32_t *region, int Bw, int nW, int T, int NH, int HS, float *scratch) {
    int C = NH * HS, ld = 3 * C;
    // PyTorch divides the scores by math.sqrt(head size), a double it rounds to float
    float div = (float)sqrt((double)HS);
#pragma omp parallel for schedule(dynamic)
    for (long task = 0; task < (long)Bw * NH; task++) {
        int w = (int)(task / NH), h = (int)(task % NH);
        const float *q = qkv + (size_t)w * T * ld + h * HS, *k = q + C, *v = q + 2 * C;
        const int32_t *reg = region ? region + (size_t)(w % nW) * T : NULL;
        float *p = scratch + (size_t)omp_get_thread_num() * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, q, ld, k, ld, 0.0f, p, T);
        for (int i = 0; i < T; i++) {
            float *row = p + (size_t)i * T, mx = -INFINITY, sum = 0.0f;
            const int32_t *ix = idx + (size_t)i * T;
            for (int j = 0; j < T; j++) {
                float s = row[j] / div + table[(size_t)ix[j] * NH + h];
                if (reg && reg[i] != reg[j]) s += MASKED;
                row[j] = s;
                mx = s > mx ? s : mx;
            }
            for (int j = 0; j < T; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            for (int j = 0; j < T; j++) row[j] /= sum;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, v, ld, 0.0f,
                    out + (size_t)w * T * C + h * HS, C);
    }
}
