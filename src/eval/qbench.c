// Q-Bench A1 (multiple choice) and A3 (quality score), see qbench.h.
#include "eval/qbench.h"

#include <jansson.h>  // the input lists
#include <math.h>     // exp, NAN
#include <stdio.h>    // snprintf
#include <stdlib.h>   // free
#include <string.h>   // strcmp, strchr, strlen

#include "core/alloc.h"      // vlm_malloc, vlm_calloc, vlm_strdup
#include "core/error.h"      // vlm_fail, vlm_fail_context
#include "core/file.h"       // path_join
#include "core/json.h"       // vlm_json_load_file, vlm_json_number
#include "core/log.h"        // log_debug
#include "core/progress.h"   // Progress
#include "eval/metrics.h"    // metric_spearman, metric_pearson

// ----------------------------------------------------------------------------
// prompts

static int append(StrBuf *b, const char *s) { return str_append(b, s, strlen(s)); }

int chat_prompt(const Template *tpl, const char *message, StrBuf *out) {
    int rc = VLM_OK;
    switch (tpl->style) {
    case TPL_PLAIN:
        rc = append(out, message);
        if (rc == VLM_OK) rc = append(out, tpl->sep);
        break;
    case TPL_TWO:
        if (tpl->system) {
            rc = append(out, tpl->system);
            if (rc == VLM_OK) rc = append(out, tpl->sep);
        }
        if (rc == VLM_OK) rc = append(out, tpl->roles[0]);
        if (rc == VLM_OK) rc = append(out, ": ");
        if (rc == VLM_OK) rc = append(out, message);
        if (rc == VLM_OK) rc = append(out, tpl->sep);
        if (rc == VLM_OK) rc = append(out, tpl->roles[1]);
        if (rc == VLM_OK) rc = append(out, ":");
        break;
    case TPL_MPT:
        rc = append(out, tpl->system ? tpl->system : "");
        if (rc == VLM_OK) rc = append(out, tpl->sep);
        if (rc == VLM_OK) rc = append(out, tpl->roles[0]);
        if (rc == VLM_OK) rc = append(out, message);
        if (rc == VLM_OK) rc = append(out, tpl->sep);
        if (rc == VLM_OK) rc = append(out, tpl->roles[1]);
        break;
    }
    return rc;
}

int image_message(const Template *tpl, const char *text, StrBuf *out) {
    bool owl = strcmp(tpl->placeholder, "<|image|>") == 0;
    int rc = append(out, tpl->placeholder);
    if (rc == VLM_OK && !owl) rc = append(out, "\n");
    if (rc == VLM_OK) rc = append(out, text);
    return rc;
}

int mcq_message(const Template *tpl, const McqItem *it, StrBuf *out) {
    StrBuf m = {0};
    bool owl = strcmp(tpl->placeholder, "<|image|>") == 0;
    int rc = append(&m, it->question);
    // mPLUG-Owl2's script (Q-Instruct de19120, "update to correct prompts"): a newline, the options,
    // then the instruction; LLaVA-1.5's: the instruction before the options
    if (rc == VLM_OK) rc = append(&m, owl ? "\n" : "\n" QBENCH_MCQ_INSTRUCTION "\n");
    for (int c = 0; rc == VLM_OK && c < it->n_candidates; c++) {
        char letter[4] = {(char)('A' + c), '.', ' ', '\0'};
        rc = append(&m, letter);
        if (rc == VLM_OK) rc = append(&m, it->candidates[c]);
        if (rc == VLM_OK) rc = append(&m, "\n");
    }
    if (rc == VLM_OK && owl) rc = append(&m, QBENCH_MCQ_INSTRUCTION "\n");
    if (rc == VLM_OK) rc = image_message(tpl, m.data, out);
    str_free(&m);
    return rc;
}

bool mcq_is_correct(const char *answer, char letter) { return strchr(answer, letter) != NULL && letter != '\0'; }

const char *mcq_type_name(int code) {
    static const char *const NAMES[] = {"yes-or-no", "what", "how"};
    return code >= 0 && code < 3 ? NAMES[code] : NULL;
}

