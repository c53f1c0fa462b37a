// Leveled logging, see log.h.
#include "core/log.h"

#include <stdarg.h>  // va_list
#include <stdio.h>   // fprintf, vfprintf
#include <string.h>  // strcmp

static LogLevel g_level = LOG_INFO;
static char g_prefix[64];

void log_set_prefix(const char *prefix) { snprintf(g_prefix, sizeof g_prefix, "%s", prefix); }
const char *log_prefix(void) { return g_prefix; }

void log_set_level(LogLevel level) { g_level = level; }
LogLevel log_get_level(void) { return g_level; }

static const char *const LEVEL_NAMES[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *name, LogLevel *out) {
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(name, LEVEL_NAMES[i]) == 0) {
            *out = (LogLevel)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(LogLevel level, const char *fmt, ...) {
    if (level > g_level) return;
    // info lines carry no prefix: they are the program's normal narration
    if (level != LOG_INFO) fprintf(stderr, "vlm: %s: %s", LEVEL_NAMES[level], g_prefix);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
