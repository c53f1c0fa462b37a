// LLaVA-format records, see conversation.h.
#include "text/conversation.h"

#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // strstr, strlen, memmove

#include "core/alloc.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"

int conversation_parse(Conversation *c, const json_t *record, const char *where) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(record)) return vlm_fail(VLM_ERR_INPUT, NULL, where, "record is not an object");
    json_t *id = json_object_get(record, "id");
    if (vlm_json_is_number(id)) vlm_json_number_text(id, c->id, sizeof c->id);  // an integer of any size, as written
    else if (json_is_string(id)) snprintf(c->id, sizeof c->id, "%s", json_string_value(id));
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

void py_strip(char *str) {
    size_t start, end;
    py_strip_range(str, strlen(str), &start, &end);
    memmove(str, str + start, end - start);
    str[end - start] = '\0';
}
