// Leveled logging to stderr. The level comes from --log-level or VLM_LOG.
#ifndef VLM_CORE_LOG_H
#define VLM_CORE_LOG_H

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } LogLevel;

void log_set_level(LogLevel level);
LogLevel log_get_level(void);
// Parses "error", "warn", "info", "debug"; returns 0 on success, -1 otherwise.
int log_parse_level(const char *name, LogLevel *out);

// Text put after "vlm: LEVEL: " on warnings and errors (a rank's "rank 1 of 2: "); "" by default.
void log_set_prefix(const char *prefix);
const char *log_prefix(void);

void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
