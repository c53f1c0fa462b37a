// LLaVA-1.5's two scripts end to end with only the launcher swapped (the
// README's example): pretrain.sh's flags on a LLaMA folder + a CLIP folder
// leave OUT/mm_projector.bin (torch.save, bf16 under --bf16 True) in the
// output folder and in each checkpoint; finetune.sh's flags start from it via
// --pretrain_mm_mlp_adapter; a wrong adapter file is named in the error.
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "formats/checkpoint.h"
#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "model/weights.h"
#include "test_util.h"

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define OUT_SIZE (1 << 16)
static char out[OUT_SIZE], err[OUT_SIZE];

// The tensors of src whose names start with prefix, written to dst without it.
static void split(const SafetensorsFile *src, const char *prefix, const char *dst) {
    TensorInfo infos[128];
    const void *datas[128];
    int n = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < src->count; i++) {
        if (strncmp(src->tensors[i].name, prefix, len) != 0) continue;
        ck_assert_int_lt(n, 128);
        infos[n] = src->tensors[i];
        infos[n].name = src->tensors[i].name + len;
        datas[n++] = src->data + src->begin[i];
    }
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(safetensors_write(dst, infos, datas, n, NULL), VLM_OK);
}

// DIR/vicuna (a LLaMA folder with the LLaMA-2 tokenizer) and DIR/clip (a CLIP
// vision folder), both cut from a freshly initialised tiny LLaVA, and the data.
static void make_inputs(const char *dir) {
    char path[700];
    init_model(dir, "base", "{\"model_type\": \"llava\", \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 32, "
               "\"intermediate_size\": 48, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 2, "
               "\"vocab_size\": 32000}, \"vision_config\": {\"model_type\": \"clip_vision_model\", \"hidden_size\": 16, "
               "\"intermediate_size\": 40, \"image_size\": 32, \"patch_size\": 8, \"num_attention_heads\": 4, "
               "\"num_hidden_layers\": 3}}\n",
               5);
    SafetensorsFile f;
    snprintf(path, sizeof path, "%s/base/model.safetensors", dir);
    ck_assert_int_eq(safetensors_open(&f, path), VLM_OK);
    snprintf(path, sizeof path, "%s/vicuna", dir);
    ck_assert_int_eq(make_dirs(path), VLM_OK);
    snprintf(path, sizeof path, "%s/vicuna/model.safetensors", dir);
    split(&f, "language_model.", path);
    snprintf(path, sizeof path, "%s/vicuna/config.json", dir);
    write_text_file(path, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 32, "
                     "\"intermediate_size\": 48, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 2, "
                     "\"vocab_size\": 32000, \"model_max_length\": 1000000000000000019884624838656}\n");
    snprintf(path, sizeof path, "%s/vicuna/tokenizer.model", dir);
    ck_assert_int_eq(file_copy_atomic(LLAMA2, path), VLM_OK);
    snprintf(path, sizeof path, "%s/clip", dir);
    ck_assert_int_eq(make_dirs(path), VLM_OK);
    snprintf(path, sizeof path, "%s/clip/model.safetensors", dir);
    split(&f, "vision_tower.", path);
    safetensors_close(&f);
    snprintf(path, sizeof path, "%s/clip/config.json", dir);
    write_text_file(path, "{\"architectures\": [\"CLIPVisionModel\"], \"model_type\": \"clip_vision_model\", \"hidden_size\": 16, "
                     "\"intermediate_size\": 40, \"image_size\": 32, \"patch_size\": 8, \"num_attention_heads\": 4, "
                     "\"num_hidden_layers\": 3}\n");
    static const char *const photos[] = {"211.jpg", "extreme_ironing.jpg", "llava_logo.png", "sausage.jpg", "waterview.jpg"};
    char *pt = malloc(1 << 15), *ift = malloc(1 << 15);
    size_t a = (size_t)sprintf(pt, "["), b = (size_t)sprintf(ift, "[");
    for (int i = 0; i < 12; i++) {
        const char *photo = photos[i % 5], *sep = i ? "," : "";
        // blip_laion_cc_sbu_558k.json's shape, then llava_v1_5_mix665k.json's (with a text-only record)
        a += (size_t)sprintf(pt + a, "%s{\"id\": \"%06d\", \"image\": \"%s\", \"conversations\": [{\"from\": \"human\", "
                                     "\"value\": \"<image>\\nRender a clear and concise summary of the photo.\"}, "
                                     "{\"from\": \"gpt\", \"value\": \"the file %s\"}]}", sep, i, photo, photo);
        if (i % 4 == 3)
            b += (size_t)sprintf(ift + b, "%s{\"id\": \"t%d\", \"conversations\": [{\"from\": \"human\", \"value\": \"Count to %d.\"}, "
                                          "{\"from\": \"gpt\", \"value\": \"%d\"}]}", sep, i, i % 10, i % 10);
        else
            b += (size_t)sprintf(ift + b, "%s{\"id\": \"i%d\", \"image\": \"%s\", \"conversations\": [{\"from\": \"human\", "
                                          "\"value\": \"<image>\\nWhat is this?\"}, {\"from\": \"gpt\", \"value\": \"Photo %s.\"}, "
                                          "{\"from\": \"human\", \"value\": \"Sure?\"}, {\"from\": \"gpt\", \"value\": \"Yes.\"}]}",
                                 sep, i, photo, photo);
    }
    sprintf(pt + a, "]\n"), sprintf(ift + b, "]\n");
    snprintf(path, sizeof path, "%s/blip_laion_cc_sbu_558k.json", dir);
    write_text_file(path, pt);
    snprintf(path, sizeof path, "%s/llava_v1_5_mix665k.json", dir);
    write_text_file(path, ift);
    free(pt), free(ift);
}

