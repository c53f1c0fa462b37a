// The training loop's own parts: checkpoints (bit-exact round trip, latest,
// rotation, leftovers of killed runs), the run log, and `vlm train` end to end.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors.h"
#include "model/llava.h"
#include "text/tokenizer.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/run_log.h"
#include "train/train_checkpoint.h"

static void open_tiny(LlavaModel *m) {
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, fixture("model/tiny_gqa")) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(llava_model_init(m, &p, &(LlavaPlan){1, 1, 8, 8 + llava_image_tokens(&p.cfg), false, false}), VLM_OK);
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
    static const char *const parts[2] = {"depth", "gen"};  // an auxiliary loss's parts travel through a resume
    ck_assert_int_eq(run_log_open(&log, dir, -1, 2, parts), VLM_OK);
    for (long s = 1; s <= 5; s++) {
        LogEntry e = {.step = s, .epoch = s / 5.0, .loss = 3.0 / s, .lr = 1e-3, .grad_norm = 0.5, .targets = 10 * s,
                      .n_parts = 2, .part_names = {parts[0], parts[1]}, .text_loss = 2.0 / s, .part_loss = {0.5 / s, 0.5 / s}};
        ck_assert_int_eq(run_log_append(&log, &e), VLM_OK);
    }
    run_log_close(&log);
    ck_assert_int_eq(run_log_open(&log, dir, 3, 2, parts), VLM_OK);  // resumed from checkpoint-3
    ck_assert_int_eq(log.n, 3);
    ck_assert_double_eq_tol(log.entries[2].loss, 1.0, 1e-9);
    ck_assert_int_eq((int)log.entries[2].targets, 30);
    ck_assert(log.entries[2].n_parts == 2 && strcmp(log.entries[2].part_names[1], "gen") == 0);
    ck_assert_double_eq_tol(log.entries[2].part_loss[1], 0.5 / 3, 1e-9);
    ck_assert_double_eq_tol(log.entries[2].text_loss, 2.0 / 3, 1e-9);
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

// ---------------------------------------------------------------------------
// `vlm train` end to end on a tiny model (LLaMA-2's tokenizer, the shared photos)

#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define LLAMA3 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama3/tokenizer.model"
#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
enum { OUT_SIZE = 1 << 16 };
static char out[OUT_SIZE], err[OUT_SIZE];

static void train_args(char *args, size_t size, const char *dir, const char *model, const char *output, const char *extra) {
    snprintf(args, size,
             "--threads 2 train --model_name_or_path %s/%s --version v1 --data_path %s/data.json --image_folder %s "
             "--output_dir %s/%s --per_device_train_batch_size 4 --gradient_accumulation_steps 2 --num_train_epochs 3 "
             "--learning_rate 2e-3 --warmup_ratio 0.1 --lr_scheduler_type cosine --weight_decay 0.01 --logging_steps 1 "
             "--save_steps 2 --save_total_limit 2 --model_max_length 96 --image_aspect_ratio pad "
             "--group_by_modality_length True %s",
             dir, model, dir, PHOTOS, dir, output, extra);
}

