// The LLaVA model against transformers 4.37.2 (tests/fixtures/model, made by
// tools/make_model_fixtures.sh): tiny random models loaded from their
// llava-hf directories; logits and loss within 1e-5 (relative to the largest
// logit), every parameter's gradient within 1e-4 of its norm.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "formats/safetensors.h"
#include "model/llava.h"
#include "train/adamw.h"
#include "test_util.h"

static const void *tensor(const SafetensorsFile *f, const char *name, const TensorInfo **info) {
    int i = safetensors_find(f, name);
    ck_assert_msg(i >= 0, "reference tensor %s missing", name);
    if (info) *info = &f->tensors[i];
    return safetensors_tensor_data(f, i);
}

// A fresh temporary folder (path in dir, which must hold "XXXXXX") and its removal.
static void temp_dir(char *dir) { ck_assert_ptr_nonnull(mkdtemp(dir)); }
static void remove_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void check_case(const char *name) {
    char dir[512], ref_path[512];
    snprintf(dir, sizeof dir, "%s", fixture("model"));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", name);
    snprintf(ref_path, sizeof ref_path, "%s/reference.safetensors", dir);
    LlavaParams params;
    ck_assert_msg(llava_load_hf(&params, dir) == VLM_OK, "%s", vlm_last_error());
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, ref_path), VLM_OK);
    const TensorInfo *ids_info, *pix_info, *logit_info;
    const int32_t *ids = tensor(&ref, "batch.input_ids", &ids_info), *labels = tensor(&ref, "batch.labels", NULL);
    const int32_t *lengths32 = tensor(&ref, "batch.lengths", NULL);
    const float *pixels = tensor(&ref, "batch.pixel_values", &pix_info);
    const float *ref_logits = tensor(&ref, "ref.logits", &logit_info);
    float ref_loss = *(const float *)tensor(&ref, "ref.loss", NULL);
    int B = (int)ids_info->shape[0], T = (int)ids_info->shape[1], n_images = (int)pix_info->shape[0];
    int lengths[8];
    for (int b = 0; b < B; b++) lengths[b] = lengths32[b];
    int F = llava_image_tokens(&params.cfg), V = params.cfg.text.vocab;
    LlavaModel m;
    ck_assert_int_eq(llava_model_init(&m, &params, n_images, B, T, T + n_images * F), VLM_OK);
    double loss, loss_all;
    m.all_logits = true;
    ck_assert_msg(llava_forward(&m, ids, labels, lengths, B, T, pixels, n_images, 0, &loss_all) == VLM_OK, "%s",
                  vlm_last_error());
    // logits at every real position, in the reference's order
    // relative error as a norm over all of them, as for the gradients below: the largest single
    // difference depends on the sgemm kernel (FMA or not) more than on the model
    double diff = 0, norm = 0, worst = 0;
    size_t row = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < m.seq_len[b]; t++, row++) {
            const float *ours = llava_logits(&m, b, t), *want = ref_logits + row * V;
            for (int v = 0; v < V; v++) {
                double d = (double)ours[v] - want[v];
                diff += d * d, norm += (double)want[v] * want[v], worst = fmax(worst, fabs(d));
            }
        }
    ck_assert_uint_eq(row, (size_t)logit_info->shape[0]);
    ck_assert_msg(sqrt(diff) <= 1e-5 * sqrt(norm), "%s: logits differ by %g of their norm (largest difference %g)",
                  name, sqrt(diff / norm), worst);
    if (getenv("VLM_TEST_VERBOSE")) fprintf(stderr, "%s logits %.3g of norm, worst %.3g\n", name, sqrt(diff / norm), worst);
    // training computes logits only where a target is: the same loss and gradients
    m.all_logits = false;
    ck_assert_int_eq(llava_forward(&m, ids, labels, lengths, B, T, pixels, n_images, 0, &loss), VLM_OK);
    ck_assert_msg(m.llm.n_rows == m.n_targets && m.n_targets < (long)row, "%s: %d rows", name, m.llm.n_rows);
    ck_assert_double_eq_tol(loss, loss_all, 1e-6 * fabs(loss));
    ck_assert_msg(fabs(loss - ref_loss) <= 1e-5 * fabs(ref_loss), "%s: loss %.8f, transformers %.8f", name, loss,
                  (double)ref_loss);
    // every gradient
    llava_backward(&m);
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        char key[200];
        snprintf(key, sizeof key, "grad.%s", s->name);
        const float *want = tensor(&ref, key, NULL), *ours = m.grad + s->offset;
        double diff = 0, norm = 0;
        for (size_t k = 0; k < s->numel; k++) {
            diff += ((double)ours[k] - want[k]) * ((double)ours[k] - want[k]);
            norm += (double)want[k] * want[k];
        }
        // + 1e-6: a key projection's bias has gradient zero in exact arithmetic (softmax ignores a
        // constant added to every score), so both sides hold rounding noise of ~1e-7 there
        ck_assert_msg(sqrt(diff) <= 1e-4 * sqrt(norm) + 1e-6, "%s: gradient of %s differs: |diff| %g, |grad| %g", name,
                      s->name, sqrt(diff), sqrt(norm));
    }
    // three steps of torch.optim.AdamW (lr 1e-3, wd 0.1 on every parameter) with clip_grad_norm_(1.0)
    AdamW opt;
    ck_assert_int_eq(adamw_init(&opt, m.params.numel, (AdamWConfig){0.9, 0.999, 1e-8}), VLM_OK);
    size_t *ranges = malloc(sizeof(size_t) * 2 * m.params.n_specs);
    int n_ranges = llava_trained_ranges(&m, ranges);
    float *initial = malloc(sizeof(float) * m.params.numel);
    memcpy(initial, m.params.data, sizeof(float) * m.params.numel);
    llava_zero_grad(&m);
    for (int step = 0; step < 3; step++) {
        ck_assert_int_eq(llava_forward(&m, ids, labels, lengths, B, T, pixels, n_images, 0, &loss), VLM_OK);
        llava_backward(&m);
        grad_clip(m.grad, ranges, n_ranges, 1.0);
        adamw_begin_step(&opt);
        for (int r = 0; r < n_ranges; r++) adamw_update(&opt, m.params.data, m.grad, ranges[2 * r], ranges[2 * r + 1], 1e-3f, 0.1f);
        llava_zero_grad(&m);
    }
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        // a key bias's gradient is rounding noise (see above); Adam normalises noise to +-lr
        // steps of arbitrary sign, in torch as here, so its value after the steps is not comparable
        if (strstr(s->name, "vision_model") && strstr(s->name, "k_proj.bias")) continue;
        char key[200];
        snprintf(key, sizeof key, "step3.%s", s->name);
        const float *want = tensor(&ref, key, NULL), *ours = m.params.data + s->offset;
        const float *start = initial + s->offset;
        double diff = 0, norm = 0, update = 0;
        for (size_t k = 0; k < s->numel; k++) {
            diff += ((double)ours[k] - want[k]) * ((double)ours[k] - want[k]);
            norm += (double)want[k] * want[k];
            update += ((double)want[k] - start[k]) * ((double)want[k] - start[k]);
        }
        if (getenv("VLM_TEST_VERBOSE")) fprintf(stderr, "%s %s %.3g %.3g\n", name, s->name, sqrt(diff / norm), sqrt(diff / update));
        // within 1e-5 of the tensor's norm; a zero-initialised bias has no norm to speak of yet, and Adam
        // divides by sqrt(v), so an element whose gradient is near zero (where fp32 summation order,
        // OpenBLAS's or MKL's, moves it by a large fraction) takes a visibly different step: such
        // tensors are held to 1e-3 of their update (measured: at most 7.2e-4)
        ck_assert_msg(sqrt(diff) <= fmax(1e-5 * sqrt(norm), 1e-3 * sqrt(update)),
                      "%s: %s after 3 AdamW steps differs by %g of its norm, %g of its update", name, s->name,
                      sqrt(diff / norm), sqrt(diff / update));
    }
    free(ranges);
    free(initial);
    adamw_free(&opt);
    safetensors_close(&ref);
    llava_model_free(&m);
}

