// LoRA fine-tuning's model preparation, see lora_train.h.
#include "train/lora_train.h"

#include "core/error.h"
#include "core/log.h"
#include "model/lora.h"

int lora_prepare(const TrainArgs *a, LlavaParams *p) {
    if (!a->lora_enable) return VLM_OK;
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
