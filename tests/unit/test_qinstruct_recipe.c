// Q-Instruct's mix_q_instruct.sh end to end on a tiny mPLUG-Owl2 with only the
// launcher swapped: every flag of the script (sizes scaled down), records
// with <image> (no sed step) and <|image|>, text-only records mixed in; the
// script's DeepSpeed config has no gradient_clipping, so nothing is clipped,
// as upstream; the output is an mPLUG-Owl2 folder in upstream's layout; a run
// interrupted after a checkpoint resumes to the same bytes as one that was not.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>  // chdir, getcwd

#include "core/error.h"
#include "formats/checkpoint.h"
#include "core/file.h"
#include "model/open.h"
#include "test_util.h"

#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"
#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define OUT_SIZE (1 << 16)
static char out[OUT_SIZE], err[OUT_SIZE];

// DIR/mplug-owl2 (a fresh tiny mPLUG-Owl2 with the LLaMA-2 tokenizer), the
// data (Q-Instruct's shape, and llava_v1_5_mix665k's text-only records) and
// DIR/scripts/zero3.json with the keys of upstream's (no gradient_clipping).
static void make_inputs(const char *dir) {
    char path[700];
    init_model(dir, "mplug-owl2",
               "{\"model_type\": \"mplug_owl2\", \"hidden_size\": 32, \"intermediate_size\": 45, \"num_attention_heads\": 4, "
               "\"num_hidden_layers\": 2, \"vocab_size\": 32000, \"visual_config\": {\"visual_model\": {\"hidden_size\": 16, "
               "\"intermediate_size\": 29, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"image_size\": 28, "
               "\"patch_size\": 14}, \"visual_abstractor\": {\"hidden_size\": 16, \"encoder_hidden_size\": 16, "
               "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 23, \"num_learnable_queries\": 3, "
               "\"grid_size\": 2}}}\n",
               3);
    snprintf(path, sizeof path, "%s/mplug-owl2/tokenizer.model", dir);
    ck_assert_int_eq(file_copy_atomic(LLAMA2, path), VLM_OK);
    snprintf(path, sizeof path, "%s/scripts", dir);
    ck_assert_int_eq(make_dirs(path), VLM_OK);
    snprintf(path, sizeof path, "%s/scripts/zero3.json", dir);
    write_text_file(path, "{\"fp16\": {\"enabled\": \"auto\", \"loss_scale\": 0}, \"bf16\": {\"enabled\": \"auto\"}, "
                          "\"train_micro_batch_size_per_gpu\": \"auto\", \"train_batch_size\": \"auto\", "
                          "\"gradient_accumulation_steps\": \"auto\", \"zero_optimization\": {\"stage\": 3, "
                          "\"overlap_comm\": true, \"stage3_gather_16bit_weights_on_model_save\": true}}\n");
    static const char *const photos[] = {"211.jpg", "extreme_ironing.jpg", "llava_logo.png", "sausage.jpg", "waterview.jpg"};
    char *data = malloc(1 << 15);
    size_t n = (size_t)sprintf(data, "[");
    for (int i = 0; i < 16; i++) {
        const char *sep = i ? "," : "";
        if (i % 4 == 3)  // llava_v1_5_mix665k's text-only records
            n += (size_t)sprintf(data + n, "%s{\"id\": \"t%d\", \"conversations\": [{\"from\": \"human\", \"value\": "
                                           "\"Count to %d.\"}, {\"from\": \"gpt\", \"value\": \"%d\"}]}", sep, i, i % 10, i % 10);
        else
            n += (size_t)sprintf(data + n, "%s{\"id\": \"q%d\", \"image\": \"%s\", \"conversations\": [{\"from\": \"human\", "
                                           "\"value\": \"%s\\nHow is the quality of this image?\"}, {\"from\": \"gpt\", "
                                           "\"value\": \"The quality is %s.\"}]}",
                                 sep, i, photos[i % 5], i % 2 ? "<|image|>" : "<image>", i % 3 ? "good" : "poor");
    }
    sprintf(data + n, "]\n");
    snprintf(path, sizeof path, "%s/mix_cleaned_labels.json", dir);
    write_text_file(path, data);
    free(data);
}

