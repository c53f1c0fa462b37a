// Helpers of the backend kernel suites, see backend_util.h.
#include "backend_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/device.h"

Rng bt_rng;

void bt_seed(uint64_t seed) { rng_init(&bt_rng, seed, 0); }

#define BT_MAX 4096
static void *hosts[BT_MAX], *devs[BT_MAX];
static int n_hosts, n_devs;

void *bt_host(size_t bytes) {
    ck_assert_int_lt(n_hosts, BT_MAX);
    void *p = calloc(1, bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return hosts[n_hosts++] = p;
}

float *bt_randn(size_t n, float scale) {
    float *p = bt_host(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = rng_normal(&bt_rng) * scale;
    return p;
}

double *bt_dzeros(size_t n) { return bt_host(sizeof(double) * n); }

int32_t *bt_ints(size_t n, int lo, int hi) {
    int32_t *p = bt_host(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) p[i] = lo + (int32_t)rng_below(&bt_rng, (uint64_t)(hi - lo));
    return p;
}

void *bt_dev(size_t bytes) {
    ck_assert_int_lt(n_devs, BT_MAX);
    void *p = device_alloc(bytes);
    ck_assert_msg(p != NULL, "device_alloc(%zu) failed", bytes);
    return devs[n_devs++] = p;
}

float *bt_dev_zeros(size_t n) {
    float *p = bt_dev(sizeof(float) * n);
    device_zero(p, sizeof(float) * n);
    return p;
}

void *bt_up_bytes(const void *host, size_t bytes) {
    void *p = bt_dev(bytes);
    device_upload(p, host, bytes);
    return p;
}

float *bt_up(const float *host, size_t n) { return bt_up_bytes(host, sizeof(float) * n); }

float *bt_down(const float *dev, size_t n) {
    float *h = bt_host(sizeof(float) * n);
    device_download(h, dev, sizeof(float) * n);
    return h;
}

void bt_free_all(void) {
    while (n_devs) device_free(devs[--n_devs]);
    while (n_hosts) free(hosts[--n_hosts]);
}

static double rel_error(const float *got, const double *ref_d, const float *ref_f, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = ref_d ? ref_d[i] : ref_f[i], d = (double)got[i] - r;
        if (isnan(got[i]) || isnan(r)) return INFINITY;
        diff += d * d, norm += r * r;
    }
    return norm > 1e-60 ? sqrt(diff / norm) : sqrt(diff);
}

// BT_VERBOSE=1 prints every comparison's error (the measured tolerances of docs/cuda.md)
static void report(const char *what, double e) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("BT_VERBOSE") != NULL;
    if (verbose) printf("bt: %-48s %.3g\n", what, e);
}

double bt_close(const char *what, const float *got_dev, const double *ref, size_t n, double tol) {
    double e = rel_error(bt_down(got_dev, n), ref, NULL, n);
    report(what, e);
    ck_assert_msg(e <= tol, "%s: relative error %.3g over %zu values (tolerance %.1g)", what, e, n, tol);
    return e;
}

double bt_close_f(const char *what, const float *got_dev, const float *ref, size_t n, double tol) {
    double e = rel_error(bt_down(got_dev, n), NULL, ref, n);
    report(what, e);
    ck_assert_msg(e <= tol, "%s: relative error %.3g over %zu values (tolerance %.1g)", what, e, n, tol);
    return e;
}

void bt_exact(const char *what, const float *got_dev, const float *ref, size_t n) {
    const float *got = bt_down(got_dev, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&got[i], &ref[i], sizeof(float)) == 0, "%s[%zu]: %.9g, expected %.9g (bit for bit)", what, i,
                      (double)got[i], (double)ref[i]);
}

void bt_same(const char *what, const float *a_dev, const float *b_dev, size_t n) {
    bt_exact(what, a_dev, bt_down(b_dev, n), n);
}

void bt_close_scalar(const char *what, double got, double ref, double tol) {
    double e = fabs(got - ref) / (fabs(ref) > 1e-30 ? fabs(ref) : 1.0);
    report(what, e);
    ck_assert_msg(e <= tol, "%s: %.12g, expected %.12g (relative error %.3g, tolerance %.1g)", what, got, ref, e, tol);
}
