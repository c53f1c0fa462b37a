// SRCC, PLCC and accuracy, see metrics.h.
#include "eval/metrics.h"

#include <math.h>     // NAN, sqrt, isfinite
#include <stdbool.h>
#include <stdlib.h>  // qsort, free

#include "core/alloc.h"  // vlm_malloc
#include "core/error.h"  // vlm_fail

typedef struct {
    double v;
    size_t i;
} Keyed;

static int keyed_cmp(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;  // stable: ties keep input order
}

int metric_ranks(const double *x, size_t n, double *ranks) {
    Keyed *k = vlm_malloc(sizeof(Keyed) * (n ? n : 1));
    if (!k) return VLM_ERR_FAIL;
    for (size_t i = 0; i < n; i++) k[i] = (Keyed){x[i], i};
    qsort(k, n, sizeof *k, keyed_cmp);
    for (size_t s = 0; s < n;) {
        size_t e = s + 1;
        while (e < n && k[e].v == k[s].v) e++;
        double r = 0.5 * (double)(s + 1 + e);  // mean of the 1-based positions s+1 .. e
        for (size_t j = s; j < e; j++) ranks[k[j].i] = r;
        s = e;
    }
    free(k);
    return VLM_OK;
}

static int check_inputs(const double *x, const double *y, size_t n, const char *what) {
    if (n < 2) return vlm_fail(VLM_ERR_INPUT, NULL, what, "needs at least 2 values, got %zu", n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return vlm_fail(VLM_ERR_INPUT, NULL, what, "value %zu is not finite", i);
    return VLM_OK;
}

static bool is_constant(const double *x, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (x[i] != x[0]) return false;
    return true;
}

// scipy.stats.pearsonr after its checks: xm = x - mean, r = (xm/|xm|) . (ym/|ym|)
static double pearson_core(const double *x, const double *y, size_t n) {
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++) sx += x[i], sy += y[i];
    double mx = sx / (double)n, my = sy / (double)n, nx = 0, ny = 0;
    for (size_t i = 0; i < n; i++) nx += (x[i] - mx) * (x[i] - mx), ny += (y[i] - my) * (y[i] - my);
    nx = sqrt(nx), ny = sqrt(ny);
    double r = 0;
    for (size_t i = 0; i < n; i++) r += ((x[i] - mx) / nx) * ((y[i] - my) / ny);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

int metric_pearson(const double *x, const double *y, size_t n, double *r) {
    *r = NAN;
    int rc = check_inputs(x, y, n, "PLCC");
    if (rc != VLM_OK) return rc;
    if (is_constant(x, n) || is_constant(y, n))
        return vlm_fail(VLM_ERR_INPUT, NULL, "PLCC", "an input is constant: the correlation is undefined (scipy: nan)");
    // scipy: with two values r is the product of the signs of the differences, exactly
    *r = n == 2 ? (x[1] > x[0] ? 1 : -1) * (y[1] > y[0] ? 1 : -1) : pearson_core(x, y, n);
    return VLM_OK;
}

int metric_spearman(const double *x, const double *y, size_t n, double *rho) {
    *rho = NAN;
    int rc = check_inputs(x, y, n, "SRCC");
    if (rc != VLM_OK) return rc;
    if (is_constant(x, n) || is_constant(y, n))
        return vlm_fail(VLM_ERR_INPUT, NULL, "SRCC", "an input is constant: the correlation is undefined (scipy: nan)");
    double *rx = vlm_malloc(sizeof(double) * n), *ry = vlm_malloc(sizeof(double) * n);
    rc = rx && ry ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) rc = metric_ranks(x, n, rx);
    if (rc == VLM_OK) rc = metric_ranks(y, n, ry);
    if (rc == VLM_OK) *rho = pearson_core(rx, ry, n);
    free(rx);
    free(ry);
    return rc;
}

double metric_accuracy(size_t correct, size_t total) { return total ? (double)correct / (double)total : NAN; }
