// LoRA against PEFT 0.8.2 (tools/make_lora_fixtures.sh: tests/fixtures/lora): the tiny LLaVA
// with r 4, alpha 8 adapters on every linear of its LLM (LLaVA's find_all_linear_names), the
// projector trained in full at its own lr, the base frozen.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors.h"
#include "formats/dtype.h"
#include "model/half_store.h"
#include "model/llava.h"
#include "model/lora.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/step.h"

#define PEFT "base_model.model."  // PEFT's prefix of the wrapped model's names

// tiny_gqa with LoRA r 4 / alpha 8 laid out, the adapters' values from the reference
static void load_lora_model(LlavaParams *p, const SafetensorsFile *ref) {
    ck_assert_msg(llava_load_hf(p, fixture("model/tiny_gqa")) == VLM_OK, "%s", vlm_last_error());
    LlavaConfig cfg = p->cfg;
    cfg.lora = (LoraConfig){.r = 4, .alpha = 8.0f, .dropout = 0.0f};
    bool kept;
    ck_assert_int_eq(llava_params_relayout(p, &cfg, &kept), VLM_OK);
    ck_assert(!kept);  // the adapters are new
    int n = 0;
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        if (s->module != MODULE_LORA) continue;
        char key[220];
        snprintf(key, sizeof key, PEFT "%s", s->name);
        const TensorInfo *info;
        const float *v = ref_tensor(ref, key, &info);
        ck_assert_uint_eq(info->nbytes, s->numel * sizeof(float));
        memcpy(p->data + s->offset, v, info->nbytes);
        n++;
    }
    ck_assert_int_eq(n, 2 * 7 * 2);  // 2 layers x 7 linears x (A, B): PEFT's adapter_model.safetensors
}

// |ours - want| within tol of |want| over every trained tensor (want: PREFIX + PEFT + name)
static void check_trained(const LlavaModel *m, const float *base, const SafetensorsFile *ref, const char *prefix,
                          double tol, double abs_tol) {
    int n = 0;
    for (int i = 0; i < m->params.n_specs; i++) {
        const ParamSpec *s = &m->params.specs[i];
        if (!param_trained(s, m->trainable)) continue;
        char key[240];
        snprintf(key, sizeof key, "%s" PEFT "%s", prefix, s->name);
        const float *want = ref_tensor(ref, key, NULL), *ours = base + s->offset;
        double diff = 0, norm = 0;
        for (size_t k = 0; k < s->numel; k++)
            diff += ((double)ours[k] - want[k]) * ((double)ours[k] - want[k]), norm += (double)want[k] * want[k];
        if (getenv("VLM_TEST_VERBOSE")) fprintf(stderr, "%s%s %.3g\n", prefix, s->name, sqrt(diff / norm));
        ck_assert_msg(sqrt(diff) <= tol * sqrt(norm) + abs_tol, "%s%s differs by %g of its norm", prefix, s->name,
                      sqrt(diff / norm));
        n++;
    }
    ck_assert_int_eq(n, 28 + 4);  // the adapters and the projector's four tensors
}

static void check_logits(LlavaModel *m, const float *want, size_t rows, int V, double tol, const char *what) {
    double diff = 0, norm = 0;
    size_t row = 0;
    for (int b = 0; b < m->B; b++)
        for (int t = 0; t < m->seq_len[b]; t++, row++) {
            const float *ours = llava_logits(m, b, t), *w = want + row * V;
            for (int v = 0; v < V; v++) diff += ((double)ours[v] - w[v]) * ((double)ours[v] - w[v]), norm += (double)w[v] * w[v];
        }
    ck_assert_uint_eq(row, rows);
    ck_assert_msg(sqrt(diff) <= tol * sqrt(norm), "%s: logits differ by %g of their norm", what, sqrt(diff / norm));
}

