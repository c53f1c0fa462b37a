// Unit and end-to-end tests of the dataset reader and `vlm data mix`
// (checked against the real `jq -s add`, the recipes' merge step).
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "data/dataset.h"
#include "test_util.h"

static int index_text(const char *text, DatasetFile *f) {
    vlm_clear_error();
    return dataset_file_from_memory(f, text, strlen(text), "t.json");
}

START_TEST(index_finds_records_around_tricky_strings) {
    const char *text = " [ {\"a\": \"x],\\\"}{[\"}, [1, [2, {\"b\": []}]] ,\n\"s\\\\\", 3.5e2, {\"c\": \"\\u00e9\"}\n]\n";
    DatasetFile f;
    ck_assert_msg(index_text(text, &f) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(f.count, 5);
    const char *want[5] = {"{\"a\": \"x],\\\"}{[\"}", "[1, [2, {\"b\": []}]]", "\"s\\\\\"", "3.5e2", "{\"c\": \"\\u00e9\"}"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(f.len[i], strlen(want[i]));
        ck_assert_int_eq(memcmp(text + f.start[i], want[i], f.len[i]), 0);
    }
    json_t *rec;
    ck_assert_int_eq(dataset_file_record(&f, 4, &rec), VLM_OK);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "c")), "\xc3\xa9");
    json_decref(rec);
    dataset_file_close(&f);
    ck_assert_int_eq(index_text("[]", &f), VLM_OK);
    ck_assert_uint_eq(f.count, 0);
    dataset_file_close(&f);
}
END_TEST

START_TEST(index_rejects_malformed_files_with_position) {
    static const struct { const char *text, *why; } cases[] = {
        {"{\"a\": 1}", "line 1, column 1: a dataset is a JSON array"},
        {"[{\"a\": 1},\n {\"b\": 2}", "the array is not closed"},
        {"[{\"a\": 1},\n {\"b\": 2},\n]", "line 3, column 1: trailing comma"},
        {"[{\"a\": [1}]", "mismatched bracket"},
        {"[{\"a\": \"oops}]", "unterminated string"},
        {"[1,,2]", "empty element"},
        {"[1] [2]", "data after the closing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        DatasetFile f;
        ck_assert_int_eq(index_text(cases[i].text, &f), VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), cases[i].why) != NULL, "case %zu: %s", i, vlm_last_error());
    }
    // record-level syntax errors surface when the record is parsed, naming it
    DatasetFile f;
    ck_assert_int_eq(index_text("[{\"a\": 1},\n {\"b\" 2}]", &f), VLM_OK);
    json_t *rec;
    ck_assert_int_eq(dataset_file_record(&f, 1, &rec), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "t.json: record 1: invalid JSON at line 2") != NULL, "%s", vlm_last_error());
    dataset_file_close(&f);
}
END_TEST

START_TEST(several_files_form_one_dataset) {
    Dataset d = {0};
    ck_assert_int_eq(dataset_add(&d, temp_file("[1, 2, 3]"), "imgs/a"), VLM_OK);
    ck_assert_int_eq(dataset_add(&d, temp_file("[4, 5]"), "imgs/b"), VLM_OK);
    ck_assert_uint_eq(d.count, 5);
    int file;
    size_t record;
    dataset_locate(&d, 3, &file, &record);
    ck_assert_int_eq(file, 1);
    ck_assert_uint_eq(record, 0);
    ck_assert_str_eq(d.files[1].image_folder, "imgs/b");
    for (int i = 0; i < d.n_files; i++) unlink(d.files[i].path);
    dataset_close(&d);
}
END_TEST

// ---------------------------------------------------------------------------- vlm data mix

enum { BUF = 1 << 16 };
static char out[BUF], err[BUF];

static json_t *load(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", path, e.text);
    return j;
}

START_TEST(mix_equals_jq_slurp_add) {
    char a[256], b[256], args[1024];
    snprintf(a, sizeof a, "%s", fixture("data/mix_a.json"));
    snprintf(b, sizeof b, "%s", fixture("data/mix_b.json"));
    const char *o = temp_file("");
    snprintf(args, sizeof args, "data mix -o %s.out %s %s", o, a, b);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s", err);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "jq -s add %s %s > %s.jq", a, b, o);
    ck_assert_int_eq(system(cmd), 0);
    char mine[80], ref[80];
    snprintf(mine, sizeof mine, "%s.out", o);
    snprintf(ref, sizeof ref, "%s.jq", o);
    json_t *x = load(mine), *y = load(ref);
    ck_assert(json_equal(x, y));
    ck_assert_int_eq((int)json_array_size(x), 4);
    json_decref(x);
    json_decref(y);
    unlink(mine);
    unlink(ref);
    unlink(o);
}
END_TEST

