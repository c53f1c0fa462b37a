// The run's record: OUTPUT_DIR/metrics.jsonl, one JSON object per logged
// step ({"step", "epoch", "loss", "learning_rate", "grad_norm", "targets",
// "tokens_per_s", "elapsed_s"}, and the loss's parts in OLA-VLM's runs), appended and flushed as the run goes, and
// the same values kept in memory for the plot drawn at the end. A resumed
// run keeps the lines up to its checkpoint's step and drops the rest, so the
// file always describes one uninterrupted run.
#ifndef VLM_TRAIN_RUN_LOG_H
#define VLM_TRAIN_RUN_LOG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    long step;
    double epoch, loss, lr, grad_norm, tokens_per_s, elapsed_s;
    long targets;
    // OLA-VLM's runs: "text_loss", "depth_loss", "seg_loss", "gen_loss" too (loss is their sum)
    bool embedding_losses;
    double text_loss, task_loss[3];  // depth, seg, gen
} LogEntry;

typedef struct {
    char *path;
    FILE *fp;
    LogEntry *entries;
    int n, cap;
} RunLog;

// Opens OUTPUT_DIR/metrics.jsonl keeping the entries with step <= keep_until
// (-1: start a new file).
int run_log_open(RunLog *log, const char *output_dir, long keep_until);
int run_log_append(RunLog *log, const LogEntry *e);
void run_log_close(RunLog *log);

#endif