// The LoRA forward's logits and loss, every adapter's and the projector's gradient, 3 AdamW
// steps with LLaVA's two learning rates, and the model merged after them (merge_and_unload).
START_TEST(lora_like_peft) {
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("lora/reference.safetensors")), VLM_OK);
    LlavaParams p;
    load_lora_model(&p, &ref);
    const TensorInfo *logit_info;
    const float *ref_logits = ref_tensor(&ref, "ref.logits", &logit_info);
    float ref_loss = *(const float *)ref_tensor(&ref, "ref.loss", NULL);
    RefBatch rb;
    read_ref_batch(&ref, &rb);
    int F = llava_image_tokens(&p.cfg), V = p.cfg.text.vocab;
    LlavaModel m;
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){rb.n_images, rb.B, rb.T, rb.T + rb.n_images * F, false, false}), VLM_OK);
    bool trains[MODULE_COUNT] = {[MODULE_PROJECTOR] = true, [MODULE_LORA] = true};
    memcpy(m.trainable, trains, sizeof trains);
    double loss;
    m.all_logits = true;
    ck_assert_int_eq(llava_forward(&m, rb.ids, rb.labels, rb.lengths, rb.B, rb.T, rb.pixels, rb.n_images, 0, &loss), VLM_OK);
    check_logits(&m, ref_logits, (size_t)logit_info->shape[0], V, 1e-5, "LoRA");
    ck_assert_msg(fabs(loss - ref_loss) <= 1e-5 * ref_loss, "loss %.8f, PEFT %.8f", loss, (double)ref_loss);
    m.all_logits = false;
    ck_assert_int_eq(llava_forward(&m, rb.ids, rb.labels, rb.lengths, rb.B, rb.T, rb.pixels, rb.n_images, 0, &loss), VLM_OK);
    llava_zero_grad(&m);
    llava_backward(&m);
    check_trained(&m, m.grad, &ref, "grad.", 1e-4, 1e-6);
    // the frozen base got no gradient
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        if (s->module != MODULE_LLM) continue;
        for (size_t k = 0; k < s->numel; k++) ck_assert_msg(m.grad[s->offset + k] == 0.0f, "%s got a gradient", s->name);
    }
    // 3 steps: HF's AdamW groups with --mm_projector_lr, clip_grad_norm_(1.0)
    float *frozen = malloc(sizeof(float) * m.params.numel);
    memcpy(frozen, m.params.data, sizeof(float) * m.params.numel);
    OptimizerConfig oc = {.lr = 1e-3, .weight_decay = 0.0, .projector_lr = 2e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .max_grad_norm = 1.0};
    Optimizer o;
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    size_t trained = 0;
    for (int i = 0; i < m.params.n_specs; i++)
        if (param_trained(&m.params.specs[i], m.trainable)) trained += m.params.specs[i].numel;
    ck_assert_uint_eq(o.adam.n, trained);  // moments for the adapters and the projector only
    json_t *e = fixture_json("lora/expected.json");
    ck_assert_ptr_nonnull(e);
    StepConfig sc = {LOSS_TOKEN_MEAN, 1, 0};
    MicroBatch mb = {rb.ids, rb.labels, rb.lengths, rb.B, rb.T, rb.pixels, rb.n_images, NULL, 0};
    for (int k = 0; k < 3; k++) {
        StepResult r;
        ck_assert_int_eq(train_step(&m, &o, &sc, &mb, 1, 1.0, &r), VLM_OK);
        json_t *want = json_array_get(json_object_get(e, "steps"), (size_t)k);
        double wl = json_number_value(json_object_get(want, "loss")), wn = json_number_value(json_object_get(want, "grad_norm"));
        ck_assert_msg(fabs(r.loss - wl) <= 1e-5 * wl, "step %d: loss %.8f, PEFT %.8f", k + 1, r.loss, wl);
        ck_assert_msg(fabs(r.grad_norm - wn) <= 1e-5 * wn, "step %d: grad norm %.8f, PEFT %.8f", k + 1, r.grad_norm, wn);
    }
    check_trained(&m, m.params.data, &ref, "step3.", 1e-5, 1e-7);
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        if (!param_trained(s, m.trainable))
            ck_assert_msg(!memcmp(frozen + s->offset, m.params.data + s->offset, s->numel * sizeof(float)), "%s changed",
                          s->name);
    }
    // merged: W + alpha / r B A, then the model without adapters gives PEFT's merged logits
    ck_assert_int_eq(llava_lora_merge(&m.params), VLM_OK);
    ck_assert_int_eq(m.params.cfg.lora.r, 0);
    LlavaModel merged;
    ck_assert_int_eq(llava_model_init(&merged, &m.params, &(LlavaPlan){rb.n_images, rb.B, rb.T, rb.T + rb.n_images * F, false, false}), VLM_OK);
    merged.all_logits = true;
    ck_assert_int_eq(llava_forward(&merged, rb.ids, rb.labels, rb.lengths, rb.B, rb.T, rb.pixels, rb.n_images, 0, &loss), VLM_OK);
    check_logits(&merged, ref_tensor(&ref, "merged.logits", NULL), (size_t)logit_info->shape[0], V, 2e-5, "merged");
    llava_model_free(&merged);
    json_decref(e);
    free(frozen);
    optimizer_free(&o);
    llava_model_free(&m);
    safetensors_close(&ref);
}
END_TEST

