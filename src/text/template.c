// Chat templates and label masking, see template.h.
#include "text/template.h"

#include <stdlib.h>  // free
#include <string.h>  // strcmp, strstr, strlen

#include "core/alloc.h"
#include "core/error.h"

#define VICUNA_SYSTEM                                                                                          \
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, " \
    "detailed, and polite answers to the user's questions."

#define L3_HEADER(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"

static const Template TEMPLATES[] = {
    {"plain", TPL_PLAIN, NULL, {"", ""}, "\n", NULL, "<image>", 0, NULL, 0, false},
    {"v1", TPL_TWO, VICUNA_SYSTEM, {"USER", "ASSISTANT"}, " ", "</s>", "<image>", 1, NULL, 1, true},
    {"vicuna_v1", TPL_TWO, VICUNA_SYSTEM, {"USER", "ASSISTANT"}, " ", "</s>", "<image>", 1, NULL, 1, true},
    {"mplug_owl2", TPL_TWO, NULL, {"USER", "ASSISTANT"}, " ", "</s>", "<|image|>", 1, NULL, 0, false},
    {"llava_llama_3", TPL_MPT, L3_HEADER("system") VICUNA_SYSTEM, {L3_HEADER("user"), L3_HEADER("assistant")},
     "<|eot_id|>", NULL, "<image>", 2, "<pad>", 0, false},
    // "<|assistant|>\n" counts as answer: its rstrip eats the newline, and "- 2" leaves the token itself
    {"llava_phi_3", TPL_MPT, "<|system|>\nYou are a helpful AI assistant.", {"\n<|user|>\n", "\n<|assistant|>\n"},
     "<|end|>", NULL, "<image>", 14, NULL, 2, false},
};
#define N_TEMPLATES (sizeof TEMPLATES / sizeof *TEMPLATES)

const Template *template_find(const char *name) {
    for (size_t i = 0; i < N_TEMPLATES; i++)
        if (strcmp(TEMPLATES[i].name, name) == 0) return &TEMPLATES[i];
    return NULL;
}

const char *template_names(void) { return "plain, v1 (vicuna_v1), mplug_owl2, llava_llama_3, llava_phi_3"; }

int template_prepare_tokenizer(const Template *tpl, Tokenizer *tok) {
    if (!tpl->pad_token || tok->pad_id >= 0) return VLM_OK;
    int32_t id = tokenizer_token_id(tok, tpl->pad_token);
    if (id < 0) {
        id = tok->vocab_size;
        if (tokenizer_add_special(tok, tpl->pad_token, id) != VLM_OK) return VLM_ERR_FAIL;
    }
    tok->pad_id = id;
    return VLM_OK;
}

void rendered_free(Rendered *r) {
    ids_free(&r->input_ids);
    ids_free(&r->labels);
}

// ----------------------------------------------------------------------------
// the prompt: text plus the byte ranges whose tokens are learned

typedef struct {
    StrBuf text;
    IdBuf learned_start, learned_end;
} Prompt;

static int prompt_add(Prompt *p, const char *s, bool learned) {
    size_t start = p->text.len;
    if (str_append(&p->text, s, strlen(s)) != VLM_OK) return VLM_ERR_FAIL;
    if (!learned || p->text.len == start) return VLM_OK;
    if (ids_push(&p->learned_start, (int32_t)start) != VLM_OK) return VLM_ERR_FAIL;
    return ids_push(&p->learned_end, (int32_t)p->text.len);
}

static void prompt_free(Prompt *p) {
    str_free(&p->text);
    ids_free(&p->learned_start);
    ids_free(&p->learned_end);
}

// ----------------------------------------------------------------------------
// tokenization as upstream does it

// Finds the next occurrence of needle in [s, end), or NULL.
static const char *find_in(const char *s, const char *end, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = s; p + n <= end; p++)
        if (memcmp(p, needle, n) == 0) return p;
    return NULL;
}

