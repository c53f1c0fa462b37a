// End-to-end tests of the `vlm` binary: output, exit codes, one-line errors.
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

enum { BUF = 1 << 16 };
static char out[BUF], err[BUF];

static int vlm(const char *fmt, const char *arg) {
    char args[4096];
    snprintf(args, sizeof args, fmt, arg);
    return run_vlm(args, out, BUF, err, BUF);
}

START_TEST(inspect_text) {
    ck_assert_int_eq(vlm("inspect %s", fixture("formats/dtypes.safetensors")), 0);
    ck_assert_msg(strstr(out, "weights.layer.0  BF16   [4, 5]") != NULL, "%s", out);
    ck_assert(strstr(out, "total: 13 tensors, 61 parameters, 175 B") != NULL);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(inspect_json_directory_with_config) {
    ck_assert_int_eq(vlm("inspect --json %s", fixture("formats/sharded_safetensors")), 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    ck_assert_msg(root != NULL, "%s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(root, "format")), "safetensors");
    ck_assert(json_is_true(json_object_get(root, "sharded")));
    ck_assert_int_eq(json_array_size(json_object_get(root, "files")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(root, "tensors")), 6);
    json_t *total = json_object_get(root, "total");
    ck_assert_int_eq(json_integer_value(json_object_get(total, "parameters")), 32944);
    json_t *config = json_object_get(root, "config");
    ck_assert_str_eq(json_string_value(json_object_get(config, "model_type")), "llava");
    ck_assert_int_eq(json_integer_value(json_object_get(config, "text_config.num_key_value_heads")), 2);
    json_decref(root);
}
END_TEST

START_TEST(inspect_verify_counts_nonfinite) {
    // the fixture holds +inf in f16 and -inf in bf16; -1e300 in f64 is finite
    ck_assert_int_eq(vlm("inspect --verify %s", fixture("formats/dtypes.safetensors")), 2);
    ck_assert_msg(strstr(out, "verify: 2 non-finite values in 2 tensors") != NULL, "%s", out);
    ck_assert(strstr(err, "vlm: error:") != NULL);
    ck_assert_int_eq(vlm("-q inspect --verify %s", fixture("formats/module.bin")), 0);
    ck_assert(strstr(out, "verify: 0 non-finite values") != NULL);
}
END_TEST

// Every hostile fixture: exit code 2, nothing on stdout, one error line on stderr.
START_TEST(hostile_inputs_get_one_line_error) {
    json_t *hostile = json_object_get(expected_json(), "hostile");
    const char *name;
    json_t *want;
    json_object_foreach(hostile, name, want) {
        char rel[512];
        snprintf(rel, sizeof rel, "formats/hostile/%s", name);
        ck_assert_msg(vlm("inspect %s", fixture(rel)) == 2, "%s", name);
        ck_assert_str_eq(out, "");
        ck_assert_msg(strncmp(err, "vlm: error: ", 12) == 0, "%s: %s", name, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "%s: not one line: %s", name, err);
        ck_assert_msg(strstr(err, json_string_value(want)) != NULL, "%s: %s", name, err);
    }
}
END_TEST

START_TEST(usage_errors_exit_2) {
    ck_assert_int_eq(run_vlm("", out, BUF, err, BUF), 2);
    ck_assert(strstr(err, "usage: vlm") != NULL);
    ck_assert_int_eq(vlm("%s", "frobnicate"), 2);
    ck_assert(strstr(err, "unknown command 'frobnicate'") != NULL);
    ck_assert_int_eq(vlm("%s", "inspect --bogus x"), 2);
    ck_assert(strstr(err, "unknown option '--bogus'") != NULL);
    ck_assert_int_eq(vlm("%s", "--threads zero version"), 2);
    ck_assert_int_eq(vlm("%s", "inspect"), 2);
    ck_assert(strstr(err, "missing PATH") != NULL);
    ck_assert_int_eq(vlm("%s", "help inspect"), 0);
    ck_assert(strstr(out, "--verify") != NULL);
    ck_assert_int_eq(vlm("%s", "--threads 1 version"), 0);
    ck_assert(strstr(out, "threads: 1 of") != NULL);
}
END_TEST

// .bin (with strided views) -> safetensors -> the same tensors; a failed
// conversion leaves an existing output untouched.
START_TEST(convert_bin_to_safetensors) {
    char dir[] = "/tmp/vlm-cli-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char args[4096], dst[512];
    snprintf(dst, sizeof dst, "%s/out.safetensors", dir);
    snprintf(args, sizeof args, "-q convert %s %s", fixture("formats/dtypes.bin"), dst);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s", err);
    ck_assert_int_eq(vlm("inspect --verify --json %s", dst), 2);  // the infs travel too
    json_t *a = json_loads(out, 0, NULL);
    ck_assert_int_eq(vlm("inspect --verify --json %s", fixture("formats/dtypes.bin")), 2);
    json_t *b = json_loads(out, 0, NULL);
    ck_assert(json_equal(json_object_get(a, "tensors"), json_object_get(b, "tensors")) ||
              json_array_size(json_object_get(a, "tensors")) == json_array_size(json_object_get(b, "tensors")));
    ck_assert(json_equal(json_object_get(a, "total"), json_object_get(b, "total")));
    ck_assert(json_equal(json_object_get(a, "nonfinite_values"), json_object_get(b, "nonfinite_values")));
    json_decref(a);
    json_decref(b);
    snprintf(args, sizeof args, "-q convert %s %s", fixture("formats/hostile/storage_short.bin"), dst);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 2);
    ck_assert_int_eq(vlm("inspect %s", dst), 0);  // still the earlier, complete file
    ck_assert_int_eq(count_dir_entries(dir), 1);
    unlink(dst);
    rmdir(dir);
}
END_TEST

#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"

START_TEST(tokenize_roundtrip) {
    const char *in = temp_file("\"Hello</s>USER: hi\"\n\"\\u65e5\\u672c \\ud83d\\ude00\"\n");
    char args[512];
    snprintf(args, sizeof args, "tokenize --tokenizer %s", LLAMA2);
    ck_assert_msg(run_vlm_input(args, in, out, BUF, err, BUF) == 0, "%s", err);
    ck_assert_msg(strncmp(out, "[1,15043,2,3148,1001,29901,7251]\n", 33) == 0, "%s", out);
    // --no-special keeps "</s>" as text; --no-bos drops the 1
    snprintf(args, sizeof args, "tokenize --no-bos --no-special --tokenizer %s", LLAMA2);
    ck_assert_int_eq(run_vlm_input(args, in, out, BUF, err, BUF), 0);
    ck_assert_msg(strncmp(out, "[15043,829,29879,29958,11889,29901,7251]\n", 40) == 0, "%s", out);
    // decode what was encoded
    const char *ids = temp_file("[1,15043,2,3148,1001,29901,7251]\n");
    snprintf(args, sizeof args, "tokenize --decode --tokenizer %s", LLAMA2);
    ck_assert_int_eq(run_vlm_input(args, ids, out, BUF, err, BUF), 0);
    // like sentencepiece's DecodeIds: control pieces (</s>) decode to nothing
    ck_assert_str_eq(out, "\"Hello USER: hi\"\n");
    unlink(in);
    unlink(ids);
}
END_TEST

START_TEST(tokenize_bad_input) {
    const char *in = temp_file("\"ok\"\nnot json\n");
    char args[512];
    snprintf(args, sizeof args, "tokenize --tokenizer %s", LLAMA2);
    ck_assert_int_eq(run_vlm_input(args, in, out, BUF, err, BUF), 2);
    ck_assert_msg(strstr(err, "<stdin>: line 2: invalid JSON") != NULL, "%s", err);
    ck_assert_int_eq(vlm("tokenize --tokenizer %s", fixture("formats/dtypes.safetensors")), 2);
    ck_assert_msg(strstr(err, "not a SentencePiece model") != NULL, "%s", err);
    unlink(in);
}
END_TEST

START_TEST(data_render_lines_and_errors) {
    const char *data = temp_file(
        "[{\"id\": 3, \"image\": \"a.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"Hi <|image|>\"},"
        " {\"from\": \"gpt\", \"value\": \"A cat.\"}]}]");
    char args[512];
    snprintf(args, sizeof args, "data render --template v1 --tokenizer %s %s", LLAMA2, data);
    ck_assert_msg(run_vlm(args, out, BUF, err, BUF) == 0, "%s", err);
    json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "id")), 3);
    json_t *ids = json_object_get(line, "input_ids"), *labels = json_object_get(line, "labels");
    ck_assert_int_eq(json_array_size(ids), json_array_size(labels));
    int images = 0;
    for (size_t i = 0; i < json_array_size(ids); i++) images += json_integer_value(json_array_get(ids, i)) == -200;
    ck_assert_int_eq(images, 1);  // the <|image|> dialect works with v1
    json_decref(line);
    ck_assert(strstr(err, "rendered 1 records with template v1: 0 tokenization mismatches") != NULL);
    unlink(data);
    // a record whose roles do not alternate: exit 2 naming file and record
    data = temp_file("[{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"human\", \"value\": \"b\"}]}]");
    snprintf(args, sizeof args, "data render --template v1 --tokenizer %s %s", LLAMA2, data);
    ck_assert_int_eq(run_vlm(args, out, BUF, err, BUF), 2);
    ck_assert_msg(strstr(err, data) && strstr(err, "record 0: conversations[1]: roles must alternate"), "%s", err);
    unlink(data);
    ck_assert_int_eq(vlm("data render --template nope --tokenizer x %s", "y.json"), 2);
    ck_assert(strstr(err, "unknown template 'nope'") != NULL);
}
END_TEST

Suite *cli_suite(void) {
    return SUITE("cli", "", 60,
                 inspect_text,
                 inspect_json_directory_with_config,
                 inspect_verify_counts_nonfinite,
                 hostile_inputs_get_one_line_error,
                 usage_errors_exit_2,
                 convert_bin_to_safetensors,
                 tokenize_roundtrip,
                 tokenize_bad_input,
                 data_render_lines_and_errors);
}