// scripts/mplug_owl_2/mix_q_instruct.sh's flags, every one (sizes scaled down); cd DIR first,
// as upstream's ./scripts/zero3.json is relative
#define MIX_Q_INSTRUCT_SH                                                                                              \
    "train --deepspeed ./scripts/zero3.json --model_name_or_path %s/mplug-owl2 --version v1 "                       \
    "--data_path %s/mix_cleaned_labels.json --image_folder %s --image_aspect_ratio pad --group_by_modality_length True " \
    "--bf16 True --output_dir %s --num_train_epochs 1 --per_device_train_batch_size 4 --per_device_eval_batch_size 4 " \
    "--gradient_accumulation_steps 1 --evaluation_strategy \"no\" --save_strategy \"steps\" --save_steps 2 "        \
    "--save_total_limit 1 --learning_rate 2e-5 --weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type \"cosine\" " \
    "--logging_steps 1 --tf32 True --model_max_length 2048 --gradient_checkpointing True --tune_visual_abstractor True " \
    "--freeze_vision_model False --dataloader_num_workers 4 --lazy_preprocess True --report_to tensorboard%s"

// mPLUG-Owl2's scripts/finetune_lora.sh's flags, every one (its LoRA ones first, as upstream writes them)
#define FINETUNE_LORA_SH                                                                                               \
    "train --lora_enable True --lora_r 128 --lora_alpha 256 --visual_abstractor_lr 2e-5 --deepspeed ./scripts/zero3.json " \
    "--model_name_or_path %s/mplug-owl2 --version v1 --data_path %s/mix_cleaned_labels.json --image_folder %s "         \
    "--image_aspect_ratio pad --group_by_modality_length True --bf16 True --output_dir %s --num_train_epochs 1 "        \
    "--per_device_train_batch_size 2 --per_device_eval_batch_size 4 --gradient_accumulation_steps 8 "                   \
    "--evaluation_strategy \"no\" --save_strategy \"steps\" --save_steps 10 --save_total_limit 1 --learning_rate 1e-4 "  \
    "--weight_decay 0. --warmup_ratio 0.03 --lr_scheduler_type \"cosine\" --logging_steps 1 --tf32 True "               \
    "--model_max_length 2048 --gradient_checkpointing True --tune_visual_abstractor True --freeze_vision_model True "  \
    "--dataloader_num_workers 4 --lazy_preprocess True --report_to tensorboard"

static void run_script(const char *dir, const char *output, const char *extra) {
    char args[8192], cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    snprintf(args, sizeof args, MIX_Q_INSTRUCT_SH, dir, dir, PHOTOS, output, extra);
    int rc = run_vlm(args, out, OUT_SIZE, err, OUT_SIZE);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err);
}

static char *slurp(const char *path, size_t *size) {
    char *text;
    ck_assert_msg(file_read_all(path, 1 << 26, &text, size) == VLM_OK, "%s", vlm_last_error());
    return text;
}

