// JSON with Python's json-isms, see json.h.
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"

// ---- the rewrite

// One replaced literal: [orig, orig + orig_len) became [out, out + out_len).
typedef struct {
    size_t orig, orig_len, out, out_len;
} Subst;

typedef struct {
    char *buf;
    size_t len, cap;
    Subst *subs;
    size_t n_subs, cap_subs;
    bool nul_at_set;
    size_t nul_at;  // offset of the first "\u0000" escape of the original
} Rewrite;

static int put(Rewrite *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1) cap *= 2;
        char *grown = vlm_realloc(r->buf, cap);
        if (!grown) return VLM_ERR_FAIL;
        r->buf = grown, r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return VLM_OK;
}

// Replaces the literal in[at, at + n) by the marker string "\u0000LITERAL".
static int substitute(Rewrite *r, const char *in, size_t at, size_t n) {
    if (r->n_subs == r->cap_subs) {
        size_t cap = r->cap_subs ? 2 * r->cap_subs : 16;
        Subst *grown = vlm_realloc(r->subs, cap * sizeof *grown);
        if (!grown) return VLM_ERR_FAIL;
        r->subs = grown, r->cap_subs = cap;
    }
    size_t start = r->len;
    int rc = put(r, "\"\\u0000", 7);
    if (!rc) rc = put(r, in + at, n);
    if (!rc) rc = put(r, "\"", 1);
    if (rc) return rc;
    r->subs[r->n_subs++] = (Subst){at, n, start, r->len - start};
    return VLM_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the JSON number at s (RFC 8259 grammar), 0 if there is none;
// *integer: no fraction and no exponent.
static size_t number_length(const char *s, size_t n, bool *integer) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && is_digit(s[i])) while (i < n && is_digit(s[i])) i++;
    else return 0;
    *integer = true;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && is_digit(s[i])) i++;
        if (i == d) return 0;
        *integer = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && is_digit(s[i])) i++;
        if (i == d) return 0;
        *integer = false;
    }
    return i;
}

