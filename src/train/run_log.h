// The run's record: OUTPUT_DIR/metrics.jsonl, one JSON object per logged
// step ({"step", "epoch", "loss", "learning_rate", "grad_norm", "targets",
// "tokens_per_s", "elapsed_s"}, and with a model extension's auxiliary
// losses "text_loss" and "<part>_loss" for each of their parts), appended and flushed as the run goes, and
// the same values kept in memory for the plot drawn at the end. A resumed
// run keeps the lines up to its checkpoint's step and drops the rest, so the
// file always describes one uninterrupted run.
#ifndef VLM_TRAIN_RUN_LOG_H
#define VLM_TRAIN_RUN_LOG_H

#include <stdbool.h>
#include <stdio.h>

#define RUN_LOG_MAX_PARTS 4

typedef struct {
    long step;
    double epoch, loss, lr, grad_norm, tokens_per_s, elapsed_s;
    long targets;
    // with auxiliary losses (n_parts > 0): loss is text_loss plus the parts
    int n_parts;
    const char *part_names[RUN_LOG_MAX_PARTS];  // static strings
    double text_loss, part_loss[RUN_LOG_MAX_PARTS];
} LogEntry;

typedef struct {
    char *path;
    FILE *fp;
    LogEntry *entries;
    int n, cap;
} RunLog;

// Opens OUTPUT_DIR/metrics.jsonl keeping the entries with step <= keep_until
// (-1: start a new file); a run's loss parts are named part_names (n_parts).
int run_log_open(RunLog *log, const char *output_dir, long keep_until, int n_parts, const char *const *part_names);
int run_log_append(RunLog *log, const LogEntry *e);
void run_log_close(RunLog *log);

#endif
