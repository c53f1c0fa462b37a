// Progress bar / periodic progress lines, see progress.h.
#include "core/progress.h"

#include <unistd.h>  // isatty, fileno

#include "core/log.h"
#include "core/timer.h"

void format_duration(double seconds, char *buf, size_t size) {
    if (seconds < 0 || seconds != seconds) seconds = 0;
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, size, "%lds", s);
}

void progress_begin(Progress *p, FILE *out, const char *label, const char *unit, uint64_t total) {
    p->out = out;
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->start_s = timer_now_s();
    p->last_print_s = p->start_s;
    p->interval_s = 10.0;
    p->tty = isatty(fileno(out));
    p->enabled = log_get_level() >= LOG_INFO;
}

static void progress_print(Progress *p, double now, bool final) {
    double elapsed = now - p->start_s;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    char eta[32] = "?";
    if (p->total && rate > 0) format_duration((double)(p->total - p->done) / rate, eta, sizeof eta);
    if (p->tty) {
        enum { WIDTH = 30 };
        int filled = p->total ? (int)(WIDTH * (double)p->done / (double)p->total) : 0;
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(p->out, "\r%s [%s] %llu/%llu %s  %.1f %s/s  ETA %s\033[K", p->label, bar,
                (unsigned long long)p->done, (unsigned long long)p->total, p->unit, rate, p->unit, eta);
        if (final) fputc('\n', p->out);
    } else {
        fprintf(p->out, "%s: %llu/%llu %s, %.1f %s/s, ETA %s\n", p->label, (unsigned long long)p->done,
                (unsigned long long)p->total, p->unit, rate, p->unit, eta);
    }
    fflush(p->out);
    p->last_print_s = now;
}

void progress_update(Progress *p, uint64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double now = timer_now_s();
    double interval = p->tty ? 0.1 : p->interval_s;
    if (now - p->last_print_s >= interval) progress_print(p, now, false);
}

void progress_end(Progress *p) {
    if (!p->enabled) return;
    // a short job on a non-TTY prints only this one line
    progress_print(p, timer_now_s(), true);
}