const char *mcq_concern_name(int code) {
    static const char *const NAMES[] = {"distortion", "other", "in-context distortion", "in-context other"};
    return code >= 0 && code < 4 ? NAMES[code] : NULL;
}

int score_prompt(const Template *tpl, const char *query, StrBuf *out) {
    StrBuf m = {0};
    int rc = image_message(tpl, query, &m);
    if (rc == VLM_OK) rc = chat_prompt(tpl, m.data, out);
    str_free(&m);
    return rc;
}

// ----------------------------------------------------------------------------
// input files

static int load_list(const char *path, json_t **root) {
    json_error_t e;
    *root = vlm_json_load_file(path, 0, &e);
    if (!*root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", e.line, e.text);
    if (!json_is_array(*root)) {
        json_decref(*root);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "expected a JSON array of records");
    }
    return VLM_OK;
}

static char *dup_or_null(const json_t *v) { return json_is_string(v) ? vlm_strdup(json_string_value(v)) : NULL; }

// a category label: a string as written, an integer code with Q-Bench's name
static char *category(const json_t *v, const char *(*name)(int)) {
    char buf[96] = "";
    if (json_is_string(v)) return vlm_strdup(json_string_value(v));
    if (json_is_integer(v)) {
        int code = (int)json_integer_value(v);
        const char *n = name(code);
        if (n) snprintf(buf, sizeof buf, "%d (%s)", code, n);
        else snprintf(buf, sizeof buf, "%d", code);
    }
    return vlm_strdup(buf);
}

void mcq_items_free(McqItem *items, size_t n) {
    for (size_t i = 0; items && i < n; i++) {
        McqItem *it = &items[i];
        for (int c = 0; c < it->n_candidates; c++) free(it->candidates[c]);
        free(it->candidates), free(it->image), free(it->question), free(it->type), free(it->concern), free(it->id);
    }
    free(items);
}

int mcq_load(const char *path, McqItem **items, size_t *n) {
    *items = NULL, *n = 0;
    json_t *root;
    int rc = load_list(path, &root);
    if (rc != VLM_OK) return rc;
    size_t count = json_array_size(root);
    McqItem *all = vlm_calloc(count ? count : 1, sizeof *all);
    rc = all ? VLM_OK : VLM_ERR_FAIL;
    for (size_t i = 0; rc == VLM_OK && i < count; i++) {
        const json_t *r = json_array_get(root, i);
        McqItem *it = &all[i];
        char where[64];
        snprintf(where, sizeof where, "record %zu", i);
        const json_t *cands = json_object_get(r, "candidates"), *ans = json_object_get(r, "correct_ans");
        if (!json_is_object(r)) { rc = vlm_fail(VLM_ERR_INPUT, path, where, "not an object"); break; }
        it->image = dup_or_null(json_object_get(r, "img_path"));
        if (!it->image) it->image = dup_or_null(json_object_get(r, "image"));
        it->question = dup_or_null(json_object_get(r, "question"));
        if (!it->image) rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"img_path\" (a string) is missing");
        else if (!it->question) rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"question\" (a string) is missing");
        else if (!json_is_array(cands) || json_array_size(cands) < 2 || json_array_size(cands) > 26)
            rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"candidates\" must be an array of 2 to 26 strings");
        else if (!json_is_string(ans))
            rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"correct_ans\" (a string) is missing");
        if (rc != VLM_OK) break;
        it->candidates = vlm_calloc(json_array_size(cands), sizeof(char *));
        if (!it->candidates) { rc = VLM_ERR_FAIL; break; }
        it->n_candidates = (int)json_array_size(cands);
        it->correct = -1;
        for (int c = 0; c < it->n_candidates && rc == VLM_OK; c++) {
            it->candidates[c] = dup_or_null(json_array_get(cands, (size_t)c));
            if (!it->candidates[c]) rc = vlm_fail(VLM_ERR_INPUT, path, where, "candidates[%d] is not a string", c);
            // upstream picks the letter of the candidate equal to correct_ans (the last one if repeated)
            else if (strcmp(it->candidates[c], json_string_value(ans)) == 0) it->correct = c;
        }
        if (rc == VLM_OK && it->correct < 0)
            rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"correct_ans\" '%s' is none of the candidates",
                          json_string_value(ans));
        if (rc != VLM_OK) break;
        it->type = category(json_object_get(r, "type"), mcq_type_name);
        it->concern = category(json_object_get(r, "concern"), mcq_concern_name);
        const json_t *id = json_object_get(r, "id");
        char idbuf[32];
        if (json_is_integer(id)) snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(id));
        else snprintf(idbuf, sizeof idbuf, "%zu", i);
        it->id = vlm_strdup(json_is_string(id) ? json_string_value(id) : idbuf);
        if (!it->type || !it->concern || !it->id) rc = VLM_ERR_FAIL;
    }
    json_decref(root);
    if (rc != VLM_OK) {
        mcq_items_free(all, count);
        return rc;
    }
    *items = all, *n = count;
    return VLM_OK;
}

