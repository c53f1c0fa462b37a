// The test runner: every module's suite in one libcheck SRunner, so the run
// ends with one counts line. CK_INCLUDE_TAGS=parser selects the parser cases
// (run again under ASan + UBSan by `make test`).
#include <check.h>
#include <stdlib.h>

#include "test_util.h"

int main(void) {
    SRunner *sr = srunner_create(core_suite());
    srunner_add_suite(sr, dtype_suite());
    srunner_add_suite(sr, safetensors_suite());
    srunner_add_suite(sr, pickle_suite());
    srunner_add_suite(sr, torch_bin_suite());
    srunner_add_suite(sr, checkpoint_suite());
    srunner_add_suite(sr, text_suite());
    srunner_add_suite(sr, data_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
