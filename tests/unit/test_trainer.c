// The training loop's own parts: checkpoints (bit-exact round trip, latest,
// rotation, leftovers of killed runs), the run log, and `vlm train` end to end.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "model/llava.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/run_log.h"
#include "train/train_checkpoint.h"

static void open_tiny(LlavaModel *m) {
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, fixture("model/tiny_gqa")) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(llava_model_init(m, &p, 1, 1, 8, 8 + llava_image_tokens(&p.cfg)), VLM_OK);
}

static char *checkpoint_path(const char *dir, long step) {
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%ld", step);
    return path_join(dir, name);
}

START_TEST(checkpoint_round_trip) {
    LlavaModel m;
    open_tiny(&m);
    m.trainable[MODULE_VISION] = false;  // as instruction tuning: no moments for the vision tower
    Optimizer o;
    OptimizerConfig oc = {.lr = 1e-3, .projector_lr = -1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .max_grad_norm = 1};
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    size_t n = o.adam.n;
    for (size_t i = 0; i < n; i++) o.adam.m[i] = (float)i * 1e-3f - 1.0f, o.adam.v[i] = (float)(i % 97) * 1e-5f;
    o.adam.step = 7;
    float *m0 = malloc(sizeof(float) * n), *v0 = malloc(sizeof(float) * n);
    memcpy(m0, o.adam.m, sizeof(float) * n), memcpy(v0, o.adam.v, sizeof(float) * n);
    char dir[] = "/tmp/vlm-ckpt-XXXXXX", out[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    TrainState st = {.step = 7, .total_steps = 20, .epoch = 1, .index = 3, .seed = 42};
    json_t *args = json_pack("{s:s}", "learning_rate", "2e-5");
    ck_assert_msg(train_checkpoint_save(dir, &m, &o, &st, args, VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model",
                                        out, sizeof out) == VLM_OK,
                  "%s", vlm_last_error());
    char *want = checkpoint_path(dir, 7), *tok = path_join(want, "tokenizer.model");
    ck_assert_str_eq(out, want);
    ck_assert(file_exists(tok));  // a lone tokenizer file is copied under the name loaders look for
    free(tok);
    // the state, the moments and step count, and the model, bit for bit
    TrainState back;
    ck_assert_int_eq(train_checkpoint_read_state(out, &back), VLM_OK);
    ck_assert(back.step == 7 && back.total_steps == 20 && back.epoch == 1 && back.index == 3 && back.seed == 42);
    memset(o.adam.m, 0, sizeof(float) * n), memset(o.adam.v, 0, sizeof(float) * n), o.adam.step = 0;
    ck_assert_msg(train_checkpoint_read_optimizer(out, &m, &o) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(memcmp(o.adam.m, m0, sizeof(float) * n), 0);
    ck_assert_int_eq(memcmp(o.adam.v, v0, sizeof(float) * n), 0);
    ck_assert_int_eq((int)o.adam.step, 7);
    LlavaParams reloaded;
    ck_assert_msg(llava_load_hf(&reloaded, out) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(memcmp(reloaded.data, m.params.data, sizeof(float) * m.params.numel), 0);
    llava_params_free(&reloaded);
    // an optimizer over a module the checkpoint did not train: an error naming the tensor
    Optimizer all;
    m.trainable[MODULE_VISION] = true;
    ck_assert_int_eq(optimizer_init(&all, &m, &oc), VLM_OK);
    ck_assert_int_eq(train_checkpoint_read_optimizer(out, &m, &all), VLM_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(vlm_last_error(), "exp_avg.vision_tower"));
    optimizer_free(&all);
    m.trainable[MODULE_VISION] = false;
    // latest: the highest complete one; a killed save's temporary folder and a folder without
    // trainer_state.json are ignored; rotation keeps the newest
    st.step = 12;
    ck_assert_int_eq(train_checkpoint_save(dir, &m, &o, &st, NULL, NULL, out, sizeof out), VLM_OK);
    st.step = 9;
    ck_assert_int_eq(train_checkpoint_save(dir, &m, &o, &st, NULL, NULL, out, sizeof out), VLM_OK);
    char *leftover = path_join(dir, ".checkpoint-30.tmp"), *partial = checkpoint_path(dir, 31);
    ck_assert_int_eq(mkdir(leftover, 0755), 0);
    ck_assert_int_eq(mkdir(partial, 0755), 0);
    char *latest = train_checkpoint_latest(dir), *want12 = checkpoint_path(dir, 12);
    ck_assert_str_eq(latest, want12);
    ck_assert_int_eq(train_checkpoint_rotate(dir, 2), VLM_OK);
    ck_assert(!dir_exists(want) && dir_exists(want12));
    char *nine = checkpoint_path(dir, 9);
    ck_assert(dir_exists(nine));
    // saving a step again replaces it whole
    st.step = 9, st.seed = 5;
    ck_assert_int_eq(train_checkpoint_save(dir, &m, &o, &st, NULL, NULL, out, sizeof out), VLM_OK);
    ck_assert_int_eq(train_checkpoint_read_state(nine, &back), VLM_OK);
    ck_assert_int_eq((int)back.seed, 5);
    remove_tree(dir);
    free(latest), free(want12), free(nine), free(leftover), free(partial), free(want), free(m0), free(v0);
    json_decref(args);
    optimizer_free(&o);
    llava_model_free(&m);
}
END_TEST

START_TEST(run_log_resume_keeps_earlier_steps) {
    char dir[] = "/tmp/vlm-log-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    RunLog log;
    ck_assert_int_eq(run_log_open(&log, dir, -1), VLM_OK);
    for (long s = 1; s <= 5; s++) {
        LogEntry e = {.step = s, .epoch = s / 5.0, .loss = 3.0 / s, .lr = 1e-3, .grad_norm = 0.5, .targets = 10 * s};
        ck_assert_int_eq(run_log_append(&log, &e), VLM_OK);
    }
    run_log_close(&log);
    ck_assert_int_eq(run_log_open(&log, dir, 3), VLM_OK);  // resumed from checkpoint-3
    ck_assert_int_eq(log.n, 3);
    ck_assert_double_eq_tol(log.entries[2].loss, 1.0, 1e-9);
    ck_assert_int_eq((int)log.entries[2].targets, 30);
    LogEntry e = {.step = 4, .loss = 0.25};
    ck_assert_int_eq(run_log_append(&log, &e), VLM_OK);
    run_log_close(&log);
    char *path = path_join(dir, "metrics.jsonl"), *text;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    int lines = 0;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    ck_assert_int_eq(lines, 4);
    ck_assert_ptr_nonnull(strstr(text, "\"step\": 4, \"epoch\": 0, \"loss\": 0.25"));
    free(text), free(path);
    remove_tree(dir);
}
END_TEST

Suite *trainer_suite(void) {
    return SUITE("trainer", "", 120, checkpoint_round_trip, run_log_resume_keeps_earlier_steps);
}