START_TEST(llava_matches_transformers) {
    check_case("tiny_gqa");
    check_case("tiny_full");
}
END_TEST

START_TEST(llava_load_reports_bad_checkpoints) {
    // a config whose shapes disagree with the weights: one error listing the tensors
    char dir[] = "/tmp/vlm-model-XXXXXX";
    temp_dir(dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s/model.safetensors %s/ && sed 's/\"intermediate_size\": 45/\"intermediate_size\": 46/' "
             "%s/config.json > %s/config.json", fixture("model/tiny_gqa"), dir, fixture("model/tiny_gqa"), dir);
    ck_assert_int_eq(system(cmd), 0);
    LlavaParams p;
    vlm_clear_error();
    ck_assert_int_eq(llava_load_hf(&p, dir), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "0 missing tensors; 6 of the wrong shape (language_model.model.layers.0.mlp.gate_proj.weight is [45, 32], expected [46, 32]") != NULL,
                  "%s", vlm_last_error());
    remove_dir(dir);
}
END_TEST

// The same weights in the original LLaVA layout (plus a CLIP directory) load to the same parameters,
// hence the same logits.
START_TEST(llava_loads_original_layout) {
    LlavaParams hf, orig;
    ck_assert_int_eq(llava_load_hf(&hf, fixture("model/tiny_gqa")), VLM_OK);
    char clip[512];
    snprintf(clip, sizeof clip, "%s", fixture("model/tiny_gqa_clip"));
    ck_assert_msg(llava_load_original(&orig, fixture("model/tiny_gqa_original"), clip) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(hf.numel, orig.numel);
    ck_assert_int_eq(memcmp(hf.data, orig.data, hf.numel * sizeof(float)), 0);
    ck_assert_int_eq(orig.cfg.feature_layer, -2);
    ck_assert_int_eq(orig.cfg.text.kv_heads, 2);
    ck_assert(!orig.cfg.feature_full);
    llava_params_free(&orig);
    // and as the IFT start: LLaMA directory + CLIP directory + PT's mm_projector.bin (a torch.save file)
    char llm[512], proj[512];
    snprintf(llm, sizeof llm, "%s", fixture("model/tiny_gqa_llm"));
    snprintf(proj, sizeof proj, "%s", fixture("model/tiny_gqa_mm_projector.bin"));
    ck_assert_msg(llava_load_parts(&orig, llm, clip, proj, -2, false) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(memcmp(hf.data, orig.data, hf.numel * sizeof(float)), 0);
    llava_params_free(&orig);
    ck_assert_int_eq(llava_load_parts(&orig, llm, clip, NULL, -2, false), VLM_ERR_INPUT);
    // without the projector: one error naming what is missing
    char dir[] = "/tmp/vlm-orig-XXXXXX", cmd[2048];
    temp_dir(dir);
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/", fixture("model/tiny_gqa_original"), dir);
    ck_assert_int_eq(system(cmd), 0);
    // an LLM-only checkpoint: the hf fixture's language_model tensors would not do (other names), so save ours
    LlavaParams *p = &hf;
    TensorInfo infos[64];
    const void *datas[64];
    int n = 0;
    for (int i = 0; i < p->n_specs && n < 64; i++) {
        const ParamSpec *s = &p->specs[i];
        if (strncmp(s->name, "language_model.", 15) != 0) continue;
        infos[n] = (TensorInfo){.name = (char *)s->name + 15, .dtype = DT_F32, .ndim = s->ndim};
        for (int d = 0; d < s->ndim; d++) infos[n].shape[d] = s->shape[d];
        tensor_info_sizes(&infos[n]);
        datas[n++] = p->data + s->offset;
    }
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    ck_assert_int_eq(safetensors_write(st, infos, datas, n, NULL), VLM_OK);
    vlm_clear_error();
    ck_assert_int_eq(llava_load_original(&orig, dir, clip), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "4 missing tensors (model.mm_projector.0.weight") != NULL, "%s", vlm_last_error());
    llava_params_free(&hf);
    remove_dir(dir);
}
END_TEST

// Saved in the llava-hf layout and loaded again: the same tensors, bit for bit.
START_TEST(llava_save_roundtrip) {
    LlavaParams a, b;
    ck_assert_int_eq(llava_load_hf(&a, fixture("model/tiny_full")), VLM_OK);
    char dir[] = "/tmp/vlm-save-XXXXXX";
    temp_dir(dir);
    ck_assert_msg(llava_save_hf(&a, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_msg(llava_load_hf(&b, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(a.numel, b.numel);
    ck_assert_int_eq(memcmp(a.data, b.data, a.numel * sizeof(float)), 0);
    ck_assert_int_eq(b.cfg.feature_layer, -1);
    ck_assert(b.cfg.feature_full && !b.cfg.text.tie_embeddings);
    ck_assert_float_eq(b.cfg.text.rope.theta, 500000.0f);
    llava_params_free(&a);
    llava_params_free(&b);
    remove_dir(dir);
}
END_TEST

// `vlm forward` on the reference batch's first sample gives transformers' next-token distribution.
START_TEST(cli_forward_top_k) {
    SafetensorsFile ref;
    char path[600];
    snprintf(path, sizeof path, "%s/reference.safetensors", fixture("model/tiny_gqa"));
    ck_assert_int_eq(safetensors_open(&ref, path), VLM_OK);
    const TensorInfo *pi, *li;
    const float *pixels = tensor(&ref, "batch.pixel_values", &pi), *logits = tensor(&ref, "ref.logits", &li);
    const int32_t *ids = tensor(&ref, "batch.input_ids", NULL), *lengths = tensor(&ref, "batch.lengths", NULL);
    TensorInfo info = {.name = "pixel_values", .dtype = DT_F32, .ndim = 3, .shape = {pi->shape[1], pi->shape[2], pi->shape[3]}};
    tensor_info_sizes(&info);
    const char *pix = temp_file("");
    const void *datas[1] = {pixels};
    ck_assert_int_eq(safetensors_write(pix, &info, datas, 1, NULL), VLM_OK);
    char list[512] = "", args[2048], out[4096], err[4096];
    for (int t = 0; t < lengths[0]; t++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", t ? "," : "", ids[t]);
    snprintf(args, sizeof args, "forward --model %s --ids %s --pixels %s --top 1", fixture("model/tiny_gqa"), list, pix);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    // the reference's last real position of sample 0: lengths[0] - 1 text tokens + 16 image rows
    int V = (int)li->shape[1], last = lengths[0] - 1 + 16 - 1, best = 0;
    const float *row = logits + (size_t)last * V;
    double mx = row[0], sum = 0;
    for (int v = 0; v < V; v++) {
        if (row[v] > row[best]) best = v;
        mx = fmax(mx, row[v]);
    }
    for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
    char want[128];
    snprintf(want, sizeof want, "%6d  p=%.4f", best, exp(row[best] - mx) / sum);
    ck_assert_msg(strstr(out, want) != NULL, "want '%s' in:\n%s", want, out);
    ck_assert_msg(strstr(out, "24 tokens (16 image features)") != NULL, "%s", out);
    // the original-layout copy gives the same output
    char out2[4096];
    snprintf(args, sizeof args, "forward --model %s/tests/fixtures/model/tiny_gqa_original --vision-tower "
             "%s/tests/fixtures/model/tiny_gqa_clip --ids %s --pixels %s --top 1", VLM_SOURCE_DIR, VLM_SOURCE_DIR, list, pix);
    ck_assert_msg(run_vlm(args, out2, sizeof out2, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(out2, out);
    // a prompt the model's vocabulary cannot hold
    snprintf(args, sizeof args, "forward --model %s --prompt hello --tokenizer %s/../shared/assets/tokenizers/llama2/tokenizer.model",
             fixture("model/tiny_gqa"), VLM_SOURCE_DIR);
    ck_assert_int_eq(run_vlm(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "outside the model's vocabulary of 101") != NULL, "%s", err);
    safetensors_close(&ref);
}
END_TEST

Suite *model_suite(void) {
    return SUITE("model", "", 120,
                 llava_matches_transformers,
                 llava_load_reports_bad_checkpoints,
                 llava_loads_original_layout,
                 llava_save_roundtrip,
                 cli_forward_top_k);
}
