// The CUDA build's test runner (build-cuda/vlm_tests_cuda): the backend kernel
// suites of tests/backend, the same ones build/vlm_tests runs against the CPU
// kernels, here against src/kernels/cuda on the GPU (docs/cuda.md). It needs
// a GPU: without one it says so and exits 77 (automake's "skipped").
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend_tests.h"
#include "kernels/device.h"

int main(void) {
    const char *name = device_name();
    printf("vlm_tests_cuda: %s\n", name);
    if (!device_present()) {
        fprintf(stderr, "vlm_tests_cuda: no GPU: nothing run\n");
        return 77;
    }
    SRunner *sr = srunner_create(backend_device_suite());
    backend_add_suites(sr);
    // no fork per test: a CUDA context does not survive fork(), and the
    // parent's would be the one the device name opened
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
