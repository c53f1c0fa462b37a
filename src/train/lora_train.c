// LoRA fine-tuning's model preparation, see lora_train.h.
#include "train/lora_train.h"

#include <stdlib.h>

#include <jansson.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "model/lora.h"

int lora_prepare(const TrainArgs *a, LlavaParams *p) {
    if (!a->lora_enable) return VLM_OK;
    if (p->cfg.text.fused_names)
        return vlm_fail(VLM_ERR_INPUT, NULL, "--lora_enable",
                        "LoRA on Phi-3's fused qkv_proj / gate_up_proj (one adapter per fused module, as PEFT targets "
                        "them) is not supported yet");
    LlavaConfig cfg = p->cfg;
    cfg.lora = (LoraConfig){.r = a->lora_r, .alpha = (float)a->lora_alpha, .dropout = (float)a->lora_dropout,
                            .seed = (uint64_t)a->seed};
    int rc = llava_params_relayout(p, &cfg, NULL);
    if (rc != VLM_OK) return vlm_fail_context(rc, "--lora_enable");
    lora_init(p, (uint64_t)a->seed);
    log_msg(LOG_INFO, "LoRA: r %d, alpha %d (scale %g), dropout %g on every linear of the language model", a->lora_r,
            a->lora_alpha, (double)a->lora_alpha / a->lora_r, a->lora_dropout);
    return VLM_OK;
}

int lora_write_base_config(const TrainArgs *a, const char *base_dir, ModelLayout layout, int vision_hidden,
                           const char *out_dir) {
    char *src = path_join(base_dir, "config.json"), *dst = path_join(out_dir, "config.json");
    json_error_t err;
    json_t *j = src ? vlm_json_load_file(src, 0, &err) : NULL;
    int rc = json_is_object(j) ? VLM_OK : vlm_fail(VLM_ERR_INPUT, src, NULL, "unreadable (line %d: %s)", err.line, err.text);
    if (rc == VLM_OK && layout == LAYOUT_PARTS) {  // LLaVA's LlavaConfig: the LLM's keys + the multimodal ones
        json_object_set_new(j, "architectures", json_pack("[s]", "LlavaLlamaForCausalLM"));
        json_object_set_new(j, "model_type", json_string("llava_llama"));
        json_object_set_new(j, "mm_vision_tower", json_string(a->vision_tower));
        json_object_set_new(j, "mm_projector_type", json_string(a->mm_projector_type));
        json_object_set_new(j, "mm_hidden_size", json_integer(vision_hidden));  // LLaVA's builder reads it
        json_object_set_new(j, "mm_vision_select_layer", json_integer(a->mm_vision_select_layer));
        json_object_set_new(j, "mm_vision_select_feature", json_string(a->mm_vision_select_feature));
        json_object_set_new(j, "mm_use_im_start_end", json_false());
        json_object_set_new(j, "mm_use_im_patch_token", json_false());
        json_object_set_new(j, "mm_patch_merge_type", json_string("flat"));
        json_object_set_new(j, "image_aspect_ratio", json_string(a->image_aspect_ratio));
        json_object_set_new(j, "tokenizer_model_max_length", json_integer(a->model_max_length));
        json_object_set_new(j, "tokenizer_padding_side", json_string("right"));
        json_object_set_new(j, "tune_mm_mlp_adapter", json_boolean(a->tune_mm_mlp_adapter));
        json_object_set_new(j, "freeze_mm_mlp_adapter", json_boolean(a->freeze_mm_mlp_adapter));
        json_object_set_new(j, "use_mm_proj", json_true());
        if (a->mm_projector_lr >= 0) json_object_set_new(j, "mm_projector_lr", json_real(a->mm_projector_lr));
        else json_object_set_new(j, "mm_projector_lr", json_null());
    }
    char *text = rc == VLM_OK ? vlm_json_dumps(j, JSON_INDENT(2)) : NULL;  // the base's big integers as written
    if (rc == VLM_OK) rc = text ? atomic_write_text(dst, text) : VLM_ERR_FAIL;
    free(text), free(src), free(dst);
    json_decref(j);
    return rc;
}
