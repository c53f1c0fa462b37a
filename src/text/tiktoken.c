// tiktoken byte-level BPE, see tiktoken.h.
#include "text/tiktoken.h"

#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // memchr

#include "core/alloc.h"
#include "core/error.h"
#include "text/regex_split.h"

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Decodes standard base64 (with '=' padding) into out; returns bytes or -1.
static long b64_decode(const char *s, size_t n, char *out) {
    if (n % 4) return -1;
    long at = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad || (v[k] = b64_value(c)) < 0) return -1;
        }
        uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out[at++] = (char)(w >> 16);
        if (pad < 2) out[at++] = (char)(w >> 8);
        if (pad < 1) out[at++] = (char)w;
    }
    return at;
}

int tiktoken_sniff(const unsigned char *data, size_t size) {
    size_t i = 0;
    while (i < size && i < 256 && b64_value(data[i]) >= 0) i++;
    while (i < size && data[i] == '=') i++;
    return i > 0 && i + 2 < size && data[i] == ' ' && data[i + 1] == '0' && (data[i + 2] == '\n' || data[i + 2] == '\r');
}

int tiktoken_load(TiktokenModel *m, const char *data, size_t size, const char *name) {
    memset(m, 0, sizeof *m);
    int lines = 0;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    if (size && data[size - 1] != '\n') lines++;
    m->arena = vlm_malloc(size + 1);
    m->tokens = vlm_calloc((size_t)lines + 1, sizeof *m->tokens);
    m->token_lens = vlm_calloc((size_t)lines + 1, sizeof *m->token_lens);
    if (!m->arena || !m->tokens || !m->token_lens || strmap_init(&m->ranks, (size_t)lines) != VLM_OK) {
        tiktoken_free(m);
        return VLM_ERR_FAIL;
    }
    size_t used = 0;
    int line_no = 0, rc = VLM_OK;
    for (const char *p = data, *end = data + size; p < end && rc == VLM_OK; line_no++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *sp = memchr(p, ' ', (size_t)(eol - p));
        char record[32];
        snprintf(record, sizeof record, "line %d", line_no + 1);
        long n = sp ? b64_decode(p, (size_t)(sp - p), m->arena + used) : -1;
        // the rank: decimal digits up to the end of the line (which has no NUL after it)
        const char *digits_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        long rank = sp && sp + 1 < digits_end ? 0 : -1;
        for (const char *d = sp ? sp + 1 : eol; rank >= 0 && d < digits_end; d++)
            rank = (*d >= '0' && *d <= '9' && rank < 100000000) ? rank * 10 + (*d - '0') : -1;
        if (n < 0 || rank != line_no)
            rc = vlm_fail(VLM_ERR_INPUT, name, record, "expected \"base64 %d\"", line_no);
        else if (strmap_get(&m->ranks, m->arena + used, (size_t)n) >= 0)
            rc = vlm_fail(VLM_ERR_INPUT, name, record, "token appears twice");
        else {
            m->tokens[rank] = m->arena + used;
            m->token_lens[rank] = (uint32_t)n;
            rc = strmap_put(&m->ranks, m->arena + used, (size_t)n, (int32_t)rank);
            used += (size_t)n;
            m->n_ranks++;
        }
        p = eol + 1;
    }
    // every single byte must be a token, or some text could not be encoded
    for (int b = 0; b < 256 && rc == VLM_OK; b++) {
        char c = (char)b;
        if (strmap_get(&m->ranks, &c, 1) < 0) rc = vlm_fail(VLM_ERR_INPUT, name, NULL, "byte 0x%02x has no token", b);
    }
    if (rc == VLM_OK) rc = regex_compile(LLAMA3_SPLIT_PATTERN, name, NULL, &m->regex);
    if (rc != VLM_OK) tiktoken_free(m);
    return rc;
}

void tiktoken_free(TiktokenModel *m) {
    strmap_free(&m->ranks);
    free(m->tokens);
    free(m->token_lens);
    free(m->arena);
    regex_free(m->regex);
    memset(m, 0, sizeof *m);
}

// tiktoken's _byte_pair_merge: parts[i] is the start of the i-th part;
// repeatedly merge the adjacent pair of parts whose bytes have the lowest rank.
static int byte_pair_merge(const TiktokenModel *m, const char *s, uint32_t n, IdBuf *out, SpanBuf *spans, size_t base) {
    int32_t whole = strmap_get(&m->ranks, s, n);
    if (whole >= 0) return ids_push(out, whole) == VLM_OK ? spans_push(spans, base, base + n) : VLM_ERR_FAIL;
    uint32_t stack_parts[256];
    uint32_t *parts = n + 1 <= 256 ? stack_parts : vlm_malloc((n + 1) * sizeof *parts);
    if (!parts) return VLM_ERR_FAIL;
    uint32_t np = n + 1;  // part boundaries, the last one = n
    for (uint32_t i = 0; i <= n; i++) parts[i] = i;
    while (np > 2) {
        int32_t best = INT32_MAX;
        uint32_t at = 0;
        for (uint32_t i = 0; i + 2 < np; i++) {
            int32_t r = strmap_get(&m->ranks, s + parts[i], parts[i + 2] - parts[i]);
            if (r >= 0 && r < best) { best = r; at = i; }
        }
        if (best == INT32_MAX) break;
        memmove(parts + at + 1, parts + at + 2, (np - at - 2) * sizeof *parts);
        np--;
    }
    int rc = VLM_OK;
    for (uint32_t i = 0; i + 1 < np && rc == VLM_OK; i++) {
        rc = ids_push(out, strmap_get(&m->ranks, s + parts[i], parts[i + 1] - parts[i]));
        if (rc == VLM_OK) rc = spans_push(spans, base + parts[i], base + parts[i + 1]);
    }
    if (parts != stack_parts) free(parts);
    return rc;
}

int tiktoken_encode(const TiktokenModel *m, const char *text, size_t len, IdBuf *out, SpanBuf *spans, size_t base) {
    SpanBuf pieces = {0};
    int rc = regex_split(m->regex, text, len, false, &pieces);
    for (size_t i = 0; i < pieces.start.len && rc == VLM_OK; i++) {
        size_t s = (size_t)pieces.start.data[i], e = (size_t)pieces.end.data[i];
        rc = byte_pair_merge(m, text + s, (uint32_t)(e - s), out, spans, base + s);
    }
    spans_free(&pieces);
    return rc;
}