// A run killed with SIGKILL (at whatever point it is, saving included) and
// resumed gives the same per-step losses and the same final model as a run
// never interrupted.
START_TEST(train_resume_after_sigkill_is_exact) {
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], cmd[8192], path[600], path2[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    train_args(args, sizeof args, dir, "base", "whole", "");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "12 optimizer steps"));  // HF's plan: ceil(3 epochs x (9 micro-batches // 2))
    // the same run, killed once checkpoint-4 exists
    train_args(args, sizeof args, dir, "base", "killed", "");
    snprintf(cmd, sizeof cmd,
             "%s %s >/dev/null 2>&1 & pid=$!; i=0; while [ ! -d %s/killed/checkpoint-4 ] && [ $i -lt 600 ]; do sleep 0.02; "
             "i=$((i+1)); done; kill -9 $pid; wait $pid 2>/dev/null; exit 0",
             VLM_BINARY, args, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/killed/checkpoint-4", dir);
    ck_assert(dir_exists(path));
    snprintf(path, sizeof path, "%s/killed/model.safetensors", dir);
    ck_assert_msg(!file_exists(path), "the run finished before it was killed: the test proves nothing");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", strstr(err, "vlm: error") ? strstr(err, "vlm: error") : err);  // resumes by itself, as LLaVA's train.py
    ck_assert_ptr_nonnull(strstr(err, "resuming from"));
    char a[16][32], b[16][32];
    snprintf(path, sizeof path, "%s/whole/metrics.jsonl", dir);
    snprintf(path2, sizeof path2, "%s/killed/metrics.jsonl", dir);
    int na = read_losses(path, a, 16), nb = read_losses(path2, b, 16);
    ck_assert_int_eq(na, 12);
    ck_assert_int_eq(nb, 12);
    for (int i = 0; i < na; i++) ck_assert_msg(strcmp(a[i], b[i]) == 0, "step %d: loss %s vs %s", i + 1, a[i], b[i]);
    ck_assert_msg(strcmp(a[0], a[na - 1]) != 0, "the loss never moved");
    snprintf(cmd, sizeof cmd, "cmp -s %s/whole/model.safetensors %s/killed/model.safetensors", dir, dir);
    ck_assert_msg(system(cmd) == 0, "the resumed run's final model differs");
    // rotation kept the newest two checkpoints; the final model loads
    snprintf(path, sizeof path, "%s/whole", dir);
    ck_assert_int_eq(count_dir_entries(path), 2 + 6);  // checkpoint-11, -12, config, model, tokenizer, metrics, plot, the run's lock
    snprintf(path2, sizeof path2, "%s/whole/training.png", dir);
    ck_assert(file_exists(path2));
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s", vlm_last_error());
    llava_params_free(&p);
    remove_tree(dir);
}
END_TEST

// A sample whose loss is NaN stops the run at its step, naming it; nothing
// of that step is applied, and the checkpoints already on disk are intact.
START_TEST(train_stops_on_nan_loss) {
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *word = "Zyzzyva";
    make_run_inputs(dir, word);
    // poison the embedding rows of the word's tokens that no other sample uses
    snprintf(path, sizeof path, "%s/base", dir);
    LlavaParams p;
    ck_assert_int_eq(llava_load_hf(&p, path), VLM_OK);
    Tokenizer tok;
    ck_assert_int_eq(tokenizer_load(&tok, LLAMA2), VLM_OK);
    IdBuf poison = {0}, other = {0};
    ck_assert_int_eq(tokenizer_encode(&tok, word, strlen(word), 0, &poison), VLM_OK);
    snprintf(path, sizeof path, "%s/data.json", dir);
    char *data;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &data, &size), VLM_OK);
    ck_assert_int_eq(tokenizer_encode(&tok, data, size, 0, &other), VLM_OK);  // (the word itself is in the data too)
    int poisoned = 0, H = p.cfg.text.hidden;
    for (size_t i = 0; i < poison.len; i++) {
        int used = 0;
        for (size_t k = 0; k < other.len; k++) used += other.data[k] == poison.data[i];
        if (used > 1) continue;  // only the poisoned record's own occurrence
        for (int h = 0; h < H; h++) p.w.embed[(size_t)poison.data[i] * H + h] = NAN;
        poisoned++;
    }
    ck_assert_int_gt(poisoned, 0);
    snprintf(path, sizeof path, "%s/base", dir);
    ck_assert_int_eq(llava_save_hf(&p, path), VLM_OK);
    llava_params_free(&p);
    free(data), free(poison.data), free(other.data);
    tokenizer_free(&tok);
    train_args(args, sizeof args, dir, "base", "run", "--save_total_limit 0 --save_steps 1");
    ck_assert_int_eq(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 1);
    ck_assert_msg(strstr(err, "\"poisoned\"") && strstr(err, "loss is nan"), "%s", err);
    const char *at = strstr(err, "error: step ");
    ck_assert_ptr_nonnull(at);
    long bad = strtol(at + 12, NULL, 10);
    ck_assert_int_ge(bad, 1);
    // every step before it saved; the last one loads and holds finite values only where it trained
    snprintf(path, sizeof path, "%s/run/checkpoint-%ld", dir, bad);
    ck_assert(!dir_exists(path));
    snprintf(path, sizeof path, "%s/run/model.safetensors", dir);
    ck_assert(!file_exists(path));
    if (bad > 1) {
        snprintf(path, sizeof path, "%s/run/checkpoint-%ld", dir, bad - 1);
        TrainState st;
        ck_assert_msg(train_checkpoint_read_state(path, &st) == VLM_OK, "%s", vlm_last_error());
        ck_assert_int_eq(st.step, bad - 1);
        ck_assert_int_eq(llava_load_hf(&p, path), VLM_OK);
        llava_params_free(&p);
    }
    remove_tree(dir);
}
END_TEST

