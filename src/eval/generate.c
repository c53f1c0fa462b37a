// Greedy decoding, see generate.h.
#include "eval/generate.h"

#include <stdlib.h>  // free
#include <string.h>  // strlen, strstr, memcpy

#include "core/alloc.h"          // vlm_malloc, vlm_strdup
#include "core/error.h"          // VLM_OK
#include "core/utf8.h"           // utf8_invalid_at
#include "text/conversation.h"   // py_strip

const char *template_stop_string(const Template *tpl) {
    return tpl->style == TPL_TWO ? tpl->sep2 : tpl->sep;
}

void generation_free(Generation *g) {
    ids_free(&g->ids);
    str_free(&g->raw);
    free(g->answer);
    memset(g, 0, sizeof *g);
}

// Invalid UTF-8 (a byte-fallback sequence cut short) and NUL bytes become
// U+FFFD, as Python's decode(errors="replace") shows them.
static int utf8_repair(StrBuf *s) {
    if (!s->data || utf8_invalid_at(s->data, s->len, false) == s->len) return VLM_OK;
    StrBuf fixed = {0};
    size_t at = 0;
    int rc = VLM_OK;
    while (rc == VLM_OK && at < s->len) {
        size_t bad = at + utf8_invalid_at(s->data + at, s->len - at, false);
        rc = str_append(&fixed, s->data + at, bad - at);
        if (rc == VLM_OK && bad < s->len) rc = str_append(&fixed, "\xEF\xBF\xBD", 3);
        at = bad + 1;
    }
    if (rc == VLM_OK && !fixed.data) rc = str_append(&fixed, "", 0);
    str_free(s);
    *s = fixed;
    return rc;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int generate_greedy(Infer *s, const Tokenizer *tok, const int32_t *prompt, int n, int n_images,
                    const GenerateOptions *o, Generation *out) {
    memset(out, 0, sizeof *out);
    int max_new = o->max_new_tokens > 0 ? o->max_new_tokens : 0;
    int32_t *seq = vlm_malloc(sizeof(int32_t) * ((size_t)n + max_new));
    int rc = seq ? infer_reserve(s, n + max_new) : VLM_ERR_FAIL;
    if (rc == VLM_OK) memcpy(seq, prompt, sizeof(int32_t) * n);
    int len = n;
    for (int step = 0; rc == VLM_OK && step < max_new; step++) {
        const float *logits;
        rc = infer_next_logits(s, seq, len, n_images, &logits, NULL);
        if (rc != VLM_OK) break;
        int32_t next = argmax(logits, s->cfg.text.vocab);
        if (tok->eos_id >= 0 && next == tok->eos_id) {
            out->eos = true;
            break;
        }
        seq[len++] = next;
        rc = ids_push(&out->ids, next);
        if (rc == VLM_OK && o->stop && o->stop[0]) {
            StrBuf text = {0};
            rc = tokenizer_decode(tok, out->ids.data, out->ids.len, &text);
            out->stopped = rc == VLM_OK && text.data && strstr(text.data, o->stop) != NULL;
            str_free(&text);
            if (out->stopped) break;
        }
    }
    free(seq);
    if (rc == VLM_OK) rc = tokenizer_decode(tok, out->ids.data, out->ids.len, &out->raw);
    if (rc == VLM_OK) rc = utf8_repair(&out->raw);
    if (rc == VLM_OK) {
        out->answer = vlm_strdup(out->raw.data ? out->raw.data : "");
        if (!out->answer) rc = VLM_ERR_FAIL;
    }
    if (rc == VLM_OK) {
        // upstream: outputs.strip(); if outputs.endswith(stop_str): cut; strip()
        py_strip(out->answer);
        size_t a = strlen(out->answer), k = o->stop ? strlen(o->stop) : 0;
        if (k && a >= k && strcmp(out->answer + a - k, o->stop) == 0) {
            out->answer[a - k] = '\0';
            py_strip(out->answer);
        }
    }
    if (rc != VLM_OK) generation_free(out);
    return rc;
}