START_TEST(mix_q_instruct_with_upstream_flags) {
    char dir[] = "/tmp/vlm-qinstruct-XXXXXX", path[800], a[200], b[200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_inputs(dir);
    snprintf(a, sizeof a, "%s/checkpoints/mplug-owl2-finetune-mix", dir);
    run_script(dir, a, "");
    ck_assert_msg(strstr(err, "--max_grad_norm 0: from ./scripts/zero3.json"), "%.3000s", err);
    ck_assert_msg(strstr(err, "max_grad_norm                = 0"), "%.3000s", err);
    // the model saved in upstream's layout, trained (every module moved), and loadable again
    LlavaParams init, trained;
    snprintf(path, sizeof path, "%s/mplug-owl2", dir);
    ck_assert_int_eq(llava_open(&init, path, &(LlavaOpenOptions){0}, NULL), VLM_OK);
    ck_assert_msg(llava_open(&trained, a, &(LlavaOpenOptions){0}, NULL) == VLM_OK, "%s", vlm_last_error());
    ck_assert(trained.cfg.arch == ARCH_MPLUG_OWL2);
    for (int m = 0; m < 3; m++) {
        bool moved = false;
        for (int i = 0; i < init.n_specs && !moved; i++) {
            const ParamSpec *s = &init.specs[i];
            if (s->module == (Module)m)
                moved |= memcmp(init.data + s->offset, trained.data + s->offset, sizeof(float) * s->numel) != 0;
        }
        ck_assert_msg(moved, "module %d did not train", m);
    }
    llava_params_free(&init), llava_params_free(&trained);
    // the trained folder runs in vlm forward / generate with either placeholder (3 queries + vit_eos: 4 rows)
    char args[2048];
    snprintf(args, sizeof args, "forward --model %s --prompt \"USER: <|image|>How is the quality? ASSISTANT:\" --image %s/211.jpg",
             a, PHOTOS);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    ck_assert_msg(strstr(out, "(4 image features)"), "%s", out);
    snprintf(args, sizeof args, "generate --model %s --template mplug_owl2 --prompt \"How is the quality?\" --image %s/211.jpg "
             "--max-new-tokens 3", a, PHOTOS);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    // 16 records / 4 = 4 steps, a checkpoint every 2: a run stopped after checkpoint-2 (its later
    // files removed) resumes from it, as upstream's train.py does, to the same bytes as the run above
    snprintf(b, sizeof b, "%s/interrupted", dir);
    run_script(dir, b, " --save_total_limit 2");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && rm -rf checkpoint-4 model.safetensors config.json && test -d checkpoint-2", b);
    ck_assert_int_eq(system(cmd), 0);
    run_script(dir, b, " --save_total_limit 2");
    ck_assert_msg(strstr(err, "resuming from"), "%.3000s", err);
    size_t na, nb;
    snprintf(path, sizeof path, "%s/model.safetensors", a);
    char *ta = slurp(path, &na);
    snprintf(path, sizeof path, "%s/model.safetensors", b);
    char *tb = slurp(path, &nb);
    ck_assert_msg(na == nb && memcmp(ta, tb, na) == 0, "the resumed run's model differs from the uninterrupted one's");
    free(ta), free(tb);
    remove_tree(dir);
}
END_TEST

// finetune_lora.sh on the tiny mPLUG-Owl2: adapters on both modality branches, the LLM trained beside
// them as upstream's requires_grad_(True) does (its non_lora_trainables.bin holds it), the folder
// runs in vlm forward over its base.
START_TEST(finetune_lora_with_upstream_flags) {
    char dir[] = "/tmp/vlm-qinstruct-XXXXXX", path[800], a[200], args[8192], cwd[1024];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_inputs(dir);
    snprintf(a, sizeof a, "%s/checkpoints/mplug-owl2-finetune-lora", dir);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    snprintf(args, sizeof args, FINETUNE_LORA_SH, dir, dir, PHOTOS, a);
    int rc = run_vlm(args, out, OUT_SIZE, err, OUT_SIZE);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(strstr(err, "the language model trains in full beside its adapters"), "%.3000s", err);
    Checkpoint ck;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", a);
    ck_assert_int_eq(checkpoint_open(&ck, path), VLM_OK);
    ck_assert(checkpoint_find(&ck, "base_model.model.model.layers.0.self_attn.k_proj.multiway.1.lora_A.weight") >= 0);
    ck_assert(checkpoint_find(&ck, "base_model.model.model.layers.0.self_attn.v_proj.multiway.0.lora_B.weight") >= 0);
    checkpoint_close(&ck);
    snprintf(path, sizeof path, "%s/non_lora_trainables.bin", a);
    ck_assert_int_eq(checkpoint_open(&ck, path), VLM_OK);
    ck_assert(checkpoint_find(&ck, "base_model.model.model.embed_tokens.weight") >= 0);
    ck_assert(checkpoint_find(&ck, "base_model.model.model.visual_abstractor.visual_fc.weight") >= 0);
    ck_assert(checkpoint_find(&ck, "base_model.model.model.vision_model.embeddings.cls_token") < 0);  // frozen
    checkpoint_close(&ck);
    snprintf(args, sizeof args, "forward --model %s --prompt \"USER: <|image|>How is the quality? ASSISTANT:\" --image %s/211.jpg",
             a, PHOTOS);
    ck_assert_msg(run_vlm(args, out, OUT_SIZE, err, OUT_SIZE) == 0, "%s", err);
    remove_tree(dir);
}
END_TEST

Suite *qinstruct_recipe_suite(void) {
    return SUITE("qinstruct_recipe", "", 300, mix_q_instruct_with_upstream_flags, finetune_lora_with_upstream_flags);
}