// scripts/v1_5/pretrain.sh's flags, every one, on tiny sizes
#define PRETRAIN_SH                                                                                                    \
    "train --deepspeed ./scripts/zero2.json --model_name_or_path %s/vicuna --version plain "                        \
    "--data_path %s/blip_laion_cc_sbu_558k.json --image_folder %s --vision_tower %s/clip --mm_projector_type mlp2x_gelu " \
    "--tune_mm_mlp_adapter True --mm_vision_select_layer -2 --mm_use_im_start_end False --mm_use_im_patch_token False " \
    "--bf16 True --output_dir %s/checkpoints/llava-v1.5-13b-pretrain --num_train_epochs 1 --per_device_train_batch_size 4 " \
    "--per_device_eval_batch_size 4 --gradient_accumulation_steps 1 --evaluation_strategy \"no\" --save_strategy \"steps\" " \
    "--save_steps 2 --save_total_limit 1 --learning_rate 1e-3 --weight_decay 0. --warmup_ratio 0.03 "              \
    "--lr_scheduler_type \"cosine\" --logging_steps 1 --tf32 True --model_max_length 2048 --gradient_checkpointing True " \
    "--dataloader_num_workers 4 --lazy_preprocess True --report_to wandb"

// scripts/v1_5/finetune.sh's flags, every one; learning rate 0, so the model
// it saves holds the projector it started from
#define FINETUNE_SH                                                                                                    \
    "train --deepspeed ./scripts/zero3.json --model_name_or_path %s/vicuna --version v1 "                           \
    "--data_path %s/llava_v1_5_mix665k.json --image_folder %s --vision_tower %s/clip "                                \
    "--pretrain_mm_mlp_adapter %s --mm_projector_type mlp2x_gelu --mm_vision_select_layer -2 "                        \
    "--mm_use_im_start_end False --mm_use_im_patch_token False --image_aspect_ratio pad --group_by_modality_length True " \
    "--bf16 True --output_dir %s --num_train_epochs 1 --per_device_train_batch_size 4 "                             \
    "--per_device_eval_batch_size 4 --gradient_accumulation_steps 1 --evaluation_strategy \"no\" --save_strategy \"steps\" " \
    "--save_steps 50000 --save_total_limit 1 --learning_rate 0 --weight_decay 0. --warmup_ratio 0.03 "              \
    "--lr_scheduler_type \"cosine\" --logging_steps 1 --tf32 True --model_max_length 2048 --gradient_checkpointing True " \
    "--dataloader_num_workers 4 --lazy_preprocess True --report_to wandb"

