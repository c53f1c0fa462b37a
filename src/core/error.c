// Thread-local error message, see error.h.
#include "core/error.h"

#include <errno.h>   // errno
#include <stdio.h>   // vsnprintf
#include <string.h>  // memcpy, strlen, strerror

#define VLM_ERROR_MAX 2048

// Over-long messages are cut at VLM_ERROR_MAX on purpose.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static _Thread_local char g_error[VLM_ERROR_MAX];

int vlm_failv(int code, const char *file, const char *record, const char *fmt, va_list ap) {
    char reason[VLM_ERROR_MAX];
    vsnprintf(reason, sizeof reason, fmt, ap);
    if (file && record) {
        snprintf(g_error, sizeof g_error, "%s: %s: %s", file, record, reason);
    } else if (file) {
        snprintf(g_error, sizeof g_error, "%s: %s", file, reason);
    } else if (record) {
        snprintf(g_error, sizeof g_error, "%s: %s", record, reason);
    } else {
        memcpy(g_error, reason, sizeof g_error);
    }
    return code;
}

int vlm_fail(int code, const char *file, const char *record, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlm_failv(code, file, record, fmt, ap);
    va_end(ap);
    return code;
}

int vlm_fail_errno(int code, const char *file, const char *record, const char *fmt, ...) {
    int e = errno;
    char reason[VLM_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    // errno 0: the call failed without saying why (e.g. a short fwrite with no error set)
    return vlm_fail(code, file, record, "%s: %s", reason, e ? strerror(e) : "unknown I/O error");
}

int vlm_fail_context(int code, const char *fmt, ...) {
    char context[VLM_ERROR_MAX], previous[VLM_ERROR_MAX];
    memcpy(previous, g_error, sizeof previous);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    snprintf(g_error, sizeof g_error, "%s: %s", context, previous);
    return code;
}

const char *vlm_last_error(void) { return g_error[0] ? g_error : "unknown error"; }

void vlm_clear_error(void) { g_error[0] = '\0'; }
