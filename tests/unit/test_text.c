// Parity tests of the text path against fixtures written by the references
// (tools/make_text_fixtures.py: sentencepiece, transformers' slow LLaMA
// tokenizer, tiktoken, and the upstream preprocess functions). Every id and
// every label must match exactly.
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "text/regex_split.h"
#include "text/template.h"
#include "text/tokenizer.h"
#include "test_util.h"

#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define LLAMA3 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama3/tokenizer.model"

static json_t *load_fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "text/%s", name);
    json_error_t err;
    json_t *j = json_load_file(fixture(rel), 0, &err);
    ck_assert_msg(j != NULL, "%s: %s", name, err.text);
    return j;
}

static void assert_ids_equal(const IdBuf *got, json_t *want, const char *what, size_t index) {
    size_t n = json_array_size(want);
    int same = got->len == n;
    for (size_t k = 0; same && k < n; k++) same = got->data[k] == json_integer_value(json_array_get(want, k));
    if (!same) {
        char g[512] = "", *w = json_dumps(want, JSON_COMPACT);
        for (size_t k = 0; k < got->len && strlen(g) < 480; k++) snprintf(g + strlen(g), sizeof g - strlen(g), "%d,", got->data[k]);
        ck_abort_msg("%s %zu:\n  got  [%s]\n  want %.500s", what, index, g, w);
    }
}

// Each text encodes to the reference's ids.
static void assert_encodes(const Tokenizer *tok, json_t *texts, json_t *expected, int flags, const char *what) {
    ck_assert_uint_eq(json_array_size(expected), json_array_size(texts));
    size_t i;
    json_t *text;
    json_array_foreach(texts, i, text) {
        IdBuf ids = {0};
        ck_assert_int_eq(tokenizer_encode(tok, json_string_value(text), json_string_length(text), flags, &ids), VLM_OK);
        assert_ids_equal(&ids, json_array_get(expected, i), what, i);
        ids_free(&ids);
    }
}

// The reference's ids, without their first (BOS), decode to the reference's text.
static void assert_decodes(const Tokenizer *tok, json_t *encoded, json_t *decoded, const char *what) {
    size_t i;
    json_t *ids_json;
    json_array_foreach(encoded, i, ids_json) {
        IdBuf ids = {0};
        for (size_t k = 1; k < json_array_size(ids_json); k++) ids_push(&ids, (int32_t)json_integer_value(json_array_get(ids_json, k)));
        StrBuf text = {0};
        ck_assert_int_eq(tokenizer_decode(tok, ids.data, ids.len, &text), VLM_OK);
        const char *want = json_string_value(json_array_get(decoded, i));
        ck_assert_msg(strcmp(text.data ? text.data : "", want) == 0, "%s decode %zu: '%s' != '%s'", what, i, text.data, want);
        str_free(&text);
        ids_free(&ids);
    }
}

// Encodes every corpus string and compares with the reference's ids.
static void check_encoding_mode(const char *model, const char *fixture_name, const char *key, int flags, bool legacy) {
    Tokenizer tok;
    ck_assert_msg(tokenizer_load(&tok, model) == VLM_OK, "%s", vlm_last_error());
    tok.legacy = legacy;  // what tokenizer_config.json's "legacy" sets
    json_t *corpus = load_fixture("corpus.json"), *ref = load_fixture(fixture_name);
    assert_encodes(&tok, corpus, json_object_get(ref, key), flags, key);
    json_decref(corpus);
    json_decref(ref);
    tokenizer_free(&tok);
}

static void check_encoding(const char *model, const char *fixture_name, const char *key, int flags) {
    check_encoding_mode(model, fixture_name, key, flags, true);
}

// Decodes the reference's ids (without BOS) back to the reference's text.
static void check_decoding(const char *model, const char *fixture_name) {
    Tokenizer tok;
    ck_assert_int_eq(tokenizer_load(&tok, model), VLM_OK);
    json_t *ref = load_fixture(fixture_name);
    assert_decodes(&tok, json_object_get(ref, "encode"), json_object_get(ref, "decode"), fixture_name);
    json_decref(ref);
    tokenizer_free(&tok);
}