// LLaVA's tokenizer_image_token: the prompt is split on the placeholder, each
// chunk tokenized with BOS, and the first `offset` tokens of every chunk but
// the first dropped (offset = 1 when the first chunk starts with BOS), with
// one IMAGE_TOKEN_INDEX between chunks.
int tokenize_image_prompt(const Tokenizer *tok, const char *text, size_t len, const char *placeholder, IdBuf *ids,
                          SpanBuf *spans) {
    size_t plen = strlen(placeholder);
    size_t offset = 0;
    int rc = VLM_OK;
    for (size_t chunk = 0, k = 0;; k++) {
        const char *hit = find_in(text + chunk, text + len, placeholder);
        size_t end = hit ? (size_t)(hit - text) : len;
        IdBuf part = {0};
        SpanBuf part_spans = {0};
        rc = tokenizer_encode_spans(tok, text + chunk, end - chunk, TOK_ADD_BOS | TOK_SPLIT_SPECIAL, &part,
                                    spans ? &part_spans : NULL);
        if (rc == VLM_OK && k == 0 && part.len > 0 && part.data[0] == tok->bos_id) {
            offset = 1;
            rc = ids_push(ids, part.data[0]);
            if (rc == VLM_OK) rc = spans_push(spans, 0, 0);
        }
        if (rc == VLM_OK && k > 0) {
            rc = ids_push(ids, IMAGE_TOKEN_INDEX);
            if (rc == VLM_OK) rc = spans_push(spans, chunk - plen, chunk);
        }
        for (size_t i = offset; i < part.len && rc == VLM_OK; i++) {
            rc = ids_push(ids, part.data[i]);
            if (rc == VLM_OK && spans)
                rc = spans_push(spans, chunk + (size_t)part_spans.start.data[i], chunk + (size_t)part_spans.end.data[i]);
        }
        ids_free(&part);
        spans_free(&part_spans);
        if (rc != VLM_OK || !hit) break;
        chunk = end + plen;
    }
    return rc;
}

// Tokenizes like the upstream function does for this sample: the image
// path when the record has an image, the plain tokenizer call otherwise.
static int tokenize_like_upstream(const Tokenizer *tok, const char *text, size_t len, bool has_image,
                                  const char *placeholder, IdBuf *ids, SpanBuf *spans) {
    if (has_image) return tokenize_image_prompt(tok, text, len, placeholder, ids, spans);
    return tokenizer_encode_spans(tok, text, len, TOK_ADD_BOS | TOK_SPLIT_SPECIAL, ids, spans);
}

static int count_tokens(const Tokenizer *tok, const char *text, size_t len, bool has_image, const char *placeholder,
                        long *n) {
    IdBuf ids = {0};
    int rc = tokenize_like_upstream(tok, text, len, has_image, placeholder, &ids, NULL);
    *n = (long)ids.len;
    ids_free(&ids);
    return rc;
}

static void mask_range(IdBuf *labels, long from, long to) {
    if (from < 0) from = 0;
    if (to > (long)labels->len) to = (long)labels->len;
    for (long i = from; i < to; i++) labels->data[i] = IGNORE_INDEX;
}