// An integer literal beyond jansson's json_int_t (int64): its strtoll fails.
static bool beyond_int64(const char *s, size_t n) {
    bool negative = s[0] == '-';
    const char *digits = s + negative;
    size_t len = n - negative;
    if (len != 19) return len > 19;
    return memcmp(digits, negative ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

// strtod of s[0, n) overflows (the literal is beyond the double range).
static int beyond_double(const char *s, size_t n, bool *beyond) {
    char small[64], *copy = n < sizeof small ? small : vlm_malloc(n + 1);
    if (!copy) return VLM_ERR_FAIL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    double x = strtod(copy, NULL);
    *beyond = errno == ERANGE && isinf(x);
    if (copy != small) free(copy);
    return VLM_OK;
}

static bool word_at(const char *s, size_t n, size_t i, const char *word) {
    size_t w = strlen(word);
    if (n - i < w || memcmp(s + i, word, w) != 0) return false;
    char next = i + w < n ? s[i + w] : ' ';
    return !(next == '_' || is_digit(next) || (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z'));
}

// One pass over the text: strings are copied as they are (noting a "\u0000"
// escape), the Python-isms outside them are substituted.
static int rewrite(const char *in, size_t n, Rewrite *r) {
    size_t i = 0, copied = 0;  // in[copied, i) is still to be copied
    while (i < n) {
        char c = in[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && in[j] != '"') {
                if (in[j] == '\\') {
                    if (!r->nul_at_set && n - j >= 6 && memcmp(in + j, "\\u0000", 6) == 0)
                        r->nul_at_set = true, r->nul_at = j;
                    j++;
                }
                j++;
            }
            i = j < n ? j + 1 : n;
            continue;
        }
        size_t len = 0;
        bool integer = false;
        if (word_at(in, n, i, "NaN")) len = 3;
        else if (word_at(in, n, i, "Infinity")) len = 8;
        else if (word_at(in, n, i, "-Infinity")) len = 9;
        else if (c == '-' || is_digit(c)) {
            len = number_length(in + i, n - i, &integer);
            if (!len) {  // not a number: jansson's error stands
                i++;
                continue;
            }
            // an integer beyond int64, or a real beyond the double range (inf to Python's json.loads)
            bool big = integer && beyond_int64(in + i, len), far = false;
            if (!integer && beyond_double(in + i, len, &far) != VLM_OK) return VLM_ERR_FAIL;
            if (!big && !far) {  // jansson reads it
                i += len;
                continue;
            }
        } else {
            i++;
            continue;
        }
        if (put(r, in + copied, i - copied) != VLM_OK || substitute(r, in, i, len) != VLM_OK)
            return VLM_ERR_FAIL;
        i += len;
        copied = i;
    }
    return r->n_subs ? put(r, in + copied, n - copied) : VLM_OK;
}

// The original offset of the rewritten text's offset `at`.
static size_t original_offset(const Rewrite *r, size_t at) {
    size_t shift_from = 0, shift_to = 0;  // the last substitution that ends at or before `at`
    for (size_t k = 0; k < r->n_subs && r->subs[k].out <= at; k++) {
        const Subst *s = &r->subs[k];
        if (at < s->out + s->out_len) return s->orig;  // inside it: its start
        shift_from = s->out + s->out_len, shift_to = s->orig + s->orig_len;
    }
    return at - shift_from + shift_to;
}

// jansson's line, column (characters since the line's start) and position
// (bytes read) for offset `at` of the original text.
static void locate(json_error_t *e, const char *in, size_t n, size_t at) {
    if (at > n) at = n;
    int line = 1, column = 0;
    for (size_t k = 0; k < at; k++) {
        if (in[k] == '\n') line++, column = 0;
        else if (((unsigned char)in[k] & 0xC0) != 0x80) column++;
    }
    e->line = line, e->column = column, e->position = (int)at;
}

static void set_error(json_error_t *e, const char *source, const char *text) {
    if (!e) return;
    snprintf(e->text, JSON_ERROR_TEXT_LENGTH - 1, "%s", text);
    e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_invalid_syntax;
    snprintf(e->source, JSON_ERROR_SOURCE_LENGTH, "%s", source);
}

// After jansson refused in[0, n): the parse of the rewritten copy, or NULL
// with *error untouched when there is nothing Python-specific to rewrite.
static json_t *retry(const char *in, size_t n, size_t flags, json_error_t *error, const char *source) {
    Rewrite r = {0};
    json_t *root = NULL;
    if (rewrite(in, n, &r) != VLM_OK || !r.n_subs) goto done;
    if (!(flags & JSON_ALLOW_NUL) && r.nul_at_set) {
        // the markers need JSON_ALLOW_NUL, which must not let the user's NUL through
        if (error) {
            set_error(error, source, "\\u0000 is not allowed without JSON_ALLOW_NUL");
            locate(error, in, n, r.nul_at + 6);
        }
        goto done;
    }
    json_error_t e;
    root = json_loadb(r.buf, r.len, flags | JSON_ALLOW_NUL, &e);
    if (!root && error) {
        *error = e;
        snprintf(error->source, JSON_ERROR_SOURCE_LENGTH, "%s", source);
        locate(error, in, n, original_offset(&r, e.position > 0 ? (size_t)e.position : 0));
    }
done:
    free(r.buf);
    free(r.subs);
    return root;
}

json_t *vlm_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error) {
    json_error_t e;
    json_t *root = json_loadb(buffer, buflen, flags, &e);
    if (root || !buffer) {
        if (error) *error = e;
        return root;
    }
    json_error_t again = e;
    root = retry(buffer, buflen, flags, &again, e.source);
    if (error) *error = root ? e : again;
    return root;
}

json_t *vlm_json_loads(const char *input, size_t flags, json_error_t *error) {
    json_error_t e;
    json_t *root = json_loads(input, flags, &e);
    if (root || !input) {
        if (error) *error = e;
        return root;
    }
    json_error_t again = e;
    root = retry(input, strlen(input), flags, &again, e.source);
    if (error) *error = root ? e : again;
    return root;
}

json_t *vlm_json_load_file(const char *path, size_t flags, json_error_t *error) {
    json_error_t e;
    json_t *root = json_load_file(path, flags, &e);
    if (error) *error = e;
    if (root || !path) return root;
    // a file jansson could not open reads no better here: file_map fails too
    // (its message is dropped: the caller reports jansson's)
    MappedFile m;
    if (file_map(path, &m) != VLM_OK) {
        vlm_clear_error();
        return NULL;
    }
    if (m.data) root = retry((const char *)m.data, m.size, flags, error, path);
    file_unmap(&m);
    return root;
}

// ---- reading numbers

// The literal of a marker, or NULL.
static const char *marker_literal(const json_t *v) {
    if (!json_is_string(v) || json_string_length(v) < 2 || json_string_value(v)[0] != '\0') return NULL;
    return json_string_value(v) + 1;
}

bool vlm_json_is_number(const json_t *v) { return json_is_number(v) || marker_literal(v) != NULL; }

double vlm_json_number(const json_t *v) {
    const char *lit = marker_literal(v);
    if (lit) return strtod(lit, NULL);  // "NaN", "Infinity", "-Infinity"; ±HUGE_VAL beyond the range
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *vlm_json_number_text(const json_t *v, char *buf, size_t size) {
    const char *lit = marker_literal(v);
    if (lit) snprintf(buf, size, "%s", lit);
    else if (json_is_integer(v)) snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) {
        double x = json_real_value(v);
        for (int digits = 15; digits <= 17; digits++) {  // the shortest that reads back, as Python's repr
            snprintf(buf, size, "%.*g", digits, x);
            if (strtod(buf, NULL) == x) break;
        }
    } else snprintf(buf, size, "%s", "not a number");
    return buf;
}

typedef enum { NOT_INTEGER, INTEGER, BELOW, ABOVE } IntKind;

// What v is as an integer (BELOW / ABOVE: beyond int64, a marker).
static IntKind classify(const json_t *v, long long *x) {
    if (json_is_integer(v)) return *x = (long long)json_integer_value(v), INTEGER;
    const char *lit = marker_literal(v);
    bool integer = false;
    if (!lit || number_length(lit, strlen(lit), &integer) != strlen(lit) || !integer) return NOT_INTEGER;
    return lit[0] == '-' ? BELOW : ABOVE;
}

static int range_error(const json_t *v, long long lo, long long hi, const char *path, const char *key) {
    char text[64];
    return vlm_fail(VLM_ERR_INPUT, path, key, "%s is outside [%lld, %lld]", vlm_json_number_text(v, text, sizeof text),
                    lo, hi);
}

static int not_integer(const json_t *v, const char *path, const char *key) {
    char text[64];
    if (!vlm_json_is_number(v)) return vlm_fail(VLM_ERR_INPUT, path, key, "expected an integer");
    return vlm_fail(VLM_ERR_INPUT, path, key, "expected an integer, got %s",
                    vlm_json_number_text(v, text, sizeof text));
}

int vlm_json_int(const json_t *v, long long lo, long long hi, long long *out, const char *path, const char *key) {
    long long x = 0;
    IntKind kind = classify(v, &x);
    if (kind == NOT_INTEGER) return not_integer(v, path, key);
    if (kind != INTEGER || x < lo || x > hi) return range_error(v, lo, hi, path, key);
    *out = x;
    return VLM_OK;
}

int vlm_json_length(const json_t *v, long long lo, long long hi, long long no_limit, long long *out, const char *path,
                    const char *key) {
    long long x = 0;
    IntKind kind = classify(v, &x);
    if (kind == NOT_INTEGER) return not_integer(v, path, key);
    if (kind == ABOVE || (kind == INTEGER && x > hi)) return *out = no_limit, VLM_OK;
    if (kind == BELOW || x < lo) return range_error(v, lo, hi, path, key);
    *out = x;
    return VLM_OK;
}

int vlm_json_real(const json_t *v, double *out, const char *path, const char *key) {
    if (!vlm_json_is_number(v)) return vlm_fail(VLM_ERR_INPUT, path, key, "expected a number");
    *out = vlm_json_number(v);
    return VLM_OK;
}

// obj[key] by policy: VLM_OK with *v NULL to take the default, VLM_OK with *v
// the value to read it, or the error for an absent or null one.
static int keyed(const json_t *obj, const char *key, VlmJsonPresence presence, const char *what, json_t **v,
                 const char *path, const char *name) {
    *v = json_object_get(obj, key);  // NULL for a NULL or non-object obj too
    if (!*v && presence == VLM_JSON_REQUIRED) return vlm_fail(VLM_ERR_INPUT, path, name, "missing");
    if (*v && json_is_null(*v)) {
        if (presence != VLM_JSON_OPTIONAL) return vlm_fail(VLM_ERR_INPUT, path, name, "expected %s, got null", what);
        *v = NULL;
    }
    return VLM_OK;
}

int vlm_json_get_int(const json_t *obj, const char *key, VlmJsonPresence presence, long long dflt, long long lo,
                     long long hi, long long *out, const char *path, const char *name) {
    json_t *v;
    if (!name) name = key;
    int rc = keyed(obj, key, presence, "an integer", &v, path, name);
    if (rc != VLM_OK) return rc;
    if (!v) return *out = dflt, VLM_OK;
    return vlm_json_int(v, lo, hi, out, path, name);
}

int vlm_json_get_real(const json_t *obj, const char *key, VlmJsonPresence presence, double dflt, double *out,
                      const char *path, const char *name) {
    json_t *v;
    if (!name) name = key;
    int rc = keyed(obj, key, presence, "a number", &v, path, name);
    if (rc != VLM_OK) return rc;
    if (!v) return *out = dflt, VLM_OK;
    return vlm_json_real(v, out, path, name);
}

const char *vlm_json_nonfinite(double x) {
    if (isnan(x)) return "NaN";
    if (isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
    return NULL;
}

char *vlm_json_dumps(const json_t *j, size_t flags) {
    char *text = json_dumps(j, flags);
    if (!text) return NULL;
    // a marker is dumped as "\u0000LITERAL" (the literal is digits, a sign, '.', 'e' or letters: no quote)
    static const char open[] = "\"\\u0000";
    char *w = text;
    for (const char *r = text; *r;) {
        if (strncmp(r, open, sizeof open - 1) == 0) {
            const char *end = strchr(r + sizeof open - 1, '"');
            if (end) {
                size_t n = (size_t)(end - (r + sizeof open - 1));
                memmove(w, r + sizeof open - 1, n);
                w += n, r = end + 1;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return text;
}
