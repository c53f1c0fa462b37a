// Inference on a LLaVA model, see infer.h.
#include "eval/infer.h"

#include <stdlib.h>  // free
#include <string.h>  // memset, memcpy

#include "core/alloc.h"     // vlm_malloc
#include "core/error.h"     // vlm_fail
#include "model/lora.h"     // lora_adapter_dir
#include "model/open.h"     // llava_open
#include "text/template.h"  // IMAGE_TOKEN_INDEX, IGNORE_INDEX

int infer_open(Infer *s, const char *model_dir, const char *vision_tower, bool pad) {
    memset(s, 0, sizeof *s);
    // a LoRA adapter folder runs unmerged over the base its adapter_config.json names (model/open.h)
    LlavaOpenOptions adapter = {.vision_tower = vision_tower};
    int rc = lora_adapter_dir(model_dir) ? llava_open(&s->params, model_dir, &adapter, NULL)
             : vision_tower             ? llava_load_original(&s->params, model_dir, vision_tower)
                                        : llava_load_hf(&s->params, model_dir);
    if (rc != VLM_OK) return rc;
    s->cfg = s->params.cfg;
    int S = s->cfg.vision.image_size;
    rc = llava_preprocessor(&s->pre, &s->cfg, model_dir, pad);
    if (rc == VLM_OK) {
        s->pixels = vlm_malloc(sizeof(float) * 3 * S * S);
        if (!s->pixels) rc = VLM_ERR_FAIL;
    }
    if (rc != VLM_OK) infer_close(s);
    return rc;
}

void infer_close(Infer *s) {
    if (s->planned) llava_model_free(&s->m);
    llava_params_free(&s->params);
    preprocess_scratch_free(&s->scratch);
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

int infer_check_ids(const Infer *s, const int32_t *ids, size_t n, int *n_images) {
    *n_images = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == IMAGE_TOKEN_INDEX) ++*n_images;
        else if (ids[i] < 0 || ids[i] >= s->cfg.text.vocab)
            return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "token id %d is outside the model's vocabulary of %d", ids[i],
                            s->cfg.text.vocab);
    }
    if (*n_images > 1) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "one image per prompt");
    if (n == 0) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "empty prompt");
    return VLM_OK;
}

int infer_load_image(Infer *s, const char *path) {
    return image_preprocess_file(path, &s->pre, s->pixels, &s->scratch, NULL, NULL);
}

int infer_reserve(Infer *s, int max_text) {
    if (s->planned && max_text <= s->m.max_text) return VLM_OK;
    if (s->planned) {  // take the parameters back and plan again, larger
        s->params = s->m.params;
        memset(&s->m.params, 0, sizeof s->m.params);
        llava_model_free(&s->m);
        s->planned = false;
    }
    int F = llava_image_span(&s->cfg);  // features (and OLA-VLM's task tokens, which its models see at inference too)
    int rc = llava_model_init(&s->m, &s->params, &(LlavaPlan){1, 1, max_text, max_text + F, false, true});
    if (rc != VLM_OK) return rc;
    s->planned = true;
    s->m.all_logits = true;  // no targets: the logits themselves are the output
    free(s->labels);
    s->labels = vlm_malloc(sizeof(int32_t) * max_text);
    if (!s->labels) return VLM_ERR_FAIL;
    for (int t = 0; t < max_text; t++) s->labels[t] = IGNORE_INDEX;
    return VLM_OK;
}

int infer_next_logits(Infer *s, const int32_t *ids, int n, int n_images, const float **logits, int *seq_len) {
    int rc = infer_reserve(s, n);
    if (rc != VLM_OK) return rc;
    double loss;
    int len = n;
    rc = llava_forward(&s->m, ids, s->labels, &len, 1, n, s->pixels, n_images, 0, &loss);
    if (rc != VLM_OK) return rc;
    int T = s->m.seq_len[0];
    *logits = llava_logits(&s->m, 0, T - 1);
    if (seq_len) *seq_len = T;
    return VLM_OK;
}
