// Errors that name the file, the record and the reason, and map to exit codes.
//
// Library code never exits: a failing function records a message with
// vlm_fail() and returns its status; the CLI prints the message and exits with
// the status. The message lives in a thread-local buffer, so worker threads
// can fail independently.
#ifndef VLM_CORE_ERROR_H
#define VLM_CORE_ERROR_H

#include <stdarg.h>

// Status codes double as process exit codes.
typedef enum {
    VLM_OK = 0,
    VLM_ERR_FAIL = 1,   // internal or environment failure (I/O error, out of memory)
    VLM_ERR_INPUT = 2,  // bad input or usage: the user's file, flag or record is wrong
} VlmStatus;

// Records "FILE: RECORD: reason" (FILE and RECORD omitted when NULL) and
// returns code, so callers can write `return vlm_fail(...)`.
int vlm_fail(int code, const char *file, const char *record, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int vlm_failv(int code, const char *file, const char *record, const char *fmt, va_list ap);

// vlm_fail with ": strerror(errno)" appended, errno as it was on entry: for a
// failed system call, so "write failed" says "No space left on device".
int vlm_fail_errno(int code, const char *file, const char *record, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Prepends context to the current message: "CONTEXT: previous message".
// Returns the code unchanged. Used when a lower layer knows the reason and a
// higher layer knows which file or record it was reading.
int vlm_fail_context(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *vlm_last_error(void);
void vlm_clear_error(void);

#endif