START_TEST(llama2_sentencepiece_encode) { check_encoding(LLAMA2, "llama2.json", "encode", TOK_ADD_BOS); }
END_TEST
START_TEST(llama2_hf_slow_legacy_specials) { check_encoding(LLAMA2, "llama2.json", "hf_slow", TOK_ADD_BOS | TOK_SPLIT_SPECIAL); }
END_TEST
START_TEST(llama2_hf_slow_nonlegacy) {
    check_encoding_mode(LLAMA2, "llama2.json", "hf_slow_nonlegacy", TOK_ADD_BOS | TOK_SPLIT_SPECIAL, false);
}
END_TEST
START_TEST(llama2_decode) { check_decoding(LLAMA2, "llama2.json"); }
END_TEST
START_TEST(llama3_tiktoken_encode) { check_encoding(LLAMA3, "llama3.json", "encode", TOK_ADD_BOS | TOK_SPLIT_SPECIAL); }
END_TEST
START_TEST(llama3_decode) { check_decoding(LLAMA3, "llama3.json"); }
END_TEST

START_TEST(llama3_special_table_matches_reference) {
    Tokenizer tok;
    ck_assert_int_eq(tokenizer_load(&tok, LLAMA3), VLM_OK);
    json_t *ref = load_fixture("llama3.json");
    json_t *specials = json_object_get(ref, "special_tokens");
    ck_assert_int_eq((int)json_object_size(specials), 256);
    const char *name;
    json_t *id;
    json_object_foreach(specials, name, id) ck_assert_int_eq(tokenizer_token_id(&tok, name), json_integer_value(id));
    ck_assert_str_eq(json_string_value(json_object_get(ref, "pattern")), LLAMA3_SPLIT_PATTERN);
    json_decref(ref);
    tokenizer_free(&tok);
}
END_TEST

// A pattern that can match empty: the split steps over the empty match instead
// of stopping there (the text after it must not be lost).
START_TEST(regex_split_pieces) {
    void *re;
    ck_assert_int_eq(regex_compile("a*", "test", NULL, &re), VLM_OK);
    const char *text = "b\xc3\xa9" "aab";  // "béaab"
    SpanBuf with_gaps = {0}, matches = {0};
    ck_assert_int_eq(regex_split(re, text, strlen(text), true, &with_gaps), VLM_OK);
    ck_assert_int_eq(regex_split(re, text, strlen(text), false, &matches), VLM_OK);
    const int32_t gaps_want[3][2] = {{0, 3}, {3, 5}, {5, 6}};  // "bé" "aa" "b"
    ck_assert_uint_eq(with_gaps.start.len, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(with_gaps.start.data[i], gaps_want[i][0]);
        ck_assert_int_eq(with_gaps.end.data[i], gaps_want[i][1]);
    }
    ck_assert_uint_eq(matches.start.len, 1);
    ck_assert_int_eq(matches.start.data[0], 3);
    ck_assert_int_eq(matches.end.data[0], 5);
    spans_free(&with_gaps);
    spans_free(&matches);
    regex_free(re);
    ck_assert_int_eq(regex_compile("(unclosed", "tokenizer.json", "pre_tokenizer", &re), VLM_ERR_INPUT);
    ck_assert(strstr(vlm_last_error(), "tokenizer.json: pre_tokenizer: split regex does not compile") != NULL);
}
END_TEST

START_TEST(bad_tokenizer_files) {
    Tokenizer tok;
    ck_assert_int_eq(tokenizer_load(&tok, fixture("formats/dtypes.safetensors")), VLM_ERR_INPUT);
    ck_assert_int_eq(tokenizer_load(&tok, fixture("does-not-exist/tokenizer.model")), VLM_ERR_INPUT);
    ck_assert_int_eq(tokenizer_load(&tok, fixture("formats")), VLM_ERR_INPUT);
    ck_assert(strstr(vlm_last_error(), "no tokenizer.model or tokenizer.json") != NULL);
    ck_assert_int_eq(tokenizer_load(&tok, LLAMA2), VLM_OK);
    IdBuf ids = {0};
    ck_assert_int_eq(tokenizer_encode(&tok, "a\xff" "b", 3, 0, &ids), VLM_ERR_INPUT);
    ck_assert(strstr(vlm_last_error(), "not valid UTF-8") != NULL);
    ids_free(&ids);
    tokenizer_free(&tok);
}
END_TEST