void score_items_free(ScoreItem *items, size_t n) {
    for (size_t i = 0; items && i < n; i++) free(items[i].image);
    free(items);
}

int score_load(const char *path, ScoreItem **items, size_t *n) {
    *items = NULL, *n = 0;
    json_t *root;
    int rc = load_list(path, &root);
    if (rc != VLM_OK) return rc;
    size_t count = json_array_size(root);
    ScoreItem *all = vlm_calloc(count ? count : 1, sizeof *all);
    rc = all ? VLM_OK : VLM_ERR_FAIL;
    for (size_t i = 0; rc == VLM_OK && i < count; i++) {
        const json_t *r = json_array_get(root, i);
        char where[64];
        snprintf(where, sizeof where, "record %zu", i);
        if (!json_is_object(r)) { rc = vlm_fail(VLM_ERR_INPUT, path, where, "not an object"); break; }
        all[i].image = dup_or_null(json_object_get(r, "image"));
        if (!all[i].image) all[i].image = dup_or_null(json_object_get(r, "img_path"));
        const json_t *g = json_object_get(r, "score");
        if (!g) g = json_object_get(r, "gt_score");
        if (!all[i].image) rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"image\" or \"img_path\" (a string) is missing");
        else if (vlm_json_is_number(g)) all[i].gt = vlm_json_number(g);  // NaN too: refused below, by name
        else if (json_is_string(g)) {  // Q-Bench's jsons hold gt_score as numbers or strings (float(di["gt_score"]))
            char *end;
            all[i].gt = strtod(json_string_value(g), &end);
            if (end == json_string_value(g) || *end)
                rc = vlm_fail(VLM_ERR_INPUT, path, where, "score '%s' is not a number", json_string_value(g));
        } else rc = vlm_fail(VLM_ERR_INPUT, path, where, "\"score\" or \"gt_score\" (a number) is missing");
        if (rc == VLM_OK && !isfinite(all[i].gt)) rc = vlm_fail(VLM_ERR_INPUT, path, where, "score is not finite");
    }
    json_decref(root);
    if (rc != VLM_OK) {
        score_items_free(all, count);
        return rc;
    }
    *items = all, *n = count;
    return VLM_OK;
}

// ----------------------------------------------------------------------------
// running

// the image of record i: decoded and preprocessed, errors naming data file and record
static int load_item_image(Infer *s, const char *folder, const char *image, const char *where, size_t i) {
    char *path = folder && folder[0] ? path_join(folder, image) : vlm_strdup(image);
    if (!path) return VLM_ERR_FAIL;
    int rc = infer_load_image(s, path);
    free(path);
    if (rc != VLM_OK) rc = vlm_fail_context(rc, "%s: record %zu", where, i);
    return rc;
}

static int tokenize_prompt(const Infer *s, const Tokenizer *tok, const Template *tpl, const char *text, IdBuf *ids,
                           int *n_images, const char *where, size_t i) {
    ids->len = 0;
    int rc = tokenize_image_prompt(tok, text, strlen(text), tpl->placeholder, ids, NULL);
    if (rc == VLM_OK) rc = infer_check_ids(s, ids->data, ids->len, n_images);
    if (rc != VLM_OK) return vlm_fail_context(rc, "%s: record %zu", where, i);
    return VLM_OK;
}

