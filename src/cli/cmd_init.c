// `vlm init`: a freshly initialised LLaVA or mPLUG-Owl2 model from a
// config.json (upstream's rules, init.h; our seeded RNG), written as
// config.json + model.safetensors: the start of a model trained from scratch.
#include <stdbool.h>
#include <stdlib.h>  // strtoull
#include <string.h>  // strcmp

#include "cli/cli.h"
#include "core/error.h"
#include "model/init.h"
#include "model/weights.h"

int cmd_init(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    bool clip_embeddings = false;  // --vision-init clip-embeddings
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(a, "--vision-init") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            clip_embeddings = strcmp(v, "clip-embeddings") == 0;
            if (!clip_embeddings && strcmp(v, "default") != 0)
                return cli_usage_error("init", "--vision-init is default or clip-embeddings, not '%s'", v);
        } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i] || argv[i][0] == '-') return cli_usage_error("init", "--seed expects a number, got '%s'", argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("init", "unknown option '%s'", a);
        } else if (!out) {
            out = a;
        } else {
            return cli_usage_error("init", "too many arguments");
        }
    }
    if (!config || !out) return cli_usage_error("init", "need --config config.json and OUT_DIR");
    LlavaConfig cfg;
    int rc = llava_config_load(&cfg, config);
    if (rc != VLM_OK) return cli_report(rc);
    LlavaParams p;
    rc = llava_params_alloc(&p, &cfg);
    if (rc != VLM_OK) return cli_report(rc);
    rc = llava_params_init_random(&p, seed);
    if (rc == VLM_OK && clip_embeddings) llava_vision_init_clip_embeddings(&p, seed);
    if (rc == VLM_OK) rc = llava_save_hf(&p, out);
    if (rc == VLM_OK) {
        char count[32];
        format_count(p.numel, count, sizeof count);
        fprintf(stderr, "wrote %s (%s parameters, seed %llu%s)\n", out, count, seed,
                clip_embeddings ? ", the vision embeddings by CLIP's rules" : "");
    }
    llava_params_free(&p);
    return cli_report(rc);
}