// tokenizer.json layouts trained by HF tokenizers (tools/make_hf_tokenizer_fixtures.py):
// every corpus string encodes to HF's ids and HF's ids decode to HF's text.
static void check_hf_layout(const char *layout) {
    char dir[256], exp_name[256];
    snprintf(dir, sizeof dir, "%s", fixture("text/hf/"));
    strncat(dir, layout, sizeof dir - strlen(dir) - 1);
    snprintf(exp_name, sizeof exp_name, "hf/%s/expected.json", layout);
    Tokenizer tok;
    ck_assert_msg(tokenizer_load(&tok, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(tok.kind, TOK_HF_BPE);
    json_t *corpus = load_fixture("corpus.json"), *ref = load_fixture(exp_name);
    assert_encodes(&tok, corpus, json_object_get(ref, "encode"), TOK_ADD_BOS | TOK_SPLIT_SPECIAL, layout);
    assert_decodes(&tok, json_object_get(ref, "encode"), json_object_get(ref, "decode"), layout);
    json_decref(corpus);
    json_decref(ref);
    tokenizer_free(&tok);
}

START_TEST(hf_json_sentencepiece_layout) { check_hf_layout("sp_bpe"); }
END_TEST
START_TEST(hf_json_metaspace_layout) { check_hf_layout("metaspace"); }
END_TEST
START_TEST(hf_json_byte_level_layout) { check_hf_layout("byte_level"); }
END_TEST

// A Phi-3 model directory as users have it: the LLaMA-2 tokenizer.model (which
// Phi-3 reuses) beside Phi-3's tokenizer_config.json and special_tokens_map.json.
static const char *phi3_dir(void) {
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "/tmp/vlm-phi3-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *names[3] = {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        char target[512], link[128];
        if (i == 0) snprintf(target, sizeof target, "%s", LLAMA2);
        else snprintf(target, sizeof target, "%s", fixture(i == 1 ? "text/phi3/tokenizer_config.json" : "text/phi3/special_tokens_map.json"));
        snprintf(link, sizeof link, "%s/%s", dir, names[i]);
        ck_assert_int_eq(symlink(target, link), 0);
    }
    return dir;
}

START_TEST(phi3_tokenizer_directory) {
    Tokenizer tok;
    ck_assert_msg(tokenizer_load(&tok, phi3_dir()) == VLM_OK, "%s", vlm_last_error());
    ck_assert(!tok.legacy && !tok.add_bos);
    ck_assert_int_eq(tok.pad_id, 32000);
    json_t *ref = load_fixture("phi3_tokenize.json");
    assert_encodes(&tok, json_object_get(ref, "texts"), json_object_get(ref, "ids"), TOK_ADD_BOS | TOK_SPLIT_SPECIAL, "phi3");
    json_decref(ref);
    tokenizer_free(&tok);
}
END_TEST

// ---------------------------------------------------------------------------- templates

static bool has_answer(const Conversation *c) {
    for (int i = 0; i < c->n_turns; i++)
        if (c->turns[i].role == ROLE_GPT && c->turns[i].text[0]) return true;
    return false;
}

static bool has_empty_answer(const Conversation *c) {
    for (int i = 0; i < c->n_turns; i++)
        if (c->turns[i].role == ROLE_GPT && !c->turns[i].text[0]) return true;
    return false;
}

// name: the fixture set (render_NAME_*); its params may say "legacy": false,
// which renders template v1 with a non-legacy tokenizer.
static void check_template(const char *name) {
    json_t *all_params = load_fixture("render_params.json");
    json_t *params = json_object_get(all_params, name);
    bool legacy = !json_is_false(json_object_get(params, "legacy"));
    ck_assert_msg(params != NULL, "no render params for %s", name);
    const char *tok_name = json_string_value(json_object_get(params, "tokenizer"));
    int max_len = (int)json_integer_value(json_object_get(params, "max_len"));
    Tokenizer tok;
    const char *path = strcmp(tok_name, "llama3") == 0 ? LLAMA3 : strcmp(tok_name, "phi3") == 0 ? phi3_dir() : LLAMA2;
    ck_assert_msg(tokenizer_load(&tok, path) == VLM_OK, "%s", vlm_last_error());
    tok.legacy = legacy;
    const Template *tpl = template_find(strcmp(name, "v1_nonlegacy") == 0 ? "v1" : name);
    ck_assert_ptr_nonnull(tpl);
    ck_assert_int_eq(template_prepare_tokenizer(tpl, &tok), VLM_OK);
    ck_assert_int_eq(tok.pad_id >= 0 ? tok.pad_id : tok.unk_id, json_integer_value(json_object_get(params, "pad_token_id")));
    char data_name[128], expected_name[128];
    snprintf(data_name, sizeof data_name, "render_%s_data.json", name);
    snprintf(expected_name, sizeof expected_name, "text/render_%s_expected.jsonl", name);
    json_t *data = load_fixture(data_name);
    FILE *f = fopen(fixture(expected_name), "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL;
    size_t cap = 0;
    size_t i;
    json_t *record;
    int checked_spans = 0;
    json_array_foreach(data, i, record) {
        ck_assert(getline(&line, &cap, f) > 0);
        json_t *want = json_loads(line, 0, NULL);
        Conversation conv;
        char where[32];
        snprintf(where, sizeof where, "record %zu", i);
        ck_assert_msg(conversation_parse(&conv, record, where) == VLM_OK, "%s", vlm_last_error());
        Rendered up, spans;
        ck_assert_msg(template_render(tpl, &tok, &conv, max_len, MASK_UPSTREAM, &up, where) == VLM_OK, "%s", vlm_last_error());
        assert_ids_equal(&up.input_ids, json_object_get(want, "input_ids"), "input_ids of record", i);
        assert_ids_equal(&up.labels, json_object_get(want, "labels"), "upstream labels of record", i);
        ck_assert_msg(up.mismatch == json_is_true(json_object_get(want, "mismatch")), "mismatch flag of record %zu", i);
        // the default policy: the same ids, and the same labels wherever upstream had no mismatch
        ck_assert_int_eq(template_render(tpl, &tok, &conv, max_len, MASK_SPANS, &spans, where), VLM_OK);
        assert_ids_equal(&spans.input_ids, json_object_get(want, "input_ids"), "input_ids (spans) of record", i);
        // upstream's count is checked only below max_len: a truncated record may
        // carry its arithmetic's drift unreported (llava_phi_3); and for an empty
        // answer upstream may label the neighbouring markers: compare the rest
        if (!up.mismatch && !up.truncated && !has_empty_answer(&conv)) {
            assert_ids_equal(&spans.labels, json_object_get(want, "labels"), "span labels of record", i);
            checked_spans++;
        } else if (!spans.truncated && has_answer(&conv)) {
            int learned = 0;
            for (size_t k = 0; k < spans.labels.len; k++) learned += spans.labels.data[k] != IGNORE_INDEX;
            ck_assert_msg(learned > 0, "record %zu: a mismatched record still has answers to learn", i);
        }
        rendered_free(&up);
        rendered_free(&spans);
        conversation_free(&conv);
        json_decref(want);
    }
    ck_assert_int_ge((int)json_array_size(data), 200);
    ck_assert_int_gt(checked_spans, 100);
    free(line);
    fclose(f);
    json_decref(data);
    tokenizer_free(&tok);
    json_decref(all_params);
}

START_TEST(template_plain) { check_template("plain"); }
END_TEST
START_TEST(template_v1) { check_template("v1"); }
END_TEST
START_TEST(template_mplug_owl2) { check_template("mplug_owl2"); }
END_TEST
START_TEST(template_llava_llama_3) { check_template("llava_llama_3"); }
END_TEST
START_TEST(template_v1_nonlegacy) { check_template("v1_nonlegacy"); }
END_TEST
START_TEST(template_llava_phi_3) { check_template("llava_phi_3"); }
END_TEST

Suite *text_suite(void) {
    return SUITE("text", "parser", 300,
                 llama2_sentencepiece_encode,
                 llama2_hf_slow_legacy_specials,
                 llama2_hf_slow_nonlegacy,
                 llama2_decode,
                 llama3_tiktoken_encode,
                 llama3_decode,
                 llama3_special_table_matches_reference,
                 regex_split_pieces,
                 bad_tokenizer_files,
                 hf_json_sentencepiece_layout,
                 hf_json_metaspace_layout,
                 hf_json_byte_level_layout,
                 phi3_tokenizer_directory,
                 template_plain,
                 template_v1,
                 template_mplug_owl2,
                 template_llava_llama_3,
                 template_v1_nonlegacy,
                 template_llava_phi_3);
}
