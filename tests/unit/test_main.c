// The test runner: every module's suite in one libcheck SRunner, so the run
// ends with one counts line. CK_INCLUDE_TAGS=parser selects the parser cases
// (run again under ASan + UBSan by `make test`).
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend_tests.h"
#include "core/threads.h"
#include "test_util.h"

int main(int argc, char **argv) {
    threads_choose_blas_kernels(argv);  // the kernels vlm itself runs with (core/threads.h)
    if (argc == 3 && strcmp(argv[1], "--dist-worker") == 0) return dist_trainer_worker(argv[2]);  // test_dist.c, under mpirun
    // the real tokenizer files and photos live in shared/ beside the checkout (as in CI)
    struct stat st;
    const char *assets = VLM_SOURCE_DIR "/../shared/assets/tokenizers";
    if (stat(assets, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vlm_tests: %s not found: the tests need shared/ beside the checkout, as CI has it\n", assets);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(core_suite());
    srunner_add_suite(sr, dtype_suite());
    srunner_add_suite(sr, safetensors_suite());
    srunner_add_suite(sr, pickle_suite());
    srunner_add_suite(sr, torch_bin_suite());
    srunner_add_suite(sr, torch_save_suite());
    srunner_add_suite(sr, checkpoint_suite());
    srunner_add_suite(sr, text_suite());
    srunner_add_suite(sr, image_suite());
    srunner_add_suite(sr, data_suite());
    srunner_add_suite(sr, loader_suite());
    srunner_add_suite(sr, kernels_suite());
    srunner_add_suite(sr, backend_device_suite());  // tests/backend: the suites every backend runs
    backend_add_suites(sr);
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, config_memory_suite());
    srunner_add_suite(sr, json_suite());
    srunner_add_suite(sr, model_suite());
    srunner_add_suite(sr, ola_suite());
    srunner_add_suite(sr, ola_targets_suite());
    srunner_add_suite(sr, owl2_suite());
    srunner_add_suite(sr, plot_suite());
    srunner_add_suite(sr, demo_suite());
    srunner_add_suite(sr, train_suite());
    srunner_add_suite(sr, eval_suite());
    srunner_add_suite(sr, trainer_suite());
    srunner_add_suite(sr, dist_suite());
    srunner_add_suite(sr, dist_env_suite());
    srunner_add_suite(sr, lora_suite());
    srunner_add_suite(sr, lora_files_suite());
    srunner_add_suite(sr, phi3_suite());
    srunner_add_suite(sr, teachers_vit_suite());
    srunner_add_suite(sr, teacher_seg_suite());
    srunner_add_suite(sr, convnext_suite());
    srunner_add_suite(sr, convnext_files_suite());
    srunner_add_suite(sr, teachers_vit_files_suite());
    srunner_add_suite(sr, teacher_seg_files_suite());
    srunner_add_suite(sr, llava_recipe_suite());
    srunner_add_suite(sr, qinstruct_recipe_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, build_suite());
    srunner_add_suite(sr, outputs_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