// scripts/v1_5/finetune_lora.sh's flags, every one (its LoRA flags first, as upstream writes them)
#define FINETUNE_LORA_SH                                                                                               \
    "train --lora_enable True --lora_r 128 --lora_alpha 256 --mm_projector_lr 2e-5 --deepspeed ./scripts/zero3.json " \
    "--model_name_or_path %s/vicuna --version v1 --data_path %s/llava_v1_5_mix665k.json --image_folder %s "            \
    "--vision_tower %s/clip --pretrain_mm_mlp_adapter %s --mm_projector_type mlp2x_gelu --mm_vision_select_layer -2 "   \
    "--mm_use_im_start_end False --mm_use_im_patch_token False --image_aspect_ratio pad --group_by_modality_length True " \
    "--bf16 True --output_dir %s --num_train_epochs 1 --per_device_train_batch_size 16 --per_device_eval_batch_size 4 " \
    "--gradient_accumulation_steps 1 --evaluation_strategy \"no\" --save_strategy \"steps\" --save_steps 50000 "        \
    "--save_total_limit 1 --learning_rate 2e-4 --weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type \"cosine\" "   \
    "--logging_steps 1 --tf32 True --model_max_length 2048 --gradient_checkpointing True --dataloader_num_workers 4 "   \
    "--lazy_preprocess True --report_to wandb"