// The teachers' embeddings of the five photos for a tiny OLA-VLM setup:
// depth [4, 6], seg [5, 2, 2] (OneFormer's map layout), gen [7].
static void write_targets(const char *dir) {
    static const char *const photos[] = {"211.jpg", "extreme_ironing.jpg", "llava_logo.png", "sausage.jpg", "waterview.jpg"};
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int i = 0; i < 5; i++) {
        float data[3][24];
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < 24; k++) data[t][k] = sinf((float)(i * 31 + t * 7 + k));
        TensorInfo infos[3] = {{.name = (char *)"depth", .dtype = DT_F32, .ndim = 2, .shape = {4, 6}},
                               {.name = (char *)"seg", .dtype = DT_F32, .ndim = 3, .shape = {5, 2, 2}},
                               {.name = (char *)"gen", .dtype = DT_F32, .ndim = 1, .shape = {7}}};
        const void *datas[3] = {data[0], data[1], data[2]};
        for (int t = 0; t < 3; t++) tensor_info_sizes(&infos[t]);
        char path[800];
        snprintf(path, sizeof path, "%.600s/%s.safetensors", dir, photos[i]);
        ck_assert_int_eq(safetensors_write(path, infos, datas, 3, NULL), VLM_OK);
    }
}

#define OLA_FLAGS                                                                                                  \
    "--recipe ola-pt --version v1 --mode gen-depth-seg --layer_indices d1-2_s2_g1 --num_task_tokens 2 "            \
    "--depth_head_num_tokens 4 --depth_head_output_dim 6 --depth_head_dim_head 4 --seg_head_num_tokens 4 "         \
    "--seg_head_output_dim 5 --seg_head_dim_head 4 --img_head_output_dim 7 --img_head_dim_head 4 --max_steps 3 "   \
    "--save_steps 2 --learning_rate 1e-3 --group_by_modality_length False --group_by_length True"

