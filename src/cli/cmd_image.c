// `vlm image preprocess`: one image through the vision tower's preprocessing,
// written as the tensor the model receives.
#include <stdlib.h>  // strtol
#include <string.h>  // strcmp

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/error.h"
#include "formats/safetensors.h"
#include "image/preprocess.h"

static int image_preprocess_cmd(int argc, char **argv) {
    int size = 0;
    bool pad = false;
    const char *config = NULL, *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--size") == 0 && has_value) {
            char *end;
            size = (int)strtol(argv[++i], &end, 10);
            if (*end || size <= 0 || size > 8192) return cli_usage_error("image", "--size: expected 1..8192, got %s", argv[i]);
        } else if (strcmp(a, "--pad") == 0) pad = true;
        else if (strcmp(a, "--config") == 0 && has_value) config = argv[++i];
        else if (a[0] == '-' && a[1]) return cli_usage_error("image", "unknown option %s", a);
        else if (!in) in = a;
        else if (!out) out = a;
        else return cli_usage_error("image", "unexpected argument %s", a);
    }
    if (!in || !out) return cli_usage_error("image", "expected IMAGE and OUT.safetensors");
    if (!size && !config) return cli_usage_error("image", "give --size N or --config preprocessor_config.json");
    Preprocessor p;
    if (config) {
        if (preprocessor_load(&p, config) != VLM_OK) return cli_report(VLM_ERR_INPUT);
    } else {
        preprocessor_default(&p, size);
    }
    if (size) preprocessor_set_size(&p, size);
    p.pad = pad;
    TensorInfo info = {.name = "pixel_values", .dtype = DT_F32, .ndim = 3, .shape = {3, p.crop_h, p.crop_w}};
    tensor_info_sizes(&info);
    float *pixels = vlm_malloc(info.nbytes);
    PreprocessScratch scratch = {0};
    int width = 0, height = 0;
    int rc = pixels ? image_preprocess_file(in, &p, pixels, &scratch, &width, &height) : VLM_ERR_FAIL;
    if (rc == VLM_OK) {
        const void *datas[1] = {pixels};
        rc = safetensors_write(out, &info, datas, 1, NULL);
    }
    if (rc == VLM_OK)
        fprintf(stderr, "%s: %d x %d -> pixel_values [3, %d, %d]%s\n", in, width, height, p.crop_h, p.crop_w,
                pad ? " (padded to square)" : "");
    preprocess_scratch_free(&scratch);
    free(pixels);
    return rc == VLM_OK ? VLM_OK : cli_report(rc);
}

int cmd_image(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("image", "missing subcommand");
    if (strcmp(argv[1], "preprocess") == 0) return image_preprocess_cmd(argc - 2, argv + 2);
    return cli_usage_error("image", "unknown subcommand '%s'", argv[1]);
}
