// config.json validation: every size positive, bounded and consistent, and a
// checkpoint whose tensors disagree with its config reported as such before
// any memory is planned from the config (issue 13, item 5).
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/error.h"
#include "core/file.h"
#include "image/preprocess.h"
#include "model/weights.h"
#include "test_util.h"

// A copy of the transformers-saved tiny_gqa model whose config.json has
// SECTION.KEY (section NULL: the top level) set to value. Returns the folder.
static const char *fixture_model_with(const char *model, const char *section, const char *key, json_t *value) {
    static char dir[64];
    char rel[128];
    snprintf(dir, sizeof dir, "/tmp/vlm-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rel, sizeof rel, "model/%s/config.json", model);
    json_t *root = fixture_json(rel);
    json_t *obj = section ? json_object_get(root, section) : root;
    ck_assert_ptr_nonnull(obj);
    json_object_set_new(obj, key, value);
    char *path = path_join(dir, "config.json"), *weights = path_join(dir, "model.safetensors");
    ck_assert_int_eq(json_dump_file(root, path, JSON_INDENT(2)), 0);
    snprintf(rel, sizeof rel, "model/%s/model.safetensors", model);
    ck_assert_int_eq(file_copy_atomic(fixture(rel), weights), VLM_OK);
    free(path), free(weights);
    json_decref(root);
    return dir;
}

static const char *model_with(const char *section, const char *key, json_t *value) {
    return fixture_model_with("tiny_gqa", section, key, value);
}

// Loading fails with a bad-input status and a message holding each of the parts.
static void assert_refused(const char *dir, const char *part1, const char *part2, const char *part3) {
    LlavaParams p;
    int rc = llava_load_hf(&p, dir);
    const char *msg = vlm_last_error();
    ck_assert_msg(rc == VLM_ERR_INPUT, "status %d: %s", rc, msg);
    ck_assert_msg(strstr(msg, part1) && strstr(msg, part2) && (!part3 || strstr(msg, part3)), "%s", msg);
    remove_tree(dir);
}

START_TEST(negative_and_huge_sizes_name_key_and_value) {
    // was: out of memory allocating 18446744073709551613 x 72 bytes
    assert_refused(model_with("text_config", "num_hidden_layers", json_integer(-3)), "config.json",
                   "text_config.num_hidden_layers", "-3 is outside");
    assert_refused(model_with("text_config", "vocab_size", json_integer(2147483647)), "config.json",
                   "text_config.vocab_size", "2147483647");
    assert_refused(model_with("text_config", "hidden_size", json_integer(1LL << 40)), "text_config.hidden_size",
                   "1099511627776", NULL);
    assert_refused(model_with("vision_config", "patch_size", json_integer(0)), "config.json", "vision_config.patch_size",
                   "0 is outside");
    assert_refused(model_with("vision_config", "num_attention_heads", json_integer(5)), "vision_config",
                   "multiple of num_attention_heads", NULL);
    assert_refused(model_with("text_config", "num_key_value_heads", json_integer(3)), "text_config",
                   "num_key_value_heads", NULL);
    assert_refused(model_with("text_config", "rms_norm_eps", json_real(-1e-6)), "text_config.rms_norm_eps", "positive",
                   NULL);
    assert_refused(model_with(NULL, "image_token_index", json_integer(-1)), "image_token_index", "-1 is outside", NULL);
}
END_TEST

// Sizes within bounds that the weights contradict: the shapes are compared
// from the files' headers before the parameters are allocated. The process
// is limited to 2 GB of address space, which the config's 5.4 billion
// parameters (21 GB) would exceed: the old order failed with out-of-memory.
START_TEST(weights_that_disagree_are_reported_before_allocating) {
    struct rlimit r = {.rlim_cur = 2ULL << 30, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &r), 0);  // check forks each test: the limit ends with it
    const char *dir = model_with("text_config", "vocab_size", json_integer(1 << 22));
    char *cfg = path_join(dir, "config.json");
    json_t *root = json_load_file(cfg, 0, NULL);
    json_object_set_new(json_object_get(root, "text_config"), "hidden_size", json_integer(640));
    ck_assert_int_eq(json_dump_file(root, cfg, JSON_INDENT(2)), 0);
    json_decref(root);
    free(cfg);
    assert_refused(dir, dir, "language_model.model.embed_tokens.weight is [101, 32], expected [4194304, 640]",
                   "of the wrong shape");
}
END_TEST

// Through the CLI: exit status 2 and the message.
START_TEST(cli_reports_bad_config_with_status_2) {
    const char *dir = model_with("text_config", "num_hidden_layers", json_integer(-3));
    char args[512], out[4096], err[4096];
    snprintf(args, sizeof args, "forward --model %s --ids 1,2,3", dir);
    int rc = run_vlm(args, out, sizeof out, err, sizeof err);
    ck_assert_msg(rc == 2, "status %d: %s", rc, err);
    ck_assert_msg(strstr(err, "text_config.num_hidden_layers: -3 is outside"), "%s", err);
    remove_tree(dir);
}
END_TEST

// An original LLaVA config's mm_* keys: a value that is not an integer was
// read as the default (-2) or not checked at all.
START_TEST(original_llava_keys_are_checked) {
    static const struct { const char *key, *want; } cases[] = {
        {"mm_vision_select_layer", "mm_vision_select_layer: expected an integer"},
        {"mm_hidden_size", "mm_hidden_size: expected an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *dir = fixture_model_with("tiny_gqa_original", NULL, cases[i].key, json_string("-2"));
        LlavaParams p;
        int rc = llava_load_original(&p, dir, fixture("model/tiny_gqa_clip"));
        ck_assert_msg(rc == VLM_ERR_INPUT && strstr(vlm_last_error(), cases[i].want), "%d: %s", rc, vlm_last_error());
        remove_tree(dir);
    }
    const char *dir = fixture_model_with("tiny_gqa_original", NULL, "mm_vision_select_layer", json_integer(7));
    LlavaParams p;
    ck_assert_int_eq(llava_load_original(&p, dir, fixture("model/tiny_gqa_clip")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "mm_vision_select_layer: 7 is outside [-4, 3]"), "%s", vlm_last_error());
    remove_tree(dir);
}
END_TEST

// preprocessor_config.json's sizes: 2^32 + 336 was read as 336 (int wrap-around).
START_TEST(preprocessor_sizes_are_bounded) {
    Preprocessor p;
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"crop_size\": 4294967632, \"size\": 336}")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "crop_size: 4294967632 is outside [1, 16384]"), "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"size\": {\"shortest_edge\": -336}}")), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "size: -336 is outside"), "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"crop_size\": {\"height\": 336, \"width\": 0}, \"size\": 336}")),
                     VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "crop_size: 0 is outside"), "%s", vlm_last_error());
    ck_assert_int_eq(preprocessor_load(&p, temp_file("{\"crop_size\": {\"height\": 336, \"width\": 336}, \"size\": 336}")),
                     VLM_OK);
}
END_TEST

Suite *config_suite(void) {
    return SUITE("config", "parser", 60, negative_and_huge_sizes_name_key_and_value, cli_reports_bad_config_with_status_2,
                 preprocessor_sizes_are_bounded, original_llava_keys_are_checked);
}

// Not under ASan (its shadow memory needs more address space than the limit).
Suite *config_memory_suite(void) {
    return SUITE("config_memory", "", 60, weights_that_disagree_are_reported_before_allocating);
}
