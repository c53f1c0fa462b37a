// Helpers of the backend kernel suites (see backend_tests.h): random host
// inputs, their device copies through device.h, and comparisons of a
// kernel's device output with a plain-loop reference on the host. Every
// buffer a test makes is freed by bt_free_all() at its end.
#ifndef VLM_TESTS_BACKEND_UTIL_H
#define VLM_TESTS_BACKEND_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

extern Rng bt_rng;
void bt_seed(uint64_t seed);

// host memory (freed by bt_free_all)
void *bt_host(size_t bytes);
float *bt_randn(size_t n, float scale);    // normal(0, scale)
double *bt_dzeros(size_t n);               // a reference's accumulators
int32_t *bt_ints(size_t n, int lo, int hi);  // uniform in [lo, hi)

// device memory (freed by bt_free_all)
void *bt_dev(size_t bytes);
float *bt_dev_zeros(size_t n);
float *bt_up(const float *host, size_t n);           // a device copy of n host floats
void *bt_up_bytes(const void *host, size_t bytes);
float *bt_down(const float *dev, size_t n);          // a host copy of n device floats

void bt_free_all(void);

// The norm-wise relative error of got (device, n) against ref (host, double):
// ||got - ref|| / ||ref|| (absolute below a norm of 1e-30); fails the test
// naming what and the error when it exceeds tol. Returns the error.
double bt_close(const char *what, const float *got_dev, const double *ref, size_t n, double tol);
double bt_close_f(const char *what, const float *got_dev, const float *ref, size_t n, double tol);
// got (device, n) bit for bit equal to ref (host floats)
void bt_exact(const char *what, const float *got_dev, const float *ref, size_t n);
// two device buffers bit for bit equal (a kernel run twice: determinism)
void bt_same(const char *what, const float *a_dev, const float *b_dev, size_t n);
// a scalar against its reference, relative
void bt_close_scalar(const char *what, double got, double ref, double tol);

#endif