// The rounds upstream masks one by one, as [start, end) byte ranges of the prompt.
// TWO: prompt.split(sep2). MPT (preprocess_llama_3): prompt.split(sep), then
// the first three pieces (system, user, assistant) joined, then pairs.
static int split_rounds(const Template *tpl, const char *prompt, IdBuf *starts, IdBuf *ends) {
    const char *split = tpl->style == TPL_MPT ? tpl->sep : tpl->sep2;
    size_t n = strlen(split), len = strlen(prompt);
    IdBuf piece_start = {0}, piece_end = {0};
    int rc = VLM_OK;
    for (const char *p = prompt; rc == VLM_OK;) {
        const char *hit = find_in(p, prompt + len, split);
        rc = ids_push(&piece_start, (int32_t)(p - prompt));
        if (rc == VLM_OK) rc = ids_push(&piece_end, (int32_t)((hit ? hit : prompt + len) - prompt));
        if (!hit) break;
        p = hit + n;
    }
    size_t first = tpl->style == TPL_MPT ? 3 : 1, group = tpl->style == TPL_MPT ? 2 : 1;
    for (size_t i = 0; rc == VLM_OK && i < piece_start.len; i = (i == 0 ? first : i + group)) {
        size_t last = (i == 0 ? first : i + group) - 1;
        if (last >= piece_start.len) last = piece_start.len - 1;
        rc = ids_push(starts, piece_start.data[i]);
        if (rc == VLM_OK) rc = ids_push(ends, piece_end.data[last]);
    }
    ids_free(&piece_start);
    ids_free(&piece_end);
    return rc;
}

// The masking arithmetic of preprocess_v1 / preprocess_llama_3, line for line:
// per round, len(tokens(instruction)) - 2 masked, len(tokens(round)) advanced;
// a final count that disagrees with the real length masks everything.
static int upstream_labels_rounds(const Template *tpl, const Tokenizer *tok, const char *prompt, bool has_image,
                                  long max_len, const IdBuf *ids, IdBuf *labels, bool *mismatch) {
    int32_t pad = tok->pad_id >= 0 ? tok->pad_id : tok->unk_id;  // LLaVA sets pad = unk
    long total_len = 0;
    for (size_t i = 0; i < ids->len; i++) total_len += ids->data[i] != pad;
    char instruction_sep[128];
    snprintf(instruction_sep, sizeof instruction_sep, tpl->style == TPL_MPT ? "%s%s" : "%s%s: ", tpl->sep, tpl->roles[1]);
    size_t isep_len = strlen(instruction_sep);
    IdBuf starts = {0}, ends = {0};
    int rc = split_rounds(tpl, prompt, &starts, &ends);
    long cur_len = 1;
    mask_range(labels, 0, cur_len);
    for (size_t r = 0; r < starts.len && rc == VLM_OK; r++) {
        const char *rou = prompt + starts.data[r], *rou_end = prompt + ends.data[r];
        if (rou == rou_end) break;
        // parts = rou.split(sep): exactly one separator, or upstream stops here
        const char *first = find_in(rou, rou_end, instruction_sep);
        if (!first || find_in(first + isep_len, rou_end, instruction_sep)) break;
        long round_len = 0, instruction_len = 0;
        rc = count_tokens(tok, rou, (size_t)(rou_end - rou), has_image, tpl->placeholder, &round_len);
        if (rc == VLM_OK)
            rc = count_tokens(tok, rou, (size_t)(first - rou) + isep_len, has_image, tpl->placeholder, &instruction_len);
        instruction_len -= 2;
        bool nonlegacy = tok->kind == TOK_SENTENCEPIECE && !tok->legacy;
        if (r != 0 && (!tpl->delta_needs_nonlegacy || nonlegacy)) {
            round_len -= tpl->later_round_delta;  // v1: IS_TOKENIZER_GREATER_THAN_0_14 and not tokenizer.legacy
            instruction_len -= tpl->later_round_delta;
        }
        if (instruction_len > 0) mask_range(labels, cur_len, cur_len + instruction_len);
        cur_len += round_len;
    }
    ids_free(&starts);
    ids_free(&ends);
    mask_range(labels, cur_len, (long)labels->len);
    *mismatch = (max_len <= 0 || cur_len < max_len) && cur_len != total_len;
    if (*mismatch) mask_range(labels, 0, (long)labels->len);
    return rc;
}

// ----------------------------------------------------------------------------
// building the prompt

