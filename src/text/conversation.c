// LLaVA-format records, see conversation.h.
#include "text/conversation.h"

#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // strstr, strlen, memmove

#include "core/alloc.h"
#include "core/error.h"

int conversation_parse(Conversation *c, const json_t *record, const char *where) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(record)) return vlm_fail(VLM_ERR_INPUT, NULL, where, "record is not an object");
    json_t *id = json_object_get(record, "id");
    if (json_is_string(id)) snprintf(c->id, sizeof c->id, "%s", json_string_value(id));
    else if (json_is_integer(id)) snprintf(c->id, sizeof c->id, "%lld", (long long)json_integer_value(id));
    json_t *image = json_object_get(record, "image");
    if (image && !json_is_null(image)) {
        if (!json_is_string(image)) return vlm_fail(VLM_ERR_INPUT, NULL, where, "\"image\" must be a string (one image per record)");
        c->image = vlm_strdup(json_string_value(image));
        if (!c->image) return VLM_ERR_FAIL;
    }
    json_t *convs = json_object_get(record, "conversations");
    if (!json_is_array(convs) || json_array_size(convs) == 0)
        return vlm_fail(VLM_ERR_INPUT, NULL, where, "\"conversations\" must be a non-empty array");
    c->turns = vlm_calloc(json_array_size(convs), sizeof *c->turns);
    if (!c->turns) return VLM_ERR_FAIL;
    size_t i;
    json_t *turn;
    json_array_foreach(convs, i, turn) {
        const char *from = json_string_value(json_object_get(turn, "from"));
        json_t *value = json_object_get(turn, "value");
        if (!from || !json_is_string(value))
            return vlm_fail(VLM_ERR_INPUT, NULL, where, "conversations[%zu] needs string \"from\" and \"value\"", i);
        if (strcmp(from, "human") == 0) c->turns[i].role = ROLE_HUMAN;
        else if (strcmp(from, "gpt") == 0) c->turns[i].role = ROLE_GPT;
        else return vlm_fail(VLM_ERR_INPUT, NULL, where, "conversations[%zu]: unknown role \"%s\" (human or gpt)", i, from);
        if (strlen(json_string_value(value)) != json_string_length(value))
            return vlm_fail(VLM_ERR_INPUT, NULL, where, "conversations[%zu]: text contains a NUL character", i);
        c->turns[i].text = vlm_strdup(json_string_value(value));
        if (!c->turns[i].text) return VLM_ERR_FAIL;
        c->n_turns++;
    }
    return VLM_OK;
}

void conversation_free(Conversation *c) {
    for (int i = 0; i < c->n_turns; i++) free(c->turns[i].text);
    free(c->turns);
    free(c->image);
    memset(c, 0, sizeof *c);
}

char *str_replace_all(const char *s, const char *from, const char *to) {
    size_t nf = strlen(from), nt = strlen(to), count = 0;
    for (const char *p = s; (p = strstr(p, from)); p += nf) count++;
    char *out = vlm_malloc(strlen(s) + count * nt + 1);
    if (!out) return NULL;
    char *w = out;
    for (const char *p = s;;) {
        const char *hit = strstr(p, from);
        size_t n = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(w, p, n);
        w += n;
        if (!hit) break;
        memcpy(w, to, nt);
        w += nt;
        p = hit + nf;
    }
    *w = '\0';
    return out;
}

bool py_isspace(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

// Decodes the code point at s (valid UTF-8 assumed); *len gets its byte length.
static unsigned decode_at(const unsigned char *s, size_t *len) {
    if (s[0] < 0x80) { *len = 1; return s[0]; }
    if ((s[0] & 0xe0) == 0xc0) { *len = 2; return (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f); }
    if ((s[0] & 0xf0) == 0xe0) { *len = 3; return (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f); }
    *len = 4;
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 | (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

void py_strip(char *str) {
    unsigned char *s = (unsigned char *)str;
    size_t n = strlen(str), start = 0, end = 0, len;
    // find the first non-space code point, and the end of the last one
    for (size_t i = 0; i < n; i += len) {
        unsigned cp = decode_at(s + i, &len);
        if (!py_isspace(cp)) {
            if (end == 0) start = i;
            end = i + len;
        }
    }
    if (end == 0) { str[0] = '\0'; return; }
    memmove(str, str + start, end - start);
    str[end - start] = '\0';
}
