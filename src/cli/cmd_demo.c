// `vlm demo data`: the demo's synthetic dataset (see demo/demo.h).
#include <stdint.h>  // uint64_t
#include <stdlib.h>  // strtoull, strtol
#include <string.h>  // strcmp

#include "cli/cli.h"
#include "core/error.h"
#include "core/timer.h"
#include "demo/demo.h"

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return cli_usage_error("demo", "%s: expected %ld..%ld, got '%s'", flag, lo, hi, s);
    *out = (int)v;
    return VLM_OK;
}

static int demo_data_cmd(int argc, char **argv) {
    DemoOptions opt = {.seed = DEMO_DEFAULT_SEED, .size = DEMO_DEFAULT_SIZE, .n_train = DEMO_DEFAULT_TRAIN,
                       .n_eval = DEMO_DEFAULT_EVAL};
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        int rc = VLM_OK;
        if (strcmp(a, "--out") == 0 && has_value) out = argv[++i];
        else if (strcmp(a, "--seed") == 0 && has_value) {
            char *end;
            const char *s = argv[++i];
            opt.seed = strtoull(s, &end, 10);
            if (!*s || *end || s[0] == '-') return cli_usage_error("demo", "--seed: expected a non-negative integer, got '%s'", s);
        } else if (strcmp(a, "--size") == 0 && has_value) rc = parse_int("--size", argv[++i], 16, 1024, &opt.size);
        else if (strcmp(a, "--train") == 0 && has_value) rc = parse_int("--train", argv[++i], 1, 99999, &opt.n_train);
        else if (strcmp(a, "--eval") == 0 && has_value) rc = parse_int("--eval", argv[++i], 1, 99999, &opt.n_eval);
        else return cli_usage_error("demo", "unknown or incomplete option '%s'", a);
        if (rc != VLM_OK) return rc;
    }
    if (!out) return cli_usage_error("demo", "missing --out DIR");
    double t0 = timer_now_s();
    DemoStats st;
    int rc = demo_write_dataset(out, &opt, &st);
    if (rc != VLM_OK) return cli_report(rc);
    char bytes[32];
    format_bytes(st.image_bytes, bytes, sizeof bytes);
    fprintf(stderr,
            "%s: %zu images (%zu JPEG, %s) of %d x %d, seed %llu, in %.2f s\n"
            "  pt.json %zu, high.json %zu (%zu text-only), qinstruct.json %zu records\n"
            "  eval_high.json %zu, eval_mcq.json %zu, eval_score.json %zu items; scenes.json, corpus.txt\n",
            out, st.n_images, st.n_jpeg, bytes, opt.size, opt.size, (unsigned long long)opt.seed, timer_now_s() - t0,
            st.n_pt, st.n_high, st.n_text_only, st.n_qinstruct, st.n_eval_high, st.n_eval_mcq, st.n_eval_score);
    return VLM_OK;
}

int cmd_demo(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("demo", "missing subcommand");
    if (strcmp(argv[1], "data") == 0) return demo_data_cmd(argc - 2, argv + 2);
    return cli_usage_error("demo", "unknown subcommand '%s'", argv[1]);
}