// OLA-VLM's pretraining end to end: fresh predictors and task tokens on the
// tiny model (projector and predictors train), the teachers' targets read
// per image, the loss's parts in metrics.jsonl; the saved model carries
// OLA-VLM's parts, and the next stage (ola-ift) leaves them out.
START_TEST(train_ola_pt) {
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], path[600], extra[1024];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    train_args(args, sizeof args, dir, "base", "pt", OLA_FLAGS);
    ck_assert_int_eq(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 2);  // the targets are required (a usage error)
    ck_assert_msg(strstr(err, "--teacher_embeddings"), "%s", err);
    snprintf(path, sizeof path, "%s/targets", dir);
    write_targets(path);
    snprintf(extra, sizeof extra, OLA_FLAGS " --teacher_embeddings %s/targets", dir);
    train_args(args, sizeof args, dir, "base", "pt", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    if (getenv("VLM_TEST_VERBOSE")) fputs(err, stderr);
    ck_assert_msg(strstr(err, "embedding_predictors") && strstr(err, "vision no, projector yes, language model no"), "%s", err);
    // HF's LengthGroupedSampler with per-device batch 4 x accumulation 2
    ck_assert_msg(strstr(err, "order: grouped by token length (HF's LengthGroupedSampler, batch 8)"), "%s", err);
    char *text;
    size_t size;
    snprintf(path, sizeof path, "%s/pt/metrics.jsonl", dir);
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    json_t *first = json_loadb(text, strcspn(text, "\n"), 0, NULL);
    ck_assert_ptr_nonnull(first);
    double parts = 0;
    static const char *const keys[] = {"text_loss", "depth_loss", "seg_loss", "gen_loss"};
    for (int i = 0; i < 4; i++) {
        const json_t *v = json_object_get(first, keys[i]);
        ck_assert_msg(json_is_number(v) && json_number_value(v) > 0, "%s: %s", keys[i], text);
        parts += json_number_value(v);
    }
    ck_assert_double_eq_tol(json_number_value(json_object_get(first, "loss")), parts, 1e-6 * parts);
    json_decref(first);
    free(text);
    snprintf(path, sizeof path, "%s/pt", dir);
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s", vlm_last_error());
    ck_assert(p.cfg.ola.enabled && p.cfg.ola.num_task_tokens == 2 && p.module_numel[MODULE_OLA] > 0);
    llava_params_free(&p);
    // a missing target names its file and record
    snprintf(path, sizeof path, "%s/targets/sausage.jpg.safetensors", dir);
    ck_assert_int_eq(remove(path), 0);
    train_args(args, sizeof args, dir, "base", "pt2", extra);
    ck_assert_int_eq(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 2);
    ck_assert_msg(strstr(err, "sausage.jpg.safetensors") && strstr(err, "data.json record"), "%s", err);
    // the next stage trains without the predictors
    train_args(args, sizeof args, dir, "pt", "ift", "--recipe ola-ift --version v1 --max_steps 1 --save_strategy no");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "left out"), "%s", err);
    snprintf(path, sizeof path, "%s/ift", dir);
    ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s", vlm_last_error());
    ck_assert(!p.cfg.ola.enabled && p.module_numel[MODULE_OLA] == 0);
    llava_params_free(&p);
    remove_tree(dir);
}
END_TEST

