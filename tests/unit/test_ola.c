// OLA-VLM's embedding distillation against a PyTorch restatement of upstream
// (tests/fixtures/ola, made by tools/make_ola_fixtures.sh): the loss parts
// within 1e-5 relative, every parameter's gradient of the total loss within
// 1e-4 of its norm (as the model's parity test); the configuration from
// upstream's flags, the teachers' target files, and `vlm train --recipe
// ola-pt` end to end.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "data/teacher_targets.h"
#include "formats/safetensors.h"
#include "model/ola.h"
#include "model/llava.h"
#include "test_util.h"
#include "train/optimizer.h"


static double expected(const json_t *losses, const char *key) {
    const json_t *v = json_object_get(losses, key);
    ck_assert_msg(json_is_number(v), "expected.json: no %s", key);
    return json_number_value(v);
}

#define CLOSE(ours, want, what) \
    ck_assert_msg(fabs((ours) - (want)) <= 1e-5 * fabs(want) + 1e-7, "%s: %.8f, upstream %.8f", what, ours, want)

START_TEST(ola_matches_upstream) {
    LlavaParams params;
    ck_assert_msg(llava_load_hf(&params, fixture("ola/tiny_ola")) == VLM_OK, "%s", vlm_last_error());
    const OlaConfig *o = &params.cfg.ola;  // (params moves into the model below: re-pointed there)
    ck_assert(o->enabled && o->n_order == 3 && o->order[0] == OLA_GEN && o->num_task_tokens == 2);
    ck_assert_int_eq(llava_image_span(&params.cfg), 4 + 6);
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("ola/reference.safetensors")), VLM_OK);
    json_t *exp = fixture_json("ola/expected.json");
    const json_t *losses = json_object_get(exp, "losses");
    const TensorInfo *ids_info;
    const int32_t *ids = ref_tensor(&ref, "batch.input_ids", &ids_info), *labels = ref_tensor(&ref, "batch.labels", NULL);
    const float *pixels = ref_tensor(&ref, "batch.pixel_values", NULL);
    int B = (int)ids_info->shape[0], T = (int)ids_info->shape[1], lengths[3] = {T, T, T};
    const float *targets[OLA_TASKS] = {ref_tensor(&ref, "target.depth", NULL), ref_tensor(&ref, "target.seg", NULL),
                                       ref_tensor(&ref, "target.gen", NULL)};
    bool has[3] = {true, true, true};
    OlaInputs inputs = {{targets[0], targets[1], targets[2]}, has};
    LlavaModel m;
    int S = llava_image_span(&params.cfg);
    ck_assert_int_eq(llava_model_init(&m, &params, &(LlavaPlan){B, B, T, T + B * S, false, false}), VLM_OK);
    o = &m.params.cfg.ola;
    ck_assert(m.ext && strcmp(m.ext->name, OLA_EXTENSION) == 0 && m.ext->span_rows == 6);
    llava_set_aux_inputs(&m, &inputs);
    double loss;
    ck_assert_msg(llava_forward(&m, ids, labels, lengths, B, T, pixels, B, 0, &loss) == VLM_OK, "%s", vlm_last_error());
    CLOSE(loss, expected(losses, "ce"), "cross-entropy");
    ck_assert_int_eq(llava_aux_samples(&m), 3);
    const OlaActs *acts = ola_acts(m.ext);
    for (int t = 0; t < OLA_TASKS; t++) {
        char key[64];
        ck_assert_str_eq(m.ext->part_names[t], ola_task_name((OlaTask)t));
        CLOSE(m.ext->part[t], expected(losses, ola_task_name((OlaTask)t)), ola_task_name((OlaTask)t));
        for (int l = 0; l < o->task[t].n_layers; l++) {
            snprintf(key, sizeof key, "%s.%d.smooth_l1", ola_task_name((OlaTask)t), l);
            CLOSE(acts->part[t][l].smooth_l1, expected(losses, key), key);
            snprintf(key, sizeof key, "%s.%d.infonce", ola_task_name((OlaTask)t), l);
            CLOSE(acts->part[t][l].infonce, expected(losses, key), key);
        }
    }
    CLOSE(loss + llava_aux_loss(&m), expected(losses, "total"), "total");
    // every gradient of the total loss (the LLM's too: the predictors' gradients pass through it)
    llava_backward(&m);
    check_gradients(&m, &ref, "tiny_ola");
    for (int i = 0; i < m.params.n_specs; i++) {  // depth's linear_2 / 3 only draw upstream's depth picture
        const ParamSpec *s = &m.params.specs[i];
        if (strstr(s->name, "_heads.") && (strstr(s->name, ".linear_2.") || strstr(s->name, ".linear_3.")))
            ck_assert(!s->reachable && m.grad[s->offset] == 0);
    }
    // HF Trainer's decay group over the OLA parts (LayerNorms and biases out), name by name
    const json_t *names = json_object_get(exp, "ola_parameters"), *decay = json_object_get(exp, "ola_decay_parameters");
    size_t n_ola = 0;
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        if (s->module != MODULE_OLA) continue;
        n_ola++;
        bool listed = false, decays = false;
        for (size_t k = 0; k < json_array_size(names); k++)
            listed |= strcmp(json_string_value(json_array_get(names, k)), s->name) == 0;
        for (size_t k = 0; k < json_array_size(decay); k++)
            decays |= strcmp(json_string_value(json_array_get(decay, k)), s->name) == 0;
        ck_assert_msg(listed, "%s is not one of upstream's parameters", s->name);
        ck_assert_msg(param_decays(&m.params.cfg, s->name) == decays, "%s: decay %d, Trainer %d", s->name, param_decays(&m.params.cfg, s->name), decays);
    }
    ck_assert_uint_eq(n_ola, json_array_size(names));
    // without targets (inference): no embedding loss, the same cross-entropy
    llava_set_aux_inputs(&m, NULL);
    double plain;
    ck_assert_int_eq(llava_forward(&m, ids, labels, lengths, B, T, pixels, B, 0, &plain), VLM_OK);
    ck_assert(plain == loss && llava_aux_loss(&m) == 0 && llava_aux_samples(&m) == 0);
    json_decref(exp);
    safetensors_close(&ref);
    llava_model_free(&m);
}
END_TEST