// --bits 16 --bf16 True: the frozen LLM's layer matrices held in bf16 and widened only while their
// layer runs give, bit for bit, the model whose matrices were rounded to bf16 once.
START_TEST(half_store_is_the_rounded_base) {
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("lora/reference.safetensors")), VLM_OK);
    RefBatch rb;
    read_ref_batch(&ref, &rb);
    LlavaModel m[2];
    HalfStore *half = NULL;
    for (int k = 0; k < 2; k++) {
        LlavaParams p;
        load_lora_model(&p, &ref);
        if (k == 1)  // rounded once, by hand
            for (int i = 0; i < p.n_specs; i++) {
                const ParamSpec *s = &p.specs[i];
                if (s->module != MODULE_LLM || s->ndim != 2 || !strstr(s->name, ".layers.")) continue;
                for (size_t j = 0; j < s->numel; j++) {
                    uint16_t h = f32_to_bf16(p.data[s->offset + j]);
                    dtype_to_f32(DT_BF16, &h, &p.data[s->offset + j], 1);
                }
            }
        int F = llava_image_tokens(&p.cfg);
        ck_assert_int_eq(llava_model_init(&m[k], &p, &(LlavaPlan){rb.n_images, rb.B, rb.T, rb.T + rb.n_images * F, false, false}), VLM_OK);
        bool trains[MODULE_COUNT] = {[MODULE_PROJECTOR] = true, [MODULE_LORA] = true};
        memcpy(m[k].trainable, trains, sizeof trains);
        if (k == 0) ck_assert_int_eq(half_store_attach(&half, &m[0], DT_BF16), VLM_OK);
        ck_assert_uint_gt(k == 0 ? half_store_saved_bytes(half) : 1, 0);
        double loss;
        for (int pass = 0; pass < 2; pass++) {  // twice: the layers widened again after their pages went back
            llava_zero_grad(&m[k]);
            ck_assert_int_eq(llava_forward(&m[k], rb.ids, rb.labels, rb.lengths, rb.B, rb.T, rb.pixels, rb.n_images, 0, &loss), VLM_OK);
            llava_backward(&m[k]);
        }
    }
    ck_assert_double_eq(m[0].loss, m[1].loss);
    ck_assert_msg(!memcmp(m[0].grad, m[1].grad, m[0].params.numel * sizeof(float)), "the gradients differ");
    half_store_free(half);
    ck_assert_msg(!memcmp(m[0].params.data, m[1].params.data, m[0].params.numel * sizeof(float)),
                  "the widened base is not the rounded one");
    llava_model_free(&m[0]), llava_model_free(&m[1]);
    safetensors_close(&ref);
}
END_TEST