// OLA-VLM's Phi-3 combination (CLIP-ViT + Phi-3, its llava_phi_3 template): PT with the predictors
// on a tiny llava-hf model whose text_config is Phi-3's (fused products, a sliding window), saved
// with both, and IFT from it.
START_TEST(train_ola_pt_phi3) {
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], path[600], extra[1200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    init_model(dir, "phi3", "{\"architectures\": [\"LlavaForConditionalGeneration\"], \"model_type\": \"llava\", "
               "\"image_token_index\": 32000, \"vision_feature_layer\": -2, \"vision_feature_select_strategy\": \"default\", "
               "\"text_config\": {\"model_type\": \"phi3\", \"hidden_size\": 32, \"intermediate_size\": 48, "
               "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 4, \"vocab_size\": 32064, "
               "\"sliding_window\": 7, \"rope_scaling\": null}, \"vision_config\": {\"model_type\": \"clip_vision_model\", "
               "\"hidden_size\": 32, \"intermediate_size\": 48, \"image_size\": 32, \"patch_size\": 8, "
               "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"projection_dim\": 16}}\n",
               5);
    snprintf(path, sizeof path, "%s/phi3/tokenizer.model", dir);
    ck_assert_int_eq(file_copy_atomic(LLAMA2, path), VLM_OK);
    snprintf(path, sizeof path, "%s/targets", dir);
    write_targets(path);
    snprintf(extra, sizeof extra, OLA_FLAGS " --teacher_embeddings %s/targets --version llava_phi_3", dir);
    train_args(args, sizeof args, dir, "phi3", "pt", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/pt", dir);
    LlavaParams p;
    ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s", vlm_last_error());
    ck_assert(p.cfg.ola.enabled && p.cfg.text.fused_names && p.cfg.text.sliding_window == 7);
    llava_params_free(&p);
    train_args(args, sizeof args, dir, "pt", "ift", "--recipe ola-ift --version llava_phi_3 --max_steps 1 --save_strategy no");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/ift", dir);
    ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s", vlm_last_error());
    ck_assert(!p.cfg.ola.enabled && p.cfg.text.fused_names);
    llava_params_free(&p);
    remove_tree(dir);
}
END_TEST

// OLA-VLM's PT from its data alone, the two steps of the README: `vlm ola targets` runs the
// three teachers (tiny random ones, as users' folders are laid out: a transformers
// Depth-Anything folder, a OneFormer folder, a Stable-unCLIP folder) over the dataset's
// images, then `vlm train --recipe ola-pt` reads what it wrote, and VPT and IFT follow.
START_TEST(train_ola_targets_then_pt) {
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], path[600], extra[1600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    char depth[600], seg[600], gen[600];  // fixture() returns one buffer
    snprintf(depth, sizeof depth, "%s", fixture("teachers/depth_hf"));
    snprintf(seg, sizeof seg, "%s", fixture("teachers_seg/tiny_oneformer"));
    snprintf(gen, sizeof gen, "%s", fixture("teachers/gen"));
    snprintf(args, sizeof args,
             "--threads 2 ola targets --data_path %s/data.json --image_folder %s --teacher_embeddings %s/targets "
             "--depth_estimator %s --image_segmentor %s --image_generator %s --mode gen-depth-seg --batch_size 3",
             dir, PHOTOS, dir, depth, seg, gen);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "5 distinct images: 5 written, 0 already there"), "%s", err);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);  // again: nothing to do
    ck_assert_msg(strstr(err, "0 written, 5 already there"), "%s", err);
    // the tiny teachers' widths: depth 576 x 16 (DINOv2 16 wide), seg 48 x 24 x 24 (Swin 6 x 8), gen 20
    snprintf(extra, sizeof extra,
             "--recipe ola-pt --version v1 --mode gen-depth-seg --layer_indices d1-2_s2_g1 --num_task_tokens 2 "
             "--depth_head_num_tokens 576 --depth_head_output_dim 16 --depth_head_dim_head 4 --seg_head_num_tokens 576 "
             "--seg_head_output_dim 48 --seg_head_dim_head 4 --img_head_output_dim 20 --img_head_dim_head 4 "
             "--max_steps 2 --save_strategy no --learning_rate 1e-3 --teacher_embeddings %s/targets", dir);
    train_args(args, sizeof args, dir, "base", "pt", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/pt/metrics.jsonl", dir);
    char *text;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    ck_assert_msg(strstr(text, "\"depth_loss\"") && strstr(text, "\"seg_loss\"") && strstr(text, "\"gen_loss\""), "%s", text);
    free(text);
    train_args(args, sizeof args, dir, "pt", "vpt", "--recipe ola-vpt --max_steps 1 --save_strategy no");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    train_args(args, sizeof args, dir, "vpt", "ift", "--recipe ola-ift --max_steps 1 --save_strategy no");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    remove_tree(dir);
}
END_TEST