START_TEST(mix_options) {
    char a[256], b[256], args[1024], o1[80], o2[80];
    snprintf(a, sizeof a, "%s", fixture("data/mix_a.json"));
    snprintf(b, sizeof b, "%s", fixture("data/mix_b.json"));
    const char *o = temp_file("");
    snprintf(o1, sizeof o1, "%s.1", o);
    snprintf(o2, sizeof o2, "%s.2", o);
    // dialect and prefix: every placeholder becomes <|image|>, prefixes only for a
    snprintf(args, sizeof args, "data mix -o %s --placeholder '<|image|>' --prefix Q/ %s --prefix '' %s", o1, a, b);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s", err);
    json_t *m = load(o1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "image")), "Q/spaq/1.jpg");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 2), "image")), "coco/1.jpg");
    const char *v = json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(m, 0), "conversations"), 0), "value"));
    ck_assert_msg(strncmp(v, "<|image|>\n", 10) == 0, "%s", v);
    json_decref(m);
    // ratios: 2 = every record twice; 0.5 = one of b's two records
    snprintf(args, sizeof args, "data mix -o %s --ratio 2 %s --ratio 0.5 %s", o1, a, b);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 0);
    m = load(o1);
    ck_assert_int_eq((int)json_array_size(m), 5);
    json_decref(m);
    // shuffle: same seed, same order; another seed, another order; same records
    snprintf(args, sizeof args, "data mix -o %s --shuffle 7 --ratio 3 %s %s", o1, a, b);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 0);
    snprintf(args, sizeof args, "data mix -o %s --shuffle 7 --ratio 3 %s %s", o2, a, b);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 0);
    json_t *s1 = load(o1), *s2 = load(o2);
    ck_assert(json_equal(s1, s2));
    json_decref(s2);
    snprintf(args, sizeof args, "data mix -o %s --shuffle 8 --ratio 3 %s %s", o2, a, b);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 0);
    s2 = load(o2);
    ck_assert(!json_equal(s1, s2));
    ck_assert_int_eq((int)json_array_size(s1), 12);
    ck_assert_int_eq((int)json_array_size(s2), 12);
    json_decref(s1);
    json_decref(s2);
    // a malformed input: exit 2 naming file and position, the old output untouched
    const char *bad = temp_file("[{\"id\": 1},\n {\"id\": 2},\n]");
    snprintf(args, sizeof args, "data mix -o %s %s %s", o2, a, bad);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 2);
    ck_assert_msg(strstr(err, bad) && strstr(err, "line 3, column 1: trailing comma"), "%s", err);
    s2 = load(o2);
    ck_assert_int_eq((int)json_array_size(s2), 12);
    json_decref(s2);
    unlink(bad);
    unlink(o1);
    unlink(o2);
    unlink(o);
}
END_TEST

// A generated dataset with one record per problem kind gives exactly these counts.
START_TEST(check_counts_every_problem) {
    char args[2048], a[256], b[256], imgs[256];
    snprintf(a, sizeof a, "%s", fixture("data/check_a.json"));
    snprintf(b, sizeof b, "%s", fixture("data/check_b.json"));
    snprintf(imgs, sizeof imgs, "%s", fixture("data/images"));
    snprintf(args, sizeof args,
             "data check --json --image-folder %s %s --image-folder %s/../shared/assets/images %s "
             "--tokenizer %s/../shared/assets/tokenizers/llama2/tokenizer.model --template v1 --max-len 64",
             imgs, a, VLM_SOURCE_DIR, b, VLM_SOURCE_DIR);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 2);
    ck_assert_msg(strstr(err, "11 records have errors") != NULL, "%s", err);
    json_t *r = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "records")), 19);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "text_only")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "gif_images")), 1);
    static const struct { const char *name; int count; } want[] = {
        {"invalid_json", 1}, {"schema", 4}, {"placeholders", 3}, {"image_missing", 1},
        {"image_format", 1}, {"image_decode", 1}, {"render", 0}, {"truncated", 1}, {"mismatch", 1},
    };
    json_t *problems = json_object_get(r, "problems");
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        json_t *p = json_object_get(problems, want[i].name);
        ck_assert_msg(json_integer_value(json_object_get(p, "count")) == want[i].count, "%s: %lld", want[i].name,
                      (long long)json_integer_value(json_object_get(p, "count")));
    }
    json_t *missing = json_array_get(json_object_get(json_object_get(problems, "image_missing"), "examples"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(missing, "record")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(missing, "id")), "missing");
    ck_assert(strstr(json_string_value(json_object_get(missing, "reason")), "nope.jpg: not found") != NULL);
    json_t *decode = json_array_get(json_object_get(json_object_get(problems, "image_decode"), "examples"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(decode, "record")), 14);
    ck_assert(strstr(json_string_value(json_object_get(decode, "reason")), "truncated.jpg: corrupt JPEG: Premature end") != NULL);
    // the decoded images: red.png and anim.gif (1x1), the two photos (570x380, 512x512), twice red.png
    json_t *images = json_object_get(r, "images");
    ck_assert_int_eq(json_integer_value(json_object_get(images, "decoded")), 6);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(images, "width"), 1)), 570);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(images, "height"), 0)), 1);
    // token statistics over the 14 rendered records (schema failures are not rendered);
    // values from rendering each record alone with `vlm data render --max-len 0`
    json_t *tokens = json_object_get(r, "tokens");
    ck_assert_int_eq(json_integer_value(json_object_get(tokens, "records")), 14);
    ck_assert_int_eq(json_integer_value(json_object_get(tokens, "max")), 165);
    ck_assert_double_eq_tol(json_real_value(json_object_get(tokens, "mean")), (741.0 + 47) / 14, 1e-9);
    json_t *trunc = json_array_get(json_object_get(json_object_get(problems, "truncated"), "examples"), 0);
    ck_assert(strstr(json_string_value(json_object_get(trunc, "file")), "check_b.json") != NULL);
    json_decref(r);
    // a clean file: exit 0
    snprintf(args, sizeof args, "data check --image-folder %s/../shared/assets/images %s", VLM_SOURCE_DIR, b);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s%s", out, err);
}
END_TEST

Suite *data_suite(void) {
    return SUITE("data", "parser", 60,
                 index_finds_records_around_tricky_strings,
                 index_rejects_malformed_files_with_position,
                 several_files_form_one_dataset,
                 mix_equals_jq_slurp_add,
                 mix_options,
                 check_counts_every_problem);
}
