// JSON as Python's json writes it (issue 13, item 1): integers of any size
// (transformers' VERY_LARGE_INTEGER model_max_length), NaN and Infinity,
// read through the real entry points from files transformers 4.37.2 and
// 4.31.0 saved (tests/fixtures/json, tools/make_json_fixtures.sh).
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "data/dataset.h"
#include "image/preprocess.h"
#include "model/config.h"
#include "model/weights.h"
#include "test_util.h"
#include "text/conversation.h"
#include "text/tokenizer.h"
#include "train/run_log.h"

#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define VERY_LARGE "1000000000000000019884624838656"  // transformers' VERY_LARGE_INTEGER, int(1e30)

static const char *const VERSIONS[2] = {"transformers-4.37.2", "transformers-4.31.0"};

static const char *fixture_in(const char *version, const char *name) {
    char relative[256];
    snprintf(relative, sizeof relative, "json/%s/%s", version, name);
    return fixture(relative);
}

static json_t *loads(const char *text, size_t flags, json_error_t *e) {
    json_t *j = vlm_json_loads(text, flags, e);
    ck_assert_msg(j != NULL, "%s: %s (line %d)", text, e->text, e->line);
    return j;
}

// ---- the parser

START_TEST(python_isms_are_read) {
    json_error_t e;
    json_t *j = loads("{\"max\": " VERY_LARGE ", \"neg\": -99999999999999999999, \"nan\": NaN,\n"
                      " \"inf\": Infinity, \"ninf\": -Infinity, \"far\": 1e400, \"huge\": 1" "000000000" "000000000"
                      "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000"
                      "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000"
                      "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000"
                      "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000" "000000000"
                      "000000000" ",\n \"int64\": 9223372036854775807, \"min64\": -9223372036854775808,"
                      " \"text\": \"NaN 12345678901234567890123 \\\" Infinity\", \"list\": [NaN,1,-Infinity]}",
                      JSON_REJECT_DUPLICATES, &e);
    long long x = 0;
    ck_assert_int_eq(vlm_json_length(json_object_get(j, "max"), 1, 1 << 30, -1, &x, "f", "max"), VLM_OK);
    ck_assert_int_eq(x, -1);  // no limit
    ck_assert(vlm_json_number(json_object_get(j, "max")) == 1e30);  // Python's float(VERY_LARGE_INTEGER)
    ck_assert(vlm_json_number(json_object_get(j, "neg")) == -1e20);
    ck_assert(isnan(vlm_json_number(json_object_get(j, "nan"))));
    ck_assert(isinf(vlm_json_number(json_object_get(j, "inf"))) && vlm_json_number(json_object_get(j, "inf")) > 0);
    ck_assert(isinf(vlm_json_number(json_object_get(j, "ninf"))) && vlm_json_number(json_object_get(j, "ninf")) < 0);
    ck_assert(isinf(vlm_json_number(json_object_get(j, "far"))));  // Python's json.loads("1e400") is inf
    ck_assert(isinf(vlm_json_number(json_object_get(j, "huge"))));  // 10**315: beyond the double range
    ck_assert(vlm_json_is_number(json_object_get(j, "huge")));
    // what jansson holds itself stays as it was
    ck_assert(json_is_integer(json_object_get(j, "int64")) && json_integer_value(json_object_get(j, "min64")) == INT64_MIN);
    ck_assert_str_eq(json_string_value(json_object_get(j, "text")), "NaN 12345678901234567890123 \" Infinity");
    ck_assert(!vlm_json_is_number(json_object_get(j, "text")));
    json_t *list = json_object_get(j, "list");
    ck_assert(isnan(vlm_json_number(json_array_get(list, 0))) && vlm_json_number(json_array_get(list, 1)) == 1);
    char text[64];
    ck_assert_str_eq(vlm_json_number_text(json_object_get(j, "max"), text, sizeof text), VERY_LARGE);
    ck_assert_str_eq(vlm_json_number_text(json_object_get(j, "ninf"), text, sizeof text), "-Infinity");
    json_decref(j);
    // a bare value, and the buffer form
    j = loads("NaN", JSON_DECODE_ANY, &e);
    ck_assert(isnan(vlm_json_number(j)));
    json_decref(j);
    const char buf[] = "[12345678901234567890123]xyz";
    j = vlm_json_loadb(buf, 25, 0, &e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(vlm_json_number_text(json_array_get(j, 0), text, sizeof text), "12345678901234567890123");
    json_decref(j);
}
END_TEST

// An error after a rewritten literal is reported where it is in the file:
// same line, column and position as jansson gives for a same-length number.
START_TEST(errors_keep_their_place) {
    json_error_t e, ref;
    ck_assert_ptr_null(vlm_json_loads("{\"a\": [NaN, 123456789012345678901234],\n \"b\": 1,, \"c\": 2}", 0, &e));
    ck_assert_ptr_null(json_loads("{\"a\": [1.0, 123456789012345678.00000],\n \"b\": 1,, \"c\": 2}", 0, &ref));
    ck_assert_int_eq(e.line, 2);
    ck_assert_int_eq(e.line, ref.line);
    ck_assert_int_eq(e.column, ref.column);
    ck_assert_int_eq(e.position, ref.position);
    ck_assert_str_eq(e.text, ref.text);
    // nothing to rewrite: jansson's own error, unchanged
    ck_assert_ptr_null(vlm_json_loads("[1, 2", 0, &e));
    ck_assert_ptr_null(json_loads("[1, 2", 0, &ref));
    ck_assert_str_eq(e.text, ref.text);
    ck_assert_int_eq(e.position, ref.position);
    // a duplicate key is refused on the rewritten path too, at its line
    ck_assert_ptr_null(vlm_json_loads("{\"a\": NaN,\n\"a\": 1}", JSON_REJECT_DUPLICATES, &e));
    ck_assert_msg(strstr(e.text, "duplicate") && e.line == 2, "%s line %d", e.text, e.line);
    json_t *j = loads("{\"a\": NaN,\n\"a\": 1}", 0, &e);  // without the flag: jansson's rule, the last wins
    ck_assert_int_eq(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
}
END_TEST

// The markers need NUL in strings; the user's own "\u0000" stays refused
// (a file holding the very text of a marker must not read as NaN), and so do
// lone surrogates, which Python writes for a str that is not Unicode.
START_TEST(nul_and_lone_surrogates_stay_refused) {
    json_error_t e;
    ck_assert_ptr_null(vlm_json_loads("[\"\\u0000NaN\"]", 0, &e));
    ck_assert_msg(strstr(e.text, "\\u0000"), "%s", e.text);
    ck_assert_ptr_null(vlm_json_loads("[NaN,\n \"x\\u0000\"]", 0, &e));
    ck_assert_msg(strstr(e.text, "\\u0000") && e.line == 2 && e.column == 9, "%s %d:%d", e.text, e.line, e.column);
    ck_assert_ptr_null(vlm_json_loads("[NaN, \"\\ud800\"]", 0, &e));
    ck_assert_msg(strstr(e.text, "invalid Unicode"), "%s", e.text);
    json_t *j = loads("[\"\\u0000NaN\"]", JSON_ALLOW_NUL, &e);  // a caller that allows NUL gets its string
    ck_assert(!vlm_json_is_number(json_array_get(j, 0)) || json_string_length(json_array_get(j, 0)) == 4);
    json_decref(j);
}
END_TEST

START_TEST(integer_getters_name_file_key_and_value) {
    json_error_t e;
    json_t *j = loads("{\"a\": " VERY_LARGE ", \"b\": -" VERY_LARGE ", \"c\": 2.5, \"d\": NaN, \"e\": \"7\", \"f\": 7}",
                      0, &e);
    long long x = 0;
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "a"), 1, 262144, &x, "config.json", "hidden_size"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "config.json: hidden_size: " VERY_LARGE " is outside [1, 262144]");
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "b"), 1, 9, &x, "f", "k"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "-" VERY_LARGE " is outside"), "%s", vlm_last_error());
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "c"), 1, 9, &x, "f", "k"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: k: expected an integer, got 2.5");
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "d"), 1, 9, &x, "f", "k"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: k: expected an integer, got NaN");
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "e"), 1, 9, &x, "f", "k"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: k: expected an integer");
    ck_assert_int_eq(vlm_json_int(json_object_get(j, "f"), 1, 9, &x, "f", "k"), VLM_OK);
    ck_assert_int_eq(x, 7);
    // a length: beyond the bound is no limit, below it an error
    ck_assert_int_eq(vlm_json_length(json_object_get(j, "f"), 1, 5, 0, &x, "f", "k"), VLM_OK);
    ck_assert_int_eq(x, 0);
    ck_assert_int_eq(vlm_json_length(json_object_get(j, "b"), 1, 5, 0, &x, "f", "k"), VLM_ERR_INPUT);
    double d = 0;
    ck_assert_int_eq(vlm_json_real(json_object_get(j, "d"), &d, "f", "k"), VLM_OK);
    ck_assert(isnan(d));
    ck_assert_int_eq(vlm_json_real(json_object_get(j, "e"), &d, "f", "k"), VLM_ERR_INPUT);
    json_decref(j);
}
END_TEST