// OLA-VLM's released combinations, each through its three stages on tiny random models:
// {CLIP-ViT, CLIP-ConvNeXt} x {Llama-3 (llava_llama_3, its tiktoken tokenizer), Phi-3
// (llava_phi_3)}. PT starts as upstream's pretrain.sh does, from a plain LLM folder and the
// vision tower (a CLIP folder, or an open_clip folder named PATH-resN), then VPT and IFT.
START_TEST(train_ola_released_combinations) {
    static const char *const LLM[2][4] = {
        {"llama", "128256", "LlamaForCausalLM", "llava_llama_3"},
        {"phi3", "32064", "Phi3ForCausalLM", "llava_phi_3"}};
    int vision = _i / 2, llm = _i % 2;
    char dir[] = "/tmp/vlm-train-XXXXXX", args[4096], path[700], extra[2400], tower[700], config[1200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    snprintf(config, sizeof config,
             "{\"architectures\": [\"LlavaForConditionalGeneration\"], \"model_type\": \"llava\", \"text_config\": "
             "{\"model_type\": \"%s\", \"hidden_size\": 32, \"intermediate_size\": 48, \"num_attention_heads\": 4, "
             "\"num_hidden_layers\": 2, \"num_key_value_heads\": %s, \"vocab_size\": %s}, \"vision_config\": "
             "{\"model_type\": \"clip_vision_model\", \"hidden_size\": 32, \"intermediate_size\": 48, "
             "\"image_size\": 32, \"patch_size\": 8, \"num_attention_heads\": 4, \"num_hidden_layers\": 2}}\n",
             LLM[llm][0], llm ? "4" : "2", LLM[llm][1]);
    init_model(dir, "m", config, 3);
    write_llm_folder(dir, "m", "llm", llm ? LLAMA2 : LLAMA3, LLM[llm][2]);
    if (vision) snprintf(tower, sizeof tower, "%s-res64", fixture("convnext/tiny_openclip"));
    else snprintf(tower, sizeof tower, "%s", fixture("model/tiny_gqa_clip"));
    snprintf(path, sizeof path, "%s/targets", dir);
    write_targets(path);
    snprintf(extra, sizeof extra, OLA_FLAGS " --teacher_embeddings %s/targets --version %s --vision_tower %s "
             "--max_steps 1 --save_strategy no", dir, LLM[llm][3], tower);
    train_args(args, sizeof args, dir, "llm", "pt", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "embedding_predictors"), "%s", err);
    snprintf(extra, sizeof extra, "--recipe ola-vpt --version %s --max_steps 1 --save_strategy no", LLM[llm][3]);
    train_args(args, sizeof args, dir, "pt", "vpt", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(extra, sizeof extra, "--recipe ola-ift --version %s --max_steps 1 --save_strategy no", LLM[llm][3]);
    train_args(args, sizeof args, dir, "vpt", "ift", extra);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    static const char *const stages[] = {"pt", "vpt", "ift"};
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s", dir, stages[s]);
        LlavaParams p;
        ck_assert_msg(llava_load_hf(&p, path) == VLM_OK, "%s: %s", stages[s], vlm_last_error());
        ck_assert_int_eq(p.cfg.vision.kind, vision ? VISION_CONVNEXT : VISION_CLIP);
        ck_assert(p.cfg.text.fused_names == (llm == 1) && p.cfg.ola.enabled == (s == 0));
        llava_params_free(&p);
    }
    remove_tree(dir);
}
END_TEST

// DIR/m: a LLaVA of 19M parameters (most in the 32000-token embedding and LM
// head) with the LLaMA-2 tokenizer, and DIR/long.json: text-only records whose
// answers outrun 256 tokens, so every micro-batch fills the planned length.
static void make_plan_inputs(const char *dir) {
    char path[600];
    init_model(dir, "m", "{\"model_type\": \"llava\", \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 256, "
               "\"intermediate_size\": 688, \"num_attention_heads\": 4, \"num_hidden_layers\": 4, \"num_key_value_heads\": 2, "
               "\"vocab_size\": 32000}, \"vision_config\": {\"model_type\": \"clip_vision_model\", \"hidden_size\": 64, "
               "\"intermediate_size\": 128, \"image_size\": 32, \"patch_size\": 8, \"num_attention_heads\": 4, "
               "\"num_hidden_layers\": 2}}\n",
               1);
    snprintf(path, sizeof path, "%s/m/tokenizer.model", dir);
    ck_assert_int_eq(file_copy_atomic(LLAMA2, path), VLM_OK);
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while",
                                        "seven", "wizards", "quietly", "hum", "old", "songs"};
    char *json = malloc(1 << 20);
    size_t at = (size_t)sprintf(json, "[");
    for (int i = 0; i < 32; i++) {
        at += (size_t)sprintf(json + at, "%s{\"id\": \"%d\", \"conversations\": [{\"from\": \"human\", \"value\": \"Tell me a "
                                         "story.\"}, {\"from\": \"gpt\", \"value\": \"", i ? "," : "", i);
        for (int j = 0; j < 300; j++) at += (size_t)sprintf(json + at, "%s%s", j ? " " : "", words[(i + j) % 16]);
        at += (size_t)sprintf(json + at, "\"}]}");
    }
    sprintf(json + at, "]\n");
    snprintf(path, sizeof path, "%s/long.json", dir);
    write_text_file(path, json);
    free(json);
}