// The per-image files as vlm.c reads them: depth as is, seg's (C, side, side)
// map transposed to the predictor's rows, fp16 upcast, and errors naming the file.
START_TEST(teacher_targets_files) {
    LlavaConfig cfg;
    ck_assert_int_eq(llava_config_load(&cfg, fixture("ola/tiny_ola/config.json")), VLM_OK);
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("ola/reference.safetensors")), VLM_OK);
    float buf[OLA_TASKS][64];
    float *out[OLA_TASKS] = {buf[0], buf[1], buf[2]};
    char dir[512];
    snprintf(dir, sizeof dir, "%s", fixture("ola/targets"));
    for (int b = 0; b < 3; b++) {
        char image[32];
        snprintf(image, sizeof image, "img%d.png", b);
        ck_assert_msg(teacher_targets_read(dir, image, &cfg.ola, out) == VLM_OK, "%s", vlm_last_error());
        for (int t = 0; t < OLA_TASKS; t++) {
            char key[32];
            snprintf(key, sizeof key, "target.%s", ola_task_name((OlaTask)t));
            int P = ola_pred_size(&cfg.ola, (OlaTask)t);
            const float *want = (const float *)ref_tensor(&ref, key, NULL) + (size_t)b * P;
            for (int i = 0; i < P; i++)  // image 1's seg is float16
                ck_assert_msg(fabsf(out[t][i] - want[i]) <= (b == 1 && t == OLA_SEG ? 2e-3f * fabsf(want[i]) + 1e-6f : 0.0f),
                              "%s of %s [%d]: %g vs %g", key, image, i, out[t][i], want[i]);
        }
    }
    ck_assert_int_eq(teacher_targets_read(dir, "missing.jpg", &cfg.ola, out), VLM_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(vlm_last_error(), "missing.jpg.safetensors"));
    cfg.ola.task[OLA_DEPTH].output_dim = 7;  // a model whose depth predictor is wider than the files
    ck_assert_int_eq(teacher_targets_read(dir, "img0.png", &cfg.ola, out), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "img0.png.safetensors") && strstr(vlm_last_error(), "[4, 6]"), "%s",
                  vlm_last_error());
    safetensors_close(&ref);
}
END_TEST