// ---- files as transformers saves them, through the real entry points

// A tokenizer folder: the fixture's JSON files beside the LLaMA-2 tokenizer.model.
static const char *tokenizer_dir(const char *version) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/vlm-json-tok-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *names[3] = {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        char target[512], relative[64], link[128];
        snprintf(relative, sizeof relative, "tokenizer/%s", names[i]);
        snprintf(target, sizeof target, "%s", i == 0 ? LLAMA2 : fixture_in(version, relative));
        snprintf(link, sizeof link, "%s/%s", dir, names[i]);
        ck_assert_int_eq(symlink(target, link), 0);
    }
    return dir;
}

START_TEST(tokenizer_folders_open) {
    const char *version = VERSIONS[_i];
    const char *dir = tokenizer_dir(version);
    Tokenizer t;
    ck_assert_msg(tokenizer_load(&t, dir) == VLM_OK, "%s: %s", version, vlm_last_error());  // was: too big integer
    ck_assert_int_eq(t.bos_id, 1);
    ck_assert_int_eq(t.eos_id, 2);
    ck_assert_int_eq(t.unk_id, 0);
    IdBuf ids = {0};
    ck_assert_int_eq(tokenizer_encode(&t, "Hello world", 11, TOK_ADD_BOS | TOK_SPLIT_SPECIAL, &ids), VLM_OK);
    ck_assert_int_eq(ids.len, 3);
    ck_assert(ids.data[0] == 1 && ids.data[1] == 15043 && ids.data[2] == 3186);
    ids_free(&ids);
    tokenizer_free(&t);
    // model_max_length as transformers compares against it: no limit
    json_error_t e;
    json_t *config = vlm_json_load_file(fixture_in(version, "tokenizer/tokenizer_config.json"), JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(config != NULL, "%s", e.text);
    long long max_len = 0;
    ck_assert_int_eq(vlm_json_length(json_object_get(config, "model_max_length"), 1, 1 << 30, 0, &max_len,
                                     "tokenizer_config.json", "model_max_length"), VLM_OK);
    ck_assert_int_eq(max_len, 0);
    json_decref(config);
    remove_tree(dir);
}
END_TEST

// `vlm tokenize --tokenizer DIR` on such a folder (it stopped with "invalid JSON: too big integer").
START_TEST(tokenize_command_opens_the_folder) {
    const char *dir = tokenizer_dir(VERSIONS[_i]);
    char args[256], out[4096], err[4096];
    snprintf(args, sizeof args, "tokenize --tokenizer %s", dir);
    int rc = run_vlm_input(args, temp_file("\"Hello world\""), out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_str_eq(out, "[1,15043,3186]\n");
    remove_tree(dir);
}
END_TEST

START_TEST(model_configs_load) {
    const char *version = VERSIONS[_i];
    LlavaConfig c;
    char original[512], clip[512];
    snprintf(original, sizeof original, "%s", fixture_in(version, "original"));
    snprintf(clip, sizeof clip, "%s", fixture_in(version, "original/clip"));
    ck_assert_msg(llava_config_load_original(&c, original, clip) == VLM_OK, "%s: %s", version, vlm_last_error());
    ck_assert(c.text.hidden == 16 && c.text.layers == 2 && c.text.vocab == 32000 && c.vision.hidden == 8);
    ck_assert(c.vision.image_size == 28 && c.vision.patch == 14 && c.feature_layer == -2);
    if (_i == 0) {  // llava-hf's LlavaConfig exists from 4.36
        ck_assert_msg(llava_config_load(&c, fixture_in(version, "llava/config.json")) == VLM_OK, "%s", vlm_last_error());
        ck_assert(c.text.hidden == 16 && c.vision.hidden == 8 && c.image_token_index == 32000);
    }
    json_error_t e;
    json_t *g = vlm_json_load_file(fixture_in(version, "original/generation_config.json"), JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(g && json_integer_value(json_object_get(g, "eos_token_id")) == 2, "%s", e.text);
    json_decref(g);
    Preprocessor p;
    ck_assert_msg(preprocessor_load(&p, fixture_in(version, "preprocessor/preprocessor_config.json")) == VLM_OK, "%s",
                  vlm_last_error());
    ck_assert(p.shortest_edge == 28 && p.crop_h == 28 && p.crop_w == 28);
}
END_TEST

// A dimension of int(1e30), or a rope base of Infinity: refused, naming file, key and value.
START_TEST(impossible_values_are_refused_by_name) {
    const char *version = VERSIONS[_i];
    LlavaConfig c;
    char dir[512], clip[512];
    snprintf(dir, sizeof dir, "%s", fixture_in(version, "huge_dim"));
    snprintf(clip, sizeof clip, "%s", fixture_in(version, "original/clip"));
    ck_assert_int_eq(llava_config_load_original(&c, dir, clip), VLM_ERR_INPUT);
    const char *msg = vlm_last_error();
    ck_assert_msg(strstr(msg, "huge_dim/config.json") && strstr(msg, "hidden_size: " VERY_LARGE " is outside"), "%s", msg);
    snprintf(dir, sizeof dir, "%s", fixture_in(version, "inf_config"));
    ck_assert_int_eq(llava_config_load_original(&c, dir, clip), VLM_ERR_INPUT);
    msg = vlm_last_error();
    ck_assert_msg(strstr(msg, "inf_config/config.json") && strstr(msg, "rope_theta: inf must be a positive number"), "%s",
                  msg);
}
END_TEST

START_TEST(logs_and_datasets_read_nan) {
    const char *version = VERSIONS[_i];
    json_error_t e;
    json_t *state = vlm_json_load_file(fixture_in(version, "trainer_state.json"), JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(state != NULL, "%s: %s line %d", version, e.text, e.line);
    json_t *history = json_object_get(state, "log_history");
    ck_assert(isnan(vlm_json_number(json_object_get(json_array_get(history, 0), "loss"))));
    ck_assert(vlm_json_number(json_object_get(json_array_get(history, 0), "learning_rate")) == 2e-5);
    ck_assert(isinf(vlm_json_number(json_object_get(json_array_get(history, 1), "grad_norm"))));
    ck_assert(vlm_json_number(json_object_get(state, "total_flos")) == 1.5e20);
    json_decref(state);
    // the dataset index, one record at a time
    DatasetFile f;
    ck_assert_msg(dataset_file_open(&f, fixture_in(version, "dataset.json"), NULL) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(f.count, 2);
    json_t *r;
    ck_assert_msg(dataset_file_record(&f, 0, &r) == VLM_OK, "%s", vlm_last_error());
    ck_assert(isnan(vlm_json_number(json_object_get(r, "score"))));
    Conversation conv;
    ck_assert_msg(conversation_parse(&conv, r, "record 0") == VLM_OK, "%s", vlm_last_error());
    ck_assert_str_eq(conv.id, "1000000000000000000000000000000");  // 10**30 as written, not its nearest double
    conversation_free(&conv);
    json_decref(r);
    ck_assert_int_eq(dataset_file_record(&f, 1, &r), VLM_OK);
    ck_assert(isinf(vlm_json_number(json_object_get(r, "weight"))) && vlm_json_number(json_object_get(r, "weight")) < 0);
    json_decref(r);
    dataset_file_close(&f);
}
END_TEST

// A record that is bad JSON after a NaN: the error names its line and column in the file.
START_TEST(dataset_errors_after_nan_keep_their_place) {
    const char text[] = "[\n{\"id\": 1, \"s\": NaN,\n \"x\": tru}\n]";
    DatasetFile f;
    ck_assert_int_eq(dataset_file_from_memory(&f, text, sizeof text - 1, "data.json"), VLM_OK);
    json_t *r;
    ck_assert_int_eq(dataset_file_record(&f, 0, &r), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "data.json: record 0: invalid JSON at line 3, column"), "%s",
                  vlm_last_error());
    dataset_file_close(&f);
}
END_TEST

// vlm's own metrics.jsonl: a nan loss was written as printf's "nan" (not
// JSON), so the resume dropped that step; now NaN, as Python writes it.
START_TEST(metrics_log_keeps_nan_steps) {
    char dir[] = "/tmp/vlm-json-log-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    RunLog log;
    ck_assert_int_eq(run_log_open(&log, dir, -1, 0, NULL), VLM_OK);
    for (long s = 1; s <= 3; s++) {
        LogEntry e = {.step = s, .loss = s == 2 ? NAN : 1.0, .grad_norm = s == 3 ? INFINITY : 0.5, .targets = 4};
        ck_assert_int_eq(run_log_append(&log, &e), VLM_OK);
    }
    run_log_close(&log);
    char *path = path_join(dir, "metrics.jsonl"), *text;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    ck_assert_msg(strstr(text, "\"loss\": NaN") && strstr(text, "\"grad_norm\": Infinity"), "%s", text);
    free(text);
    ck_assert_int_eq(run_log_open(&log, dir, 3, 0, NULL), VLM_OK);
    ck_assert_int_eq(log.n, 3);
    ck_assert(isnan(log.entries[1].loss) && isinf(log.entries[2].grad_norm));
    run_log_close(&log);
    free(path);
    remove_tree(dir);
}
END_TEST

// The keyed getters' policy: absent, null, wrong type and out of range, for each presence.
START_TEST(keyed_getters_follow_their_policy) {
    json_error_t e;
    json_t *j = loads("{\"n\": null, \"s\": \"7\", \"big\": " VERY_LARGE ", \"x\": 7, \"r\": 2.5, \"nan\": NaN}", 0, &e);
    ck_assert_ptr_nonnull(j);
    long long x = 0;
    double r = 0;
    // absent: the default, except where required
    ck_assert_int_eq(vlm_json_get_int(j, "none", VLM_JSON_OPTIONAL, -2, 0, 9, &x, "f", NULL), VLM_OK);
    ck_assert_int_eq(x, -2);  // taken as given, not checked against [lo, hi]
    ck_assert_int_eq(vlm_json_get_int(j, "none", VLM_JSON_NO_NULL, 3, 0, 9, &x, "f", NULL), VLM_OK);
    ck_assert_int_eq(x, 3);
    ck_assert_int_eq(vlm_json_get_int(j, "none", VLM_JSON_REQUIRED, 3, 0, 9, &x, "f", NULL), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: none: missing");
    ck_assert_int_eq(vlm_json_get_int(NULL, "none", VLM_JSON_OPTIONAL, 4, 0, 9, &x, "f", NULL), VLM_OK);
    ck_assert_int_eq(x, 4);
    // null: the default only where optional
    ck_assert_int_eq(vlm_json_get_int(j, "n", VLM_JSON_OPTIONAL, 5, 0, 9, &x, "f", NULL), VLM_OK);
    ck_assert_int_eq(x, 5);
    ck_assert_int_eq(vlm_json_get_int(j, "n", VLM_JSON_NO_NULL, 5, 0, 9, &x, "f", "sec.n"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: sec.n: expected an integer, got null");
    ck_assert_int_eq(vlm_json_get_int(j, "n", VLM_JSON_REQUIRED, 5, 0, 9, &x, "f", NULL), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: n: expected an integer, got null");
    ck_assert_int_eq(vlm_json_get_real(j, "n", VLM_JSON_OPTIONAL, 0.5, &r, "f", NULL), VLM_OK);
    ck_assert(r == 0.5);
    ck_assert_int_eq(vlm_json_get_real(j, "n", VLM_JSON_NO_NULL, 0.5, &r, "f", NULL), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "f: n: expected a number, got null");
    // present: read as vlm_json_int / vlm_json_real under every policy, with the name messages give
    for (int p = VLM_JSON_OPTIONAL; p <= VLM_JSON_REQUIRED; p++) {
        x = 0;
        ck_assert_int_eq(vlm_json_get_int(j, "x", (VlmJsonPresence)p, 0, 0, 9, &x, "f", NULL), VLM_OK);
        ck_assert_int_eq(x, 7);
        ck_assert_int_eq(vlm_json_get_int(j, "s", (VlmJsonPresence)p, 0, 0, 9, &x, "f", "sec.s"), VLM_ERR_INPUT);
        ck_assert_str_eq(vlm_last_error(), "f: sec.s: expected an integer");
        ck_assert_int_eq(vlm_json_get_int(j, "r", (VlmJsonPresence)p, 0, 0, 9, &x, "f", NULL), VLM_ERR_INPUT);
        ck_assert_str_eq(vlm_last_error(), "f: r: expected an integer, got 2.5");
        ck_assert_int_eq(vlm_json_get_int(j, "x", (VlmJsonPresence)p, 0, 8, 9, &x, "f", NULL), VLM_ERR_INPUT);
        ck_assert_str_eq(vlm_last_error(), "f: x: 7 is outside [8, 9]");
        ck_assert_int_eq(vlm_json_get_int(j, "big", (VlmJsonPresence)p, 0, 0, 9, &x, "f", NULL), VLM_ERR_INPUT);
        ck_assert_str_eq(vlm_last_error(), "f: big: " VERY_LARGE " is outside [0, 9]");
        ck_assert_int_eq(vlm_json_get_real(j, "r", (VlmJsonPresence)p, 0, &r, "f", NULL), VLM_OK);
        ck_assert(r == 2.5);
        ck_assert_int_eq(vlm_json_get_real(j, "nan", (VlmJsonPresence)p, 0, &r, "f", NULL), VLM_OK);
        ck_assert(isnan(r));
        ck_assert_int_eq(vlm_json_get_real(j, "s", (VlmJsonPresence)p, 0, &r, "f", NULL), VLM_ERR_INPUT);
        ck_assert_str_eq(vlm_last_error(), "f: s: expected a number");
    }
    json_decref(j);
}
END_TEST

Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_set_tags(tc, "parser");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, python_isms_are_read);
    tcase_add_test(tc, errors_keep_their_place);
    tcase_add_test(tc, nul_and_lone_surrogates_stay_refused);
    tcase_add_test(tc, integer_getters_name_file_key_and_value);
    tcase_add_test(tc, keyed_getters_follow_their_policy);
    tcase_add_loop_test(tc, tokenizer_folders_open, 0, 2);
    tcase_add_loop_test(tc, tokenize_command_opens_the_folder, 0, 2);
    tcase_add_loop_test(tc, model_configs_load, 0, 2);
    tcase_add_loop_test(tc, impossible_values_are_refused_by_name, 0, 2);
    tcase_add_loop_test(tc, logs_and_datasets_read_nan, 0, 2);
    tcase_add_test(tc, dataset_errors_after_nan_keep_their_place);
    tcase_add_test(tc, metrics_log_keeps_nan_steps);
    suite_add_tcase(s, tc);
    return s;
}