// A token id past the model's vocabulary (a larger tokenizer) is an error naming it, never a read past the table.
START_TEST(token_outside_the_vocabulary) {
    LlavaParams p;
    ck_assert_int_eq(llava_load_hf(&p, fixture("model/tiny_gqa")), VLM_OK);
    LlavaModel m;
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){1, 1, 8, 8, false, false}), VLM_OK);
    int32_t ids[4] = {1, 5, 101, 7}, labels[4] = {-100, 5, 101, 7};
    int len = 4;
    double loss;
    ck_assert_int_eq(llava_forward(&m, ids, labels, &len, 1, 4, NULL, 0, 0, &loss), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "token 2: id 101 is outside the model's vocabulary of 101"), "%s", vlm_last_error());
    llava_model_free(&m);
}
END_TEST

// ---- `vlm train --lora_enable True` end to end

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
enum { OUT_SIZE = 1 << 16 };
static char out[OUT_SIZE], err[OUT_SIZE], out2[OUT_SIZE];

static void lora_args(char *args, size_t size, const char *dir, const char *output, const char *extra) {
    // LLaVA's finetune_lora.sh's LoRA flags (r / alpha scaled down to the tiny model)
    snprintf(args, size,
             "--threads 2 train --model_name_or_path %s/base --version v1 --data_path %s/data.json --image_folder %s "
             "--output_dir %s/%s --lora_enable True --lora_r 8 --lora_alpha 16 --lora_dropout 0.05 --mm_projector_lr 2e-4 "
             "--per_device_train_batch_size 4 --gradient_accumulation_steps 1 --max_steps 4 --learning_rate 2e-3 "
             "--logging_steps 1 --save_steps 2 --model_max_length 96 --image_aspect_ratio pad --seed 3 %s",
             dir, dir, PHOTOS, dir, output, extra);
}