// ola_vlm_train.py's flags: "d8-20_s10-18_g12-20", "d0.5_s0.5_g0.5", mode order; errors name the flag.
START_TEST(ola_config_from_upstream_flags) {
    OlaConfig o;
    ck_assert_int_eq(ola_config_from_flags(&o, "gen-depth-seg", "d8-20_s10-18_g12-20", "d0.5_s0.25_g0.75", 8, 0.3, 32, NULL),
                     VLM_OK);
    ck_assert(o.enabled && o.n_order == 3 && o.order[0] == OLA_GEN && o.order[1] == OLA_DEPTH && o.order[2] == OLA_SEG);
    ck_assert(o.task[OLA_DEPTH].n_layers == 2 && o.task[OLA_DEPTH].layers[0] == 8 && o.task[OLA_DEPTH].layers[1] == 20);
    ck_assert(o.task[OLA_SEG].layers[1] == 18 && o.task[OLA_GEN].layers[0] == 12);
    ck_assert(o.task[OLA_SEG].loss_weight == 0.25f && o.task[OLA_GEN].loss_weight == 0.75f);
    // upstream's head sizes (ModelArguments)
    ck_assert(o.task[OLA_DEPTH].num_tokens == 576 && o.task[OLA_DEPTH].output_dim == 1024);
    ck_assert(o.task[OLA_SEG].output_dim == 1536 && o.task[OLA_GEN].num_tokens == 1 && o.task[OLA_GEN].dim_head == 32);
    ck_assert(o.use_intermediate_depth && o.contrastive_loss_weight == 0.3f);
    ck_assert_int_eq(ola_task_rows(&o), 24);
    ck_assert_int_eq(ola_head_dim(&o, OLA_DEPTH, 4096), 4096);
    ck_assert_int_eq(ola_head_dim(&o, OLA_SEG, 4096), 1536);
    // one task alone
    ck_assert_int_eq(ola_config_from_flags(&o, "depth", "d3", "", 8, 0.3, 4, NULL), VLM_OK);
    ck_assert(o.n_order == 1 && !ola_has_task(&o, OLA_GEN));
    // the heads' sizes from their flags, checked with them (10 queries pool to 5 task tokens; the
    // default 576 would not)
    const int heads[OLA_TASKS][OLA_HEAD_FLAGS] = {{1, 4, 2, 10, 6, 1}, {1, 4, 2, 10, 5, 1}, {1, 4, 2, 1, 7, 1}};
    ck_assert_msg(ola_config_from_flags(&o, "gen-depth-seg", "d1_s1_g1", "", 5, 0.3, 2, heads) == VLM_OK, "%s",
                  vlm_last_error());
    ck_assert(o.task[OLA_DEPTH].num_tokens == 10 && o.task[OLA_SEG].output_dim == 5 && o.task[OLA_GEN].dim_head == 4);
    static const struct { const char *mode, *layers, *weights, *flag; int L; } bad[] = {
        {"gen-dept", "g1", "", "--mode", 4},
        {"gen-gen", "g1", "", "--mode", 4},
        {"gen", "g1-9", "", "the language model has 4", 4},
        {"gen", "x1", "", "--layer_indices", 4},
        {"gen", "g1", "g-1", "--loss_weights", 4},
        {"gen-depth", "g1", "", "depth task has no layers", 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(ola_config_from_flags(&o, bad[i].mode, bad[i].layers, bad[i].weights, 8, 0.3, bad[i].L, NULL),
                         VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), bad[i].flag), "case %zu: %s", i, vlm_last_error());
    }
}
END_TEST

// A model with OLA-VLM's parts saves and loads back (upstream's config keys and
// tensor names); relayout drops and re-adds them keeping everything else.
START_TEST(ola_save_load_relayout) {
    LlavaParams p, back;
    ck_assert_int_eq(llava_load_hf(&p, fixture("ola/tiny_ola")), VLM_OK);
    char dir[] = "/tmp/vlm-ola-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_msg(llava_save_hf(&p, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert_msg(llava_load_hf(&back, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert(back.cfg.ola.enabled && back.numel == p.numel && back.cfg.ola.task[OLA_SEG].loss_weight == 0.4f);
    ck_assert_int_eq(memcmp(back.data, p.data, sizeof(float) * p.numel), 0);
    LlavaConfig plain = p.cfg;
    plain.ola.enabled = false;
    bool all;
    ck_assert_int_eq(llava_params_relayout(&back, &plain, &all), VLM_OK);
    ck_assert(all && back.module_numel[MODULE_OLA] == 0 && back.module_numel[MODULE_LLM] == p.module_numel[MODULE_LLM]);
    ck_assert_int_eq(llava_params_relayout(&back, &p.cfg, &all), VLM_OK);
    ck_assert(!all && back.numel == p.numel);  // the OLA parts are new (zero) again
    llava_params_free(&back);
    llava_params_free(&p);
    remove_tree(dir);
}
END_TEST

Suite *ola_suite(void) {
    return SUITE("ola", "parser", 60, ola_matches_upstream, teacher_targets_files, ola_config_from_upstream_flags,
                 ola_save_load_relayout);
}