// mm_projector.bin holds the four model.mm_projector.* tensors in bf16, equal
// to the bf16 rounding of the projector in model (a llava-hf folder).
static void check_projector_file(const char *bin, const char *model) {
    static const char *const orig[] = {"model.mm_projector.0.weight", "model.mm_projector.0.bias",
                                       "model.mm_projector.2.weight", "model.mm_projector.2.bias"};
    static const char *const hf[] = {"multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.bias",
                                     "multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"};
    Checkpoint a, b;
    ck_assert_msg(checkpoint_open(&a, bin) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(a.kind, CKPT_TORCH_BIN);
    ck_assert_int_eq(a.count, 4);
    ck_assert_int_eq(checkpoint_open(&b, model), VLM_OK);
    for (int t = 0; t < 4; t++) {
        int i = checkpoint_find(&a, orig[t]), j = checkpoint_find(&b, hf[t]);
        ck_assert_msg(i >= 0 && j >= 0, "%s", orig[t]);
        ck_assert_int_eq(a.tensors[i].info->dtype, DT_BF16);
        size_t n = a.tensors[i].info->numel;
        ck_assert_int_eq((int)n, (int)b.tensors[j].info->numel);
        float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        ck_assert_int_eq(checkpoint_read_f32(&a, i, x), VLM_OK);
        ck_assert_int_eq(checkpoint_read_f32(&b, j, y), VLM_OK);
        for (size_t k = 0; k < n; k++) ck_assert_msg(x[k] == bf16_to_f32(f32_to_bf16(y[k])), "%s[%zu]", orig[t], k);
        free(x), free(y);
    }
    checkpoint_close(&a), checkpoint_close(&b);
}

START_TEST(pretrain_then_finetune_with_upstream_flags) {
    char dir[] = "/tmp/vlm-recipe-XXXXXX", args[8192], path[800], path2[700];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_inputs(dir);
    snprintf(args, sizeof args, PRETRAIN_SH, dir, dir, PHOTOS, dir, dir);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    // the adapter at the end and in the checkpoint kept (12 records / 4 = 3 steps; the last, checkpoint-3)
    snprintf(path, sizeof path, "%s/checkpoints/llava-v1.5-13b-pretrain/mm_projector.bin", dir);
    snprintf(path2, sizeof path2, "%s/checkpoints/llava-v1.5-13b-pretrain", dir);
    check_projector_file(path, path2);
    snprintf(path, sizeof path, "%s/checkpoints/llava-v1.5-13b-pretrain/checkpoint-3/mm_projector.bin", dir);
    snprintf(path2, sizeof path2, "%s/checkpoints/llava-v1.5-13b-pretrain/checkpoint-3", dir);
    check_projector_file(path, path2);
    // finetune.sh from it: the model starts from the saved adapter exactly
    snprintf(path, sizeof path, "%s/checkpoints/llava-v1.5-13b-pretrain/mm_projector.bin", dir);
    snprintf(path2, sizeof path2, "%s/checkpoints/llava-v1.5-13b", dir);
    snprintf(args, sizeof args, FINETUNE_SH, dir, dir, PHOTOS, dir, path, path2);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    check_projector_file(path, path2);
    // finetune_lora.sh from the same start: LLaVA's own files, names and config (its load_pretrained_model's input)
    snprintf(path2, sizeof path2, "%s/checkpoints/llava-v1.5-13b-lora", dir);
    snprintf(args, sizeof args, FINETUNE_LORA_SH, dir, dir, PHOTOS, dir, path, path2);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(err, "its LoRA adapters yes"), "%.3000s", err);
    Checkpoint a;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", path2);
    ck_assert_int_eq(checkpoint_open(&a, path), VLM_OK);
    ck_assert_msg(checkpoint_find(&a, "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight") >= 0, "LLaVA's names");
    checkpoint_close(&a);
    snprintf(path, sizeof path, "%s/non_lora_trainables.bin", path2);
    ck_assert_int_eq(checkpoint_open(&a, path), VLM_OK);
    ck_assert_int_eq(a.count, 4);
    ck_assert(checkpoint_find(&a, "base_model.model.model.mm_projector.2.weight") >= 0);
    checkpoint_close(&a);
    snprintf(path, sizeof path, "%s/config.json", path2);
    json_t *cfg = vlm_json_load_file(path, 0, NULL);  // the LLM's model_max_length 1e30 kept as written
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "model_type")), "llava_llama");
    ck_assert_str_eq(json_string_value(json_object_get(cfg, "mm_projector_type")), "mlp2x_gelu");
    json_decref(cfg);
    snprintf(args, sizeof args, "forward --model %s --ids 1,450,4996,338 --top 3", path2);  // the adapters over their base
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    // a wrong adapter file is named: a file that is not one, and one of another model's sizes
    // (fresh output folders: one with checkpoints resumes from them, as upstream's train.py)
    snprintf(path, sizeof path, "%s/llava_v1_5_mix665k.json", dir);
    snprintf(path2, sizeof path2, "%s/wrong1", dir);
    snprintf(args, sizeof args, FINETUNE_SH, dir, dir, PHOTOS, dir, path, path2);
    ck_assert_int_ne(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 0);
    ck_assert_msg(strstr(err, path), "%.2000s", err);
    snprintf(path2, sizeof path2, "%s/wrong2", dir);
    snprintf(args, sizeof args, FINETUNE_SH, dir, dir, PHOTOS, dir, fixture("model/tiny_gqa_mm_projector.bin"), path2);
    ck_assert_int_eq(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE), 2);
    const char *e = strstr(err, "vlm: error");
    ck_assert_msg(e && strstr(e, "tiny_gqa_mm_projector.bin: 0 missing tensors; 1 of the wrong shape (model.mm_projector.0.weight is [32, 24], expected [32, 16])"), "%.2000s", e ? e : err);
    remove_tree(dir);
}
END_TEST

Suite *llava_recipe_suite(void) {
    return SUITE("llava_recipe", "", 300, pretrain_then_finetune_with_upstream_flags);
}