// The total of the "memory plan:" line vlm train printed, in MB.
static double planned_mb(const char *log) {
    const char *p = strstr(log, "memory plan: ");
    ck_assert_msg(p != NULL, "no memory plan in: %s", log);
    p = strstr(p, ": total ");
    ck_assert_ptr_nonnull(p);
    return atof(p + 8);
}

// The plan printed before the first step is what the run then holds: within
// 10% of its peak resident memory, with and without recomputation (which
// plans, and holds, less).
START_TEST(train_memory_plan_matches_peak_rss) {
    char dir[] = "/tmp/vlm-plan-XXXXXX", args[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_plan_inputs(dir);
    double plan[2], peak[2];
    for (int r = 0; r < 2; r++) {  // recomputing first: RUSAGE_CHILDREN keeps the largest child's peak
        snprintf(args, sizeof args,
                 "--threads 2 train --model_name_or_path %s/m --version v1 --data_path %s/long.json --output_dir %s/out%d "
                 "--per_device_train_batch_size 4 --model_max_length 256 --max_steps 2 --save_strategy no "
                 "--learning_rate 1e-4 --gradient_checkpointing %s",
                 dir, dir, dir, r, r == 0 ? "True" : "False");
        ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
        struct rusage ru;
        ck_assert_int_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
        plan[r] = planned_mb(err), peak[r] = (double)ru.ru_maxrss / 1024.0;
        ck_assert_msg(fabs(plan[r] - peak[r]) <= 0.10 * peak[r], "%s: planned %.0f MB, peak RSS %.0f MB",
                      r == 0 ? "recomputing" : "keeping every activation", plan[r], peak[r]);
    }
    ck_assert_msg(plan[0] < plan[1] && peak[0] < peak[1], "recomputing plans %.0f MB (peak %.0f), keeping %.0f (peak %.0f)",
                  plan[0], peak[0], plan[1], peak[1]);
    remove_tree(dir);
}
END_TEST

// A run that cannot fit stops before allocating, with the numbers and a
// setting that fits; nothing is written.
START_TEST(train_memory_plan_refuses_what_cannot_fit) {
    char dir[] = "/tmp/vlm-plan-XXXXXX", args[4096], path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_plan_inputs(dir);
    struct rlimit rl = {(rlim_t)3 << 30, (rlim_t)3 << 30};  // this process and its children: 3 GB of address space
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
    snprintf(args, sizeof args,
             "--threads 2 train --model_name_or_path %s/m --version v1 --data_path %s/long.json --output_dir %s/out "
             "--per_device_train_batch_size 16 --gradient_accumulation_steps 2 --model_max_length 2048 --max_steps 2 "
             "--learning_rate 1e-4",
             dir, dir, dir);
    ck_assert_int_eq(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 2);
    // the machine's allowance is at most the 3 GB limit (less where RAM or a cgroup gives less)
    const char *allows = strstr(err, "MB and this machine allows ");
    ck_assert_msg(strstr(err, "memory plan: ") && allows && atof(allows + 27) <= 3072 && strstr(err, "it does not fit (") &&
                      strstr(err, "--per_device_train_batch_size "),
                  "%s", err);
    snprintf(path, sizeof path, "%s/out/metrics.jsonl", dir);
    ck_assert(!file_exists(path));
    remove_tree(dir);
}
END_TEST

Suite *trainer_suite(void) {
    Suite *s = SUITE("trainer", "", 300, checkpoint_round_trip, run_log_resume_keeps_earlier_steps,
                     train_resume_after_sigkill_is_exact, train_stops_on_nan_loss, train_ola_pt, train_ola_pt_phi3,
                     train_ola_targets_then_pt, train_memory_plan_matches_peak_rss,
                     train_memory_plan_refuses_what_cannot_fit);
    TCase *tc = tcase_create("ola_combinations");  // {ViT, ConvNeXt} x {Llama-3, Phi-3}
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, train_ola_released_combinations, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}
