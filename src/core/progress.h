// Progress reporting for long work.
//
// On a terminal: one line redrawn in place (bar, count, rate, ETA). Otherwise
// (logs, CI): a plain line at most every `interval` seconds and at the end,
// so log files stay readable.
#ifndef VLM_CORE_PROGRESS_H
#define VLM_CORE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    const char *label;
    const char *unit;     // e.g. "tensors", "MB"
    uint64_t total;       // 0 when unknown
    uint64_t done;
    double start_s;
    double last_print_s;
    double interval_s;    // plain-line spacing when not a TTY
    bool tty;
    bool enabled;
} Progress;

void progress_begin(Progress *p, FILE *out, const char *label, const char *unit, uint64_t total);
void progress_update(Progress *p, uint64_t done);
void progress_end(Progress *p);

// Formats a duration as "1h02m", "3m05s" or "12s" into buf.
void format_duration(double seconds, char *buf, size_t size);

#endif
