// PCRE2 pre-tokenization, see regex_split.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex_split.h"

#include <pcre2.h>

#include "core/error.h"
#include "core/utf8.h"

int regex_compile(const char *pattern, const char *name, const char *record, void **code) {
    int err;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return vlm_fail(VLM_ERR_INPUT, name, record, "split regex does not compile at %zu: %s", (size_t)offset, msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
    *code = re;
    return VLM_OK;
}

void regex_free(void *code) {
    if (code) pcre2_code_free(code);
}

int regex_split(const void *code, const char *text, size_t len, bool gaps, SpanBuf *pieces) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    int rc = VLM_OK;
    size_t at = 0, gap = 0;  // search position; start of the text not yet in a piece
    while (at <= len && rc == VLM_OK) {
        int found = pcre2_match(code, (PCRE2_SPTR)text, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (found == PCRE2_ERROR_NOMATCH) break;
        if (found < 0) {
            rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "split regex failed (PCRE2 error %d)", found);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {
            if (s >= len) break;
            at = s + utf8_char_len((unsigned char)text[s]);
            continue;
        }
        if (gaps && s > gap) rc = spans_push(pieces, gap, s);
        if (rc == VLM_OK) rc = spans_push(pieces, s, e);
        gap = at = e;
    }
    if (rc == VLM_OK && gaps && gap < len) rc = spans_push(pieces, gap, len);
    pcre2_match_data_free(md);
    return rc;
}
