// `vlm lora merge BASE ADAPTER OUT`: PEFT's merge_and_unload as a command.
// The base model (any layout vlm opens), the adapter folder (PEFT's files and
// LLaVA's non_lora_trainables.bin) over it, W += alpha / r * B A for every
// adapted linear, and the full model written to OUT (config, weights,
// tokenizer and preprocessor files), loadable by transformers.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "model/lora.h"
#include "model/open.h"
#include "train/train_checkpoint.h"  // train_copy_model_files

static int merge(const char *base, const char *adapter, const char *out) {
    LlavaParams p;
    LlavaOpenOptions o = {.model_base = base};
    int rc = llava_open(&p, adapter, &o, NULL);
    if (rc != VLM_OK) return rc;
    if (p.cfg.lora.r <= 0) rc = vlm_fail(VLM_ERR_INPUT, adapter, NULL, "not a LoRA adapter folder (no adapter_config.json)");
    int r = p.cfg.lora.r;
    float alpha = p.cfg.lora.alpha;
    if (rc == VLM_OK) rc = llava_lora_merge(&p);
    if (rc == VLM_OK) rc = llava_save_hf(&p, out);
    if (rc == VLM_OK) rc = train_copy_model_files(base, out);
    if (rc == VLM_OK) fprintf(stderr, "merged %s (r %d, alpha %g) into %s: %s\n", adapter, r, (double)alpha, base, out);
    llava_params_free(&p);
    return rc;
}

int cmd_lora(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "merge") != 0) return cli_usage_error("lora", "the subcommand is merge");
    if (argc != 5) return cli_usage_error("lora", "need BASE ADAPTER OUT");
    return cli_report(merge(argv[2], argv[3], argv[4]));
}
