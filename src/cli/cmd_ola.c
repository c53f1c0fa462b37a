// `vlm ola targets`: OLA-VLM's teachers' embeddings of a dataset's images
// (train/ola_targets.h), with the flags of upstream's pretrain.sh for the
// data and the teachers, so its lines can be pasted as they are.
#include <stdio.h>
#include <stdlib.h>  // strtol
#include <string.h>  // strcmp, strncmp

#include "cli/cli.h"
#include "core/error.h"
#include "train/ola_targets.h"

#define MAX_DATA 64

// "--flag value" or "--flag=value": the value, advancing *i past it; NULL when argv[*i] is not flag
static const char *flag_value(const char *flag, int argc, char **argv, int *i) {
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc) return NULL;
    return argv[++*i];
}

static int targets(int argc, char **argv) {
    const char *data[MAX_DATA];
    OlaTargetsOptions o = {.data_paths = data, .batch = 8, .dtype = DT_F32};
    const char *v, *mode = NULL, *teacher[OLA_TASKS] = {0};
    for (int i = 2; i < argc; i++) {
        if ((v = flag_value("--data_path", argc, argv, &i))) {
            if (o.n_data == MAX_DATA) return cli_usage_error("ola", "at most %d --data_path", MAX_DATA);
            data[o.n_data++] = v;
        } else if ((v = flag_value("--image_folder", argc, argv, &i))) o.image_folder = v;
        else if ((v = flag_value("--teacher_embeddings", argc, argv, &i))) o.out_dir = v;
        else if ((v = flag_value("--depth_estimator", argc, argv, &i))) teacher[OLA_DEPTH] = v;
        else if ((v = flag_value("--image_segmentor", argc, argv, &i))) teacher[OLA_SEG] = v;
        else if ((v = flag_value("--image_generator", argc, argv, &i))) teacher[OLA_GEN] = v;
        else if ((v = flag_value("--mode", argc, argv, &i))) mode = v;
        else if ((v = flag_value("--batch_size", argc, argv, &i))) {
            long n = cli_count(v);
            if (n < 1 || n > 4096) return cli_usage_error("ola", "--batch_size needs 1 to 4096, got '%s'", v);
            o.batch = (int)n;
        } else if ((v = flag_value("--dtype", argc, argv, &i))) {
            if (strcmp(v, "float32") == 0) o.dtype = DT_F32;
            else if (strcmp(v, "bfloat16") == 0) o.dtype = DT_BF16;
            else if (strcmp(v, "float16") == 0) o.dtype = DT_F16;
            else return cli_usage_error("ola", "--dtype is float32, bfloat16 or float16, not '%s'", v);
        } else if ((v = flag_value("--skip_bad_records", argc, argv, &i))) {
            if (strcmp(v, "True") != 0 && strcmp(v, "False") != 0)
                return cli_usage_error("ola", "--skip_bad_records is True or False, not '%s'", v);
            o.skip_bad = strcmp(v, "True") == 0;
        } else return cli_usage_error("ola", "unknown argument '%s'", argv[i]);
    }
    if (o.n_data == 0) return cli_usage_error("ola", "--data_path is required");
    if (!o.out_dir) return cli_usage_error("ola", "--teacher_embeddings DIR (where the targets go) is required");
    // --mode (upstream's aux_mode, e.g. gen-depth-seg) names the tasks; each needs its teacher
    if (mode) {
        bool want[OLA_TASKS] = {0};
        char buf[64];
        snprintf(buf, sizeof buf, "%s", mode);
        for (char *save = NULL, *tok = strtok_r(buf, "-", &save); tok; tok = strtok_r(NULL, "-", &save)) {
            int t = 0;
            while (t < OLA_TASKS && strcmp(tok, ola_task_name((OlaTask)t)) != 0) t++;
            if (t == OLA_TASKS) return cli_usage_error("ola", "--mode '%s': '%s' is not depth, seg or gen", mode, tok);
            want[t] = true;
        }
        static const char *const FLAG[OLA_TASKS] = {"--depth_estimator", "--image_segmentor", "--image_generator"};
        for (int t = 0; t < OLA_TASKS; t++) {
            if (want[t] && !teacher[t]) return cli_usage_error("ola", "--mode %s needs %s", mode, FLAG[t]);
            if (!want[t]) teacher[t] = NULL;  // given but not asked for
        }
    }
    Teacher teachers[OLA_TASKS];
    memset(teachers, 0, sizeof teachers);
    int rc = VLM_OK;
    for (int t = 0; rc == VLM_OK && t < OLA_TASKS; t++)
        if (teacher[t]) rc = teacher_open(&teachers[t], (OlaTask)t, teacher[t], o.batch);
    OlaTargetsReport r;
    if (rc == VLM_OK) rc = ola_targets_run(&o, teachers, &r);
    for (int t = 0; t < OLA_TASKS; t++)
        if (teachers[t].ops) teacher_close(&teachers[t]);
    if (rc != VLM_OK) return cli_report(rc);
    char recs[32], imgs[32];
    format_count(r.records, recs, sizeof recs);
    format_count(r.images, imgs, sizeof imgs);
    fprintf(stderr, "%s records, %s distinct images: %zu written, %zu already there, %zu bad (skipped) in %.1f s",
            recs, imgs, r.computed, r.present, r.bad, r.seconds);
    if (r.computed) fprintf(stderr, " (%.2f images/s)", (double)r.computed / r.seconds);
    fputc('\n', stderr);
    for (int t = 0; t < OLA_TASKS; t++)
        if (teacher[t] && r.computed)
            fprintf(stderr, "  %s teacher: %.2f images/s\n", ola_task_name((OlaTask)t),
                    r.teacher_seconds[t] > 0 ? (double)r.computed / r.teacher_seconds[t] : 0.0);
    return VLM_OK;
}

int cmd_ola(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "targets") != 0) return cli_usage_error("ola", "the subcommand is targets");
    return targets(argc, argv);
}
