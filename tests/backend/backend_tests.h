// The backend kernel suites: each kernel of src/kernels/*.h run through the
// device API (device.h) on random inputs of odd shapes and compared with a
// plain-loop reference in these files. The same sources build into
// build/vlm_tests (CPU kernels: the references checked against the code that
// the parity fixtures check) and build-cuda/vlm_tests_cuda (the CUDA kernels on
// a GPU; ggml's test-backend-ops idea).
#ifndef VLM_TESTS_BACKEND_TESTS_H
#define VLM_TESTS_BACKEND_TESTS_H

#include <check.h>

Suite *backend_device_suite(void);  // the device API itself
// Adds every other backend suite to sr.
void backend_add_suites(SRunner *sr);

#endif