// LLaVA's preprocess_multimodal: the placeholder moves to the front of its
// message, followed by a newline (Python strip() semantics throughout).
static int move_placeholder_to_front(char **text, const char *placeholder) {
    if (!strstr(*text, placeholder)) return VLM_OK;
    char *rest = str_replace_all(*text, placeholder, "");
    if (!rest) return VLM_ERR_FAIL;
    py_strip(rest);
    size_t n = strlen(placeholder) + 1 + strlen(rest) + 1;
    char *joined = vlm_malloc(n);
    if (!joined) { free(rest); return VLM_ERR_FAIL; }
    snprintf(joined, n, "%s\n%s", placeholder, rest);
    py_strip(joined);
    free(rest);
    free(*text);
    *text = joined;
    return VLM_OK;
}

// TWO: [system sep] ROLE ": " message sep|sep2 ...   MPT: system sep ROLE message sep ...
// Answers, their closing separator and the template's answer_lead are learned.
static int build_prompt_turns(const Template *tpl, Turn *turns, int n, Prompt *p, const char *where) {
    int rc = VLM_OK;
    if (n > 0 && turns[0].role != ROLE_HUMAN) { turns++; n--; }  // upstream skips a leading gpt turn
    if (tpl->system) {
        rc = prompt_add(p, tpl->system, false);
        if (rc == VLM_OK) rc = prompt_add(p, tpl->sep, false);
    }
    bool two = tpl->style == TPL_TWO;
    for (int i = 0; i < n && rc == VLM_OK; i++) {
        if ((int)turns[i].role != i % 2)
            return vlm_fail(VLM_ERR_INPUT, NULL, where, "conversations[%d]: roles must alternate human, gpt, ...", i);
        bool answer = i % 2 == 1, empty = turns[i].text[0] == '\0';
        // the role as written: "USER" + ": " (TWO) or the llama-3 header (MPT);
        // an empty message leaves only "ROLE:" (TWO) or the header (MPT)
        char role[128];
        snprintf(role, sizeof role, two ? "%s%s" : "%s", tpl->roles[i % 2], two ? (empty ? ":" : ": ") : "");
        size_t lead = answer && !empty ? (size_t)tpl->answer_lead : 0, role_len = strlen(role);
        char lead_text[16] = "";
        memcpy(lead_text, role + role_len - lead, lead);
        lead_text[lead] = '\0';
        role[role_len - lead] = '\0';
        rc = prompt_add(p, role, false);
        if (rc == VLM_OK) rc = prompt_add(p, lead_text, true);
        if (empty) continue;
        if (rc == VLM_OK) rc = prompt_add(p, turns[i].text, answer);
        const char *close = two ? (answer ? tpl->sep2 : tpl->sep) : tpl->sep;
        if (rc == VLM_OK) rc = prompt_add(p, close, answer);
    }
    return rc;
}

static int build_prompt_plain(const Template *tpl, Turn *turns, int n, Prompt *p, const char *where) {
    if (n != 2 || !strstr(turns[0].text, tpl->placeholder))
        return vlm_fail(VLM_ERR_INPUT, NULL, where,
                        "template plain needs exactly two messages, the first with the image placeholder");
    int rc = prompt_add(p, tpl->placeholder, false);
    if (rc == VLM_OK) rc = prompt_add(p, turns[1].text, true);
    if (rc == VLM_OK) rc = prompt_add(p, tpl->sep, true);
    return rc;
}

// Converts the other placeholder dialect to the template's.
static int normalise_dialect(char **text, const char *placeholder) {
    const char *other = strcmp(placeholder, "<image>") == 0 ? "<|image|>" : "<image>";
    if (!strstr(*text, other)) return VLM_OK;
    char *converted = str_replace_all(*text, other, placeholder);
    if (!converted) return VLM_ERR_FAIL;
    free(*text);
    *text = converted;
    return VLM_OK;
}

// ----------------------------------------------------------------------------