// The run leaves PEFT's adapter folder and LLaVA's non_lora_trainables.bin (no full model), the
// base untouched; resumed from its checkpoint it gives the same adapters bit for bit (dropout
// included); `vlm forward` runs the adapter folder unmerged, and `vlm lora merge` writes a full
// model that predicts the same.
START_TEST(lora_train_save_resume_merge) {
    char dir[] = "/tmp/vlm-lora-XXXXXX", args[4096], path[700], cmd[2400];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_run_inputs(dir, NULL);
    lora_args(args, sizeof args, dir, "run", "");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "its LoRA adapters yes"), "%s", err);
    static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors", "non_lora_trainables.bin",
                                        "tokenizer.model", "metrics.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/run/%s", dir, files[i]);
        ck_assert_msg(file_exists(path), "%s missing", path);
    }
    snprintf(path, sizeof path, "%s/run/model.safetensors", dir);
    ck_assert(!file_exists(path));
    // PEFT's names and LLaVA's
    SafetensorsFile st;
    snprintf(path, sizeof path, "%s/run/adapter_model.safetensors", dir);
    ck_assert_int_eq(safetensors_open(&st, path), VLM_OK);
    ck_assert_int_eq(st.count, 2 * 7 * 2);
    ck_assert(safetensors_find(&st, PEFT "language_model.model.layers.1.mlp.down_proj.lora_B.weight") >= 0);
    safetensors_close(&st);
    json_t *cfg = json_load_file((snprintf(path, sizeof path, "%s/run/adapter_config.json", dir), path), 0, NULL);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(json_integer_value(json_object_get(cfg, "r")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(cfg, "lora_alpha")), 16);
    ck_assert_int_eq((int)json_array_size(json_object_get(cfg, "target_modules")), 14);
    json_decref(cfg);
    // resumed from checkpoint-2: the same adapters and projector
    snprintf(cmd, sizeof cmd, "mkdir %s/again && cp -r %s/run/checkpoint-2 %s/again/", dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    lora_args(args, sizeof args, dir, "again", "");
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "resuming from"), "%s", err);
    for (int i = 1; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "cmp -s %s/run/%s %s/again/%s", dir, files[i], dir, files[i]);
        ck_assert_msg(system(cmd) == 0, "the resumed run's %s differs", files[i]);
    }
    // unmerged (the adapter folder over its base) and merged predict the same
    snprintf(cmd, sizeof cmd, "lora merge %s/base %s/run %s/merged", dir, dir, dir);
    ck_assert_msg(run_vlm(cmd, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(cmd, sizeof cmd, "forward --model %s/run --ids 1,450,4996,338,263,3367 --top 3", dir);
    ck_assert_msg(run_vlm(cmd, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    snprintf(cmd, sizeof cmd, "forward --model %s/merged --ids 1,450,4996,338,263,3367 --top 3", dir);
    ck_assert_msg(run_vlm(cmd, out2, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strcmp(out, out2) == 0, "unmerged:\n%s\nmerged:\n%s", out, out2);
    snprintf(cmd, sizeof cmd, "forward --model %s/base --ids 1,450,4996,338,263,3367 --top 3", dir);
    ck_assert_msg(run_vlm(cmd, out2, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strcmp(out, out2) != 0, "the adapters changed nothing");
    remove_tree(dir);
}
END_TEST

// A bad adapter folder is an error naming the file and the key, never a crash (also under ASan):
// malformed JSON, a missing r, another PEFT method, another bias, a missing or mis-shaped adapter.
START_TEST(bad_adapter_folders) {
    char dir[] = "/tmp/vlm-adapter-XXXXXX", path[700];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    // a good folder first: PEFT's own adapter of the fixture (r 4), copied
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cp %s/* %s/", fixture("lora/adapter"), dir);
    ck_assert_int_eq(system(cmd), 0);
    LlavaParams p;
    ck_assert_int_eq(llava_load_hf(&p, fixture("model/tiny_gqa")), VLM_OK);
    ck_assert_msg(lora_load_adapter(&p, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(p.cfg.lora.r, 4);
    llava_params_free(&p);
    static const struct { const char *config, *want; } bad[] = {
        {"{\"r\": 4, \"lora_alpha\": 8", "adapter_config.json"},
        {"{\"lora_alpha\": 8, \"peft_type\": \"LORA\"}", "r"},
        {"{\"r\": 4, \"lora_alpha\": 8, \"peft_type\": \"PREFIX_TUNING\"}", "only LoRA adapters"},
        {"{\"r\": 4, \"lora_alpha\": 8, \"bias\": \"all\"}", "bias"},
        {"{\"r\": 4, \"lora_alpha\": -1}", "lora_alpha"},
        {"{\"r\": 8, \"lora_alpha\": 16}", "elements"},  // the file's A is (4, in): not r 8's
    };
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text_file(path, bad[i].config);
        ck_assert_int_eq(llava_load_hf(&p, fixture("model/tiny_gqa")), VLM_OK);
        int rc = lora_load_adapter(&p, dir);
        ck_assert_msg(rc == VLM_ERR_INPUT && strstr(vlm_last_error(), bad[i].want), "case %zu: %d %s", i, rc,
                      vlm_last_error());
        llava_params_free(&p);
    }
    // an adapter tensor missing: the count of what is missing
    write_text_file(path, "{\"r\": 4, \"lora_alpha\": 8}");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    SafetensorsFile f;
    ck_assert_int_eq(safetensors_open(&f, path), VLM_OK);
    TensorInfo infos[1] = {f.tensors[0]};
    const void *datas[1] = {safetensors_tensor_data(&f, 0)};
    char keep[700];
    snprintf(keep, sizeof keep, "%s/one.safetensors", dir);
    ck_assert_int_eq(safetensors_write(keep, infos, datas, 1, NULL), VLM_OK);
    safetensors_close(&f);
    ck_assert_int_eq(rename(keep, path), 0);
    ck_assert_int_eq(llava_load_hf(&p, fixture("model/tiny_gqa")), VLM_OK);
    ck_assert_int_eq(lora_load_adapter(&p, dir), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "27 of the model's 28 adapter tensors are missing"), "%s", vlm_last_error());
    llava_params_free(&p);
    remove_tree(dir);
}
END_TEST

Suite *lora_files_suite(void) { return SUITE("lora_files", "parser", 60, bad_adapter_folders); }

Suite *lora_suite(void) {
    return SUITE("lora", "", 600, lora_like_peft, half_store_is_the_rounded_base, token_outside_the_vocabulary,
                 lora_train_save_resume_merge);
}
