// Cross-entropy, see crossentropy.h. Log-sum-exp in double per row.
#include "kernels/crossentropy.h"

#include <math.h>    // exp, log
#include <string.h>  // memset

#define IGNORE (-100)

static double row_logsumexp(const float *x, int V, float *maxv) {
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
        if (x[i] > m) m = x[i];
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - m);
    *maxv = m;
    return m + log(s);
}

double crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, long *count) {
    double total = 0.0;
    long used = 0;
#pragma omp parallel for reduction(+ : total, used)
    for (int n = 0; n < N; n++) {
        if (targets[n] == IGNORE || targets[n] < 0) continue;
        float m;
        const float *x = logits + (long)n * V;
        total += row_logsumexp(x, V, &m) - x[targets[n]];
        used++;
    }
    *count = used;
    return total;
}

void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N, int V, float scale) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (long)n * V;
        if (targets[n] == IGNORE || targets[n] < 0) {
            memset(d, 0, sizeof(float) * V);
            continue;
        }
        float m;
        const float *x = logits + (long)n * V;
        double lse = row_logsumexp(x, V, &m);
        for (int i = 0; i < V; i++) d[i] = (float)(exp((double)x[i] - lse) * scale);
        d[targets[n]] -= scale;
    }
}
