// metrics.jsonl, see run_log.h.
#include "train/run_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

static int keep(RunLog *log, const LogEntry *e) {
    if (log->n == log->cap) {
        int cap = log->cap ? 2 * log->cap : 256;
        LogEntry *grown = realloc(log->entries, sizeof(LogEntry) * (size_t)cap);
        if (!grown) return vlm_fail(VLM_ERR_FAIL, log->path, NULL, "out of memory");
        log->entries = grown, log->cap = cap;
    }
    log->entries[log->n++] = *e;
    return VLM_OK;
}

// NaN when absent: a nan loss was written as NaN, as Python's json writes it
static double number(const json_t *j, const char *key) { return vlm_json_number(json_object_get(j, key)); }

// ", \"KEY\": X" in fmt, or Python's json.dumps spelling of nan / inf
// (printf's "nan" is not JSON: neither Python nor the resume could read it)
static void write_number(FILE *fp, const char *key, const char *fmt, double x) {
    const char *special = vlm_json_nonfinite(x);
    fprintf(fp, ", \"%s\": ", key);
    if (special) fputs(special, fp);
    else fprintf(fp, fmt, x);
}

static void write_line(FILE *fp, const LogEntry *e) {
    fprintf(fp, "{\"step\": %ld", e->step);
    write_number(fp, "epoch", "%.6g", e->epoch);
    write_number(fp, "loss", "%.9g", e->loss);
    write_number(fp, "learning_rate", "%.9g", e->lr);
    write_number(fp, "grad_norm", "%.9g", e->grad_norm);
    fprintf(fp, ", \"targets\": %ld", e->targets);
    write_number(fp, "tokens_per_s", "%.1f", e->tokens_per_s);
    write_number(fp, "elapsed_s", "%.3f", e->elapsed_s);
    if (e->n_parts) {
        write_number(fp, "text_loss", "%.9g", e->text_loss);
        for (int p = 0; p < e->n_parts; p++) {
            char key[64];
            snprintf(key, sizeof key, "%s_loss", e->part_names[p]);
            write_number(fp, key, "%.9g", e->part_loss[p]);
        }
    }
    fputs("}\n", fp);
}

int run_log_open(RunLog *log, const char *output_dir, long keep_until, int n_parts, const char *const *part_names) {
    memset(log, 0, sizeof *log);
    log->path = path_join(output_dir, "metrics.jsonl");
    if (!log->path) return VLM_ERR_FAIL;
    int rc = VLM_OK;
    FILE *old = keep_until >= 0 ? fopen(log->path, "r") : NULL;
    if (old) {  // the lines of the run up to the checkpoint being resumed
        char line[4096];
        while (rc == VLM_OK && fgets(line, sizeof line, old)) {
            json_t *j = vlm_json_loads(line, 0, NULL);
            if (!json_is_integer(json_object_get(j, "step"))) {  // a line cut short by a kill
                json_decref(j);
                continue;
            }
            LogEntry e = {.step = (long)json_integer_value(json_object_get(j, "step")), .epoch = number(j, "epoch"),
                          .loss = number(j, "loss"), .lr = number(j, "learning_rate"),
                          .grad_norm = number(j, "grad_norm"),
                          .targets = (long)json_integer_value(json_object_get(j, "targets")),
                          .tokens_per_s = number(j, "tokens_per_s"), .elapsed_s = number(j, "elapsed_s"),
                          .text_loss = number(j, "text_loss")};
            e.n_parts = json_object_get(j, "text_loss") ? n_parts : 0;
            for (int p = 0; p < e.n_parts; p++) {
                char key[64];
                snprintf(key, sizeof key, "%s_loss", part_names[p]);
                e.part_names[p] = part_names[p], e.part_loss[p] = number(j, key);
            }
            if (e.step <= keep_until) rc = keep(log, &e);
            json_decref(j);
        }
        fclose(old);
    }
    // rewrite what is kept atomically, then append to it
    AtomicFile af;
    if (rc == VLM_OK) rc = atomic_open(&af, log->path);
    if (rc == VLM_OK) {
        for (int i = 0; i < log->n; i++) write_line(af.fp, &log->entries[i]);
        rc = atomic_commit(&af);
    }
    if (rc == VLM_OK && !(log->fp = fopen(log->path, "a")))
        rc = vlm_fail_errno(VLM_ERR_FAIL, log->path, NULL, "cannot open for appending");
    if (rc != VLM_OK) run_log_close(log);
    return rc;
}

int run_log_append(RunLog *log, const LogEntry *e) {
    write_line(log->fp, e);
    if (fflush(log->fp) != 0 || ferror(log->fp)) return vlm_fail_errno(VLM_ERR_FAIL, log->path, NULL, "write failed");
    return keep(log, e);
}

void run_log_close(RunLog *log) {
    if (log->fp) fclose(log->fp);
    free(log->path);
    free(log->entries);
    memset(log, 0, sizeof *log);
}