static int count_category(McqCategory **cats, int *n, const char *name, bool ok) {
    for (int i = 0; i < *n; i++)
        if (strcmp((*cats)[i].name, name) == 0) {
            (*cats)[i].total++, (*cats)[i].correct += ok;
            return VLM_OK;
        }
    McqCategory *grown = realloc(*cats, sizeof **cats * (size_t)(*n + 1));
    if (!grown) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    *cats = grown;
    grown[*n] = (McqCategory){vlm_strdup(name), ok, 1};
    if (!grown[*n].name) return VLM_ERR_FAIL;
    ++*n;
    return VLM_OK;
}

void mcq_results_free(McqResults *r) {
    for (size_t i = 0; r->answers && i < r->n; i++) free(r->answers[i]);
    for (int i = 0; i < r->n_type; i++) free(r->by_type[i].name);
    for (int i = 0; i < r->n_concern; i++) free(r->by_concern[i].name);
    free(r->answers), free(r->ok), free(r->by_type), free(r->by_concern);
    mcq_items_free(r->items, r->n);
    memset(r, 0, sizeof *r);
}

int eval_mcq(Infer *s, const Tokenizer *tok, const Template *tpl, const char *image_folder, const char *where,
             McqItem *items, size_t n, int max_new_tokens, McqResults *out) {
    memset(out, 0, sizeof *out);
    out->items = items, out->n = n;
    out->answers = vlm_calloc(n ? n : 1, sizeof(char *));
    out->ok = vlm_calloc(n ? n : 1, sizeof(bool));
    int rc = out->answers && out->ok ? VLM_OK : VLM_ERR_FAIL;
    GenerateOptions go = {max_new_tokens, template_stop_string(tpl)};
    IdBuf ids = {0};
    Progress pr;
    progress_begin(&pr, stderr, "eval mcq", "questions", n);
    for (size_t i = 0; rc == VLM_OK && i < n; i++) {
        StrBuf msg = {0}, prompt = {0};
        int n_images = 0;
        rc = mcq_message(tpl, &items[i], &msg);
        if (rc == VLM_OK) rc = chat_prompt(tpl, msg.data, &prompt);
        if (rc == VLM_OK) rc = tokenize_prompt(s, tok, tpl, prompt.data, &ids, &n_images, where, i);
        if (rc == VLM_OK) rc = load_item_image(s, image_folder, items[i].image, where, i);
        Generation g;
        if (rc == VLM_OK) rc = generate_greedy(s, tok, ids.data, (int)ids.len, n_images, &go, &g);
        if (rc == VLM_OK) {
            out->answers[i] = g.answer;
            g.answer = NULL;
            generation_free(&g);
            bool ok = mcq_is_correct(out->answers[i], (char)('A' + items[i].correct));
            out->ok[i] = ok;
            out->correct += ok;
            rc = count_category(&out->by_type, &out->n_type, items[i].type, ok);
            if (rc == VLM_OK) rc = count_category(&out->by_concern, &out->n_concern, items[i].concern, ok);
            log_debug("mcq %zu/%zu: %s (correct %c) %s", i + 1, n, out->answers[i], 'A' + items[i].correct,
                     ok ? "ok" : "wrong");
        }
        str_free(&msg);
        str_free(&prompt);
        progress_update(&pr, i + 1);
    }
    progress_end(&pr);
    ids_free(&ids);
    if (rc != VLM_OK) mcq_results_free(out);
    return rc;
}

int qbench_word_id(const Tokenizer *tok, const char *word, int32_t *id) {
    // the word after another word: "a good" minus "a" (SentencePiece "▁good", tiktoken " good")
    IdBuf a = {0}, b = {0};
    char text[128];
    snprintf(text, sizeof text, "a %s", word);
    int rc = tokenizer_encode(tok, "a", 1, 0, &a);
    if (rc == VLM_OK) rc = tokenizer_encode(tok, text, strlen(text), 0, &b);
    if (rc == VLM_OK) {
        bool prefix = b.len == a.len + 1;
        for (size_t i = 0; prefix && i < a.len; i++) prefix = a.data[i] == b.data[i];
        if (prefix) *id = b.data[a.len];
        else rc = vlm_fail(VLM_ERR_INPUT, tok->path, word, "' %s' is not one token of this tokenizer", word);
    }
    ids_free(&a);
    ids_free(&b);
    return rc;
}

