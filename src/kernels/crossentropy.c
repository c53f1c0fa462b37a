// Cross-entropy, see crossentropy.h. exp in float as PyTorch's log_softmax,
// the row sum in double.
#include "kernels/crossentropy.h"

#include <math.h>    // expf, log
#include <string.h>  // memset

double crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, long *count, float *lse) {
    double total = 0.0;
    long used = 0;
#pragma omp parallel for reduction(+ : total, used)
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        const float *x = logits + (long)n * V;
        float m = -INFINITY;
        for (int i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        double s = 0.0;
        for (int i = 0; i < V; i++) s += expf(x[i] - m);
        double l = m + log(s);
        lse[n] = (float)l;
        total += l - x[targets[n]];
        used++;
    }
    *count = used;
    return total;
}

void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, const float *lse, int N, int V,
                           float scale) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (long)n * V;
        if (targets[n] < 0) {
            memset(d, 0, sizeof(float) * V);
            continue;
        }
        const float *x = logits + (long)n * V;
        float l = lse[n];
        for (int i = 0; i < V; i++) d[i] = expf(x[i] - l) * scale;
        d[targets[n]] -= scale;
    }
}