static int span_labels(const Prompt *p, const IdBuf *ids, const SpanBuf *spans, IdBuf *labels) {
    for (size_t i = 0; i < ids->len; i++) {
        int32_t s = spans->start.data[i], e = spans->end.data[i];
        bool learned = false;
        for (size_t r = 0; r < p->learned_start.len && !learned && ids->data[i] != IMAGE_TOKEN_INDEX && s < e; r++)
            learned = s < p->learned_end.data[r] && e > p->learned_start.data[r];
        if (ids_push(labels, learned ? ids->data[i] : IGNORE_INDEX) != VLM_OK) return VLM_ERR_FAIL;
    }
    return VLM_OK;
}

int template_render(const Template *tpl, const Tokenizer *tok, const Conversation *conv, int max_len,
                    MaskPolicy policy, Rendered *out, const char *where) {
    memset(out, 0, sizeof *out);
    bool has_image = conv->image != NULL;
    Turn *turns = vlm_calloc((size_t)conv->n_turns + 1, sizeof *turns);
    Prompt p = {0};
    IdBuf ids = {0}, upstream = {0};
    SpanBuf spans = {0};
    int rc = turns ? VLM_OK : VLM_ERR_FAIL;
    for (int i = 0; i < conv->n_turns && rc == VLM_OK; i++) {
        turns[i].role = conv->turns[i].role;
        turns[i].text = vlm_strdup(conv->turns[i].text);
        rc = turns[i].text ? normalise_dialect(&turns[i].text, tpl->placeholder) : VLM_ERR_FAIL;
        if (rc == VLM_OK && has_image) rc = move_placeholder_to_front(&turns[i].text, tpl->placeholder);
    }
    if (rc == VLM_OK) {
        rc = tpl->style == TPL_PLAIN ? build_prompt_plain(tpl, turns, conv->n_turns, &p, where)
                                     : build_prompt_turns(tpl, turns, conv->n_turns, &p, where);
    }
    // plain always goes through tokenizer_image_token; v1 only for records with an image
    bool image_path = has_image || tpl->style == TPL_PLAIN;
    if (rc == VLM_OK) rc = tokenize_like_upstream(tok, p.text.data, p.text.len, image_path, tpl->placeholder, &ids, &spans);
    out->full_len = ids.len;
    if (rc == VLM_OK && !image_path && max_len > 0 && ids.len > (size_t)max_len) {
        // upstream's text-only path truncates in the tokenizer call, before masking
        out->truncated = true;
        ids.len = spans.start.len = spans.end.len = (size_t)max_len;
    }
    out->item_len = ids.len;
    if (rc == VLM_OK) rc = ids_extend(&upstream, ids.data, ids.len);
    if (rc == VLM_OK) {
        if (tpl->style != TPL_PLAIN) {
            rc = upstream_labels_rounds(tpl, tok, p.text.data, image_path, max_len, &ids, &upstream, &out->mismatch);
        } else {
            long n_masked;
            rc = count_tokens(tok, tpl->placeholder, strlen(tpl->placeholder), true, tpl->placeholder, &n_masked);
            mask_range(&upstream, 0, n_masked);
        }
    }
    if (rc == VLM_OK) {
        if (policy == MASK_UPSTREAM) {
            out->labels = upstream;
            upstream = (IdBuf){0};
        } else {
            rc = span_labels(&p, &ids, &spans, &out->labels);
        }
    }
    if (rc == VLM_OK) {
        out->input_ids = ids;
        ids = (IdBuf){0};
        // the collator's truncation
        if (max_len > 0 && out->input_ids.len > (size_t)max_len) {
            out->truncated = true;
            out->input_ids.len = out->labels.len = (size_t)max_len;
        }
        for (size_t i = 0; i < out->input_ids.len; i++) out->n_images += out->input_ids.data[i] == IMAGE_TOKEN_INDEX;
    } else {
        rendered_free(out);
    }
    for (int i = 0; turns && i < conv->n_turns; i++) free(turns[i].text);
    free(turns);
    prompt_free(&p);
    ids_free(&ids);
    ids_free(&upstream);
    spans_free(&spans);
    return rc;
}