void score_results_free(ScoreResults *r) {
    free(r->logit_good), free(r->logit_poor), free(r->score);
    score_items_free(r->items, r->n);
    memset(r, 0, sizeof *r);
}

int eval_score(Infer *s, const Tokenizer *tok, const Template *tpl, const char *image_folder, const char *where,
               const char *query, double temperature, ScoreItem *items, size_t n, ScoreResults *out) {
    memset(out, 0, sizeof *out);
    out->items = items, out->n = n;
    out->srcc = out->plcc = NAN;
    size_t sz = sizeof(double) * (n ? n : 1);
    out->logit_good = vlm_malloc(sz), out->logit_poor = vlm_malloc(sz), out->score = vlm_malloc(sz);
    int rc = out->logit_good && out->logit_poor && out->score ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK && !(temperature > 0)) rc = vlm_fail(VLM_ERR_INPUT, NULL, "--temperature", "must be positive");
    if (rc == VLM_OK) rc = qbench_word_id(tok, "good", &out->good_id);
    if (rc == VLM_OK) rc = qbench_word_id(tok, "poor", &out->poor_id);
    int V = s->cfg.text.vocab;
    if (rc == VLM_OK && (out->good_id >= V || out->poor_id >= V))
        rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "' good' (%d) or ' poor' (%d) is outside the model's vocabulary of %d",
                      out->good_id, out->poor_id, V);
    StrBuf prompt = {0};
    IdBuf ids = {0};
    int n_images = 0;
    if (rc == VLM_OK) rc = score_prompt(tpl, query, &prompt);
    // one prompt for every image
    if (rc == VLM_OK) {
        rc = tokenize_image_prompt(tok, prompt.data, prompt.len, tpl->placeholder, &ids, NULL);
        if (rc == VLM_OK) rc = infer_check_ids(s, ids.data, ids.len, &n_images);
        if (rc != VLM_OK) rc = vlm_fail_context(rc, "the score prompt '%s'", query);
    }
    if (rc == VLM_OK) rc = infer_reserve(s, (int)ids.len);
    Progress pr;
    bool started = rc == VLM_OK;
    if (started) progress_begin(&pr, stderr, "eval score", "images", n);
    for (size_t i = 0; rc == VLM_OK && i < n; i++) {
        rc = load_item_image(s, image_folder, items[i].image, where, i);
        const float *logits;
        if (rc == VLM_OK) rc = infer_next_logits(s, ids.data, (int)ids.len, n_images, &logits, NULL);
        if (rc != VLM_OK) break;
        double lg = logits[out->good_id], lp = logits[out->poor_id];
        // Q-Bench's softmax(a, b, temperature): exp(a/T) / (exp(a/T) + exp(b/T)), shifted by the max
        double a = lg / temperature, b = lp / temperature, m = a > b ? a : b;
        out->logit_good[i] = lg, out->logit_poor[i] = lp;
        out->score[i] = exp(a - m) / (exp(a - m) + exp(b - m));
        log_debug("score %zu/%zu: %s p(good)=%.6f", i + 1, n, items[i].image, out->score[i]);
        progress_update(&pr, i + 1);
    }
    if (started) progress_end(&pr);
    str_free(&prompt);
    ids_free(&ids);
    if (rc == VLM_OK) {
        double *gt = vlm_malloc(sz);
        if (!gt) rc = VLM_ERR_FAIL;
        for (size_t i = 0; gt && i < n; i++) gt[i] = items[i].gt;
        if (gt && metric_spearman(gt, out->score, n, &out->srcc) != VLM_OK)
            snprintf(out->srcc_note, sizeof out->srcc_note, "%s", vlm_last_error());
        if (gt && metric_pearson(gt, out->score, n, &out->plcc) != VLM_OK)
            snprintf(out->plcc_note, sizeof out->plcc_note, "%s", vlm_last_error());
        vlm_clear_error();
        free(gt);
    }
    if (rc != VLM_OK) score_results_free(out);
    return rc;
}
