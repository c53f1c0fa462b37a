// The Phi-3 decoder (Phi3ForCausalLM: fused qkv_proj / gate_up_proj, its sliding window) against
// transformers 4.41.2 itself (tools/make_phi3_fixtures.sh: tests/fixtures/phi3), opened as an
// LLM folder beside a CLIP folder (LLaVA-style's start, OLA-VLM's Phi-3 models).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors.h"
#include "model/llava.h"
#include "model/open.h"
#include "test_util.h"

static void open_phi3(LlavaParams *p) {
    char llm[600];
    snprintf(llm, sizeof llm, "%s", fixture("phi3/tiny_phi3"));
    LlavaOpenOptions o = {.vision_tower = fixture("model/tiny_gqa_clip"), .feature_layer = -2, .seed = 1};
    char clip[600];
    snprintf(clip, sizeof clip, "%s", o.vision_tower);
    o.vision_tower = clip;
    ck_assert_msg(llava_open(p, llm, &o, NULL) == VLM_OK, "%s", vlm_last_error());
    ck_assert(p->cfg.text.fused_names);
    ck_assert_int_eq(p->cfg.text.sliding_window, 5);
}

// logits at every real position against the reference's rows; returns the loss
static double forward_logits(LlavaModel *m, const SafetensorsFile *ref, const char *key, const char *what) {
    const TensorInfo *ids_info, *li;
    const int32_t *ids = ref_tensor(ref, "batch.input_ids", &ids_info), *labels = ref_tensor(ref, "batch.labels", NULL);
    const int32_t *mask = ref_tensor(ref, "batch.attention_mask", NULL);
    const float *want = ref_tensor(ref, key, &li);
    int B = (int)ids_info->shape[0], T = (int)ids_info->shape[1], lengths[4], V = m->params.cfg.text.vocab;
    for (int b = 0; b < B; b++) {
        lengths[b] = 0;
        for (int t = 0; t < T; t++) lengths[b] += mask[b * T + t];
    }
    double loss, diff = 0, norm = 0;
    m->all_logits = true;
    ck_assert_msg(llava_forward(m, ids, labels, lengths, B, T, NULL, 0, 0, &loss) == VLM_OK, "%s", vlm_last_error());
    size_t row = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lengths[b]; t++, row++)
            for (int v = 0; v < V; v++) {
                double d = (double)llava_logits(m, b, t)[v] - want[row * V + v];
                diff += d * d, norm += (double)want[row * V + v] * want[row * V + v];
            }
    ck_assert_uint_eq(row, (size_t)li->shape[0]);
    ck_assert_msg(sqrt(diff) <= 1e-5 * sqrt(norm), "%s: logits differ by %g of their norm", what, sqrt(diff / norm));
    m->all_logits = false;
    ck_assert_int_eq(llava_forward(m, ids, labels, lengths, B, T, NULL, 0, 0, &loss), VLM_OK);
    return loss;
}

START_TEST(phi3_matches_transformers) {
    SafetensorsFile ref;
    ck_assert_int_eq(safetensors_open(&ref, fixture("phi3/reference.safetensors")), VLM_OK);
    LlavaParams p;
    open_phi3(&p);
    LlavaModel m;
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){1, 2, 12, 12, false, false}), VLM_OK);
    double loss = forward_logits(&m, &ref, "ref.logits", "phi3");
    float want = *(const float *)ref_tensor(&ref, "ref.loss", NULL);
    ck_assert_msg(fabs(loss - want) <= 1e-5 * want, "loss %.8f, transformers %.8f", loss, (double)want);
    // every parameter of the decoder: its gradient under Phi-3's name
    llava_zero_grad(&m);
    llava_backward(&m);
    int n = 0;
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        if (s->module != MODULE_LLM) continue;
        char name[200], key[220];
        llava_original_name(&m.params.cfg, s->name, name, sizeof name);
        snprintf(key, sizeof key, "grad.%s", name);
        const float *g = ref_tensor(&ref, key, NULL), *ours = m.grad + s->offset;
        double diff = 0, norm = 0;
        for (size_t k = 0; k < s->numel; k++) diff += ((double)ours[k] - g[k]) * ((double)ours[k] - g[k]), norm += (double)g[k] * g[k];
        ck_assert_msg(sqrt(diff) <= 1e-4 * sqrt(norm) + 1e-6, "gradient of %s differs by %g of its norm", name, sqrt(diff / norm));
        n++;
    }
    ck_assert_int_eq(n, 15);
    // the window matters: without it, transformers' other logits
    llava_model_free(&m);
    open_phi3(&p);
    p.cfg.text.sliding_window = 0;
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){1, 2, 12, 12, false, false}), VLM_OK);
    forward_logits(&m, &ref, "ref.logits_no_window", "phi3 without its window");
    // saved (llava-hf, text_config phi3 with its window) and loaded back: the same logits
    char dir[] = "/tmp/vlm-phi3-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    m.params.cfg.text.sliding_window = 5;
    ck_assert_int_eq(llava_save_hf(&m.params, dir), VLM_OK);
    llava_model_free(&m);
    ck_assert_msg(llava_load_hf(&p, dir) == VLM_OK, "%s", vlm_last_error());
    ck_assert(p.cfg.text.fused_names && p.cfg.text.sliding_window == 5);
    ck_assert_int_eq(llava_model_init(&m, &p, &(LlavaPlan){1, 2, 12, 12, false, false}), VLM_OK);
    forward_logits(&m, &ref, "ref.logits", "phi3 saved and loaded");
    llava_model_free(&m);
    remove_tree(dir);
    safetensors_close(&ref);
}
END_TEST

Suite *phi3_suite(void) { return SUITE("phi3", "", 60, phi3_matches_transformers); }
