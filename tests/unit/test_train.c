// vlm train's configuration and optimisation (src/train/args, schedule,
// optimizer, step) against transformers 4.37.2's Trainer
// (tests/fixtures/trainer, made by tools/make_trainer_fixtures.sh).
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/str.h"
#include "formats/safetensors.h"
#include "model/llava.h"
#include "train/args.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/step.h"
#include "test_util.h"

// Parses a space-separated command line (no quoting).
static int parse_line(TrainArgs *a, const char *line) {
    static char buf[4096];
    char *argv[128];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 128; t = strtok(NULL, " ")) argv[argc++] = t;
    vlm_clear_error();
    return train_args_parse(a, argc, argv);
}

START_TEST(args_syntax_and_defaults) {
    TrainArgs a;
    ck_assert_int_eq(parse_line(&a, "--output_dir out"), VLM_OK);
    // HF 4.37 / LLaVA defaults
    ck_assert_double_eq(a.learning_rate, 5e-5);
    ck_assert_double_eq(a.num_train_epochs, 3.0);
    ck_assert_int_eq(a.lr_scheduler_type, SCHED_LINEAR);
    ck_assert_int_eq(a.per_device_train_batch_size, 8);
    ck_assert_int_eq(a.model_max_length, 512);
    ck_assert_int_eq(a.mm_vision_select_layer, -1);
    ck_assert_str_eq(a.version, "v0");
    ck_assert(a.mm_use_im_patch_token && !a.bf16 && a.freeze_vision_model);
    ck_assert_int_eq(a.save_total_limit, -1);
    ck_assert_double_eq(a.mm_projector_lr, -1.0);
    ck_assert_int_eq(a.loss_reduction, LOSS_TOKEN_MEAN);
    ck_assert(!a.resume);
    ck_assert(!a.trainable[MODULE_VISION] && a.trainable[MODULE_PROJECTOR] && a.trainable[MODULE_LLM]);
    // both syntaxes, booleans as HfArgumentParser takes them, dashes, --no_X
    ck_assert_int_eq(parse_line(&a, "--output_dir=out --learning_rate 2e-5 --weight_decay=0. --bf16 --tf32 true "
                                    "--group_by_modality_length=True --gradient-accumulation-steps 4 "
                                    "--no_mm_use_im_patch_token --mm_vision_select_layer -2 --fp16 False "
                                    "--lr_scheduler_type cosine --freeze_vision_model 0"), VLM_OK);
    ck_assert_str_eq(a.output_dir, "out");
    ck_assert_double_eq(a.learning_rate, 2e-5);
    ck_assert_double_eq(a.weight_decay, 0.0);
    ck_assert(a.bf16 && a.tf32 && a.group_by_modality_length && !a.mm_use_im_patch_token && !a.fp16);
    ck_assert_int_eq(a.gradient_accumulation_steps, 4);
    ck_assert_int_eq(a.mm_vision_select_layer, -2);
    ck_assert_int_eq(a.lr_scheduler_type, SCHED_COSINE);
    ck_assert(a.trainable[MODULE_VISION]);
    ck_assert_int_eq(train_args_source(&a, "learning_rate"), ARG_FLAG);
    ck_assert_int_eq(train_args_source(&a, "adam_beta1"), ARG_DEFAULT);
    // inapplicable flags: one note each
    ck_assert_ptr_nonnull(strstr(a.notes, "--bf16: "));
    ck_assert_ptr_nonnull(strstr(a.notes, "--tf32: "));
    ck_assert_ptr_null(strstr(a.notes, "--fp16"));
    // several data files: repeated, comma- or space-separated
    ck_assert_int_eq(parse_line(&a, "--output_dir o --data_path a.json,b.json c.json --data_path=d.json"), VLM_OK);
    ck_assert_int_eq(a.n_data_path, 4);
    ck_assert_str_eq(a.data_path[0], "a.json");
    ck_assert_str_eq(a.data_path[3], "d.json");
    // --resume with and without a path
    ck_assert_int_eq(parse_line(&a, "--output_dir o --resume --seed 7"), VLM_OK);
    ck_assert(a.resume && a.resume_path[0] == '\0' && a.seed == 7);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --resume o/checkpoint-5 --loss_reduction micro_mean"), VLM_OK);
    ck_assert(a.resume);
    ck_assert_str_eq(a.resume_path, "o/checkpoint-5");
    ck_assert_int_eq(a.loss_reduction, LOSS_MICRO_MEAN);
    // HF's --group_by_length (False by default)
    ck_assert(!a.group_by_length);
    ck_assert_int_eq(parse_line(&a, "--output_dir=out --group_by_length"), VLM_OK);
    ck_assert(a.group_by_length && !a.group_by_modality_length);
}
END_TEST

START_TEST(args_errors_name_the_flag) {
    TrainArgs a;
    ck_assert_int_eq(parse_line(&a, "--output_dir o --learnig_rate 1e-3"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "unknown flag --learnig_rate (did you mean --learning_rate?)"), "%s",
                  vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --per_device_train_batchsize 4"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "did you mean --per_device_train_batch_size?"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --learning_rate -1e-3"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--learning_rate: must be >= 0"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --learning_rate abc"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--learning_rate: 'abc' is not a finite number"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --per_device_train_batch_size 2.5"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--per_device_train_batch_size: '2.5' is not an integer"), "%s",
                  vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --bf16 maybe"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--bf16: 'maybe' is not a boolean"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --lr_scheduler_type polynomial"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--lr_scheduler_type: 'polynomial' is not one of"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --warmup_ratio 1.5"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --gradient_accumulation_steps 0"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --seed"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--seed needs a value"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --recipe llava-pt"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "unknown recipe 'llava-pt'"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --version vicuna"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --mm_use_im_start_end True"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o stray"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--learning_rate 1e-3"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--output_dir: is required"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --lora_enable True --lora_bias all"), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "--lora_bias"), "%s", vlm_last_error());
    ck_assert_int_eq(parse_line(&a, "--output_dir o --lora_enable True --lora_r 0"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --lora_enable True --lora_dropout 1"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --bits 4"), VLM_ERR_INPUT);
    ck_assert_int_eq(parse_line(&a, "--output_dir o --optim adafactor"), VLM_ERR_INPUT);
}
END_TEST

START_TEST(args_recipes) {
    TrainArgs a;
    // every recipe resolves
    for (const char *const *r = train_recipe_names(); *r; r++) {
        char line[256];
        snprintf(line, sizeof line, "--output_dir o --recipe %s", *r);
        ck_assert_msg(parse_line(&a, line) == VLM_OK, "%s: %s", *r, vlm_last_error());
        ck_assert_ptr_nonnull(train_recipe_description(*r));
        ck_assert_int_eq(a.lr_scheduler_type, SCHED_COSINE);
        ck_assert_double_eq(a.warmup_ratio, 0.03);
        ck_assert_double_eq(a.weight_decay, 0.0);
        ck_assert_double_eq(a.num_train_epochs, 1.0);
        ck_assert(a.trainable[MODULE_PROJECTOR]);
        int global = a.per_device_train_batch_size * a.gradient_accumulation_steps;
        bool pt = strstr(*r, "pt") && strcmp(*r, "ola-vpt") != 0;
        ck_assert_int_eq(global, pt ? 256 : 128);
        ck_assert_double_eq(a.learning_rate, pt ? 1e-3 : 2e-5);
        ck_assert(a.trainable[MODULE_LLM] == !pt);
        ck_assert(a.trainable[MODULE_VISION] == (strncmp(*r, "qinstruct", 9) == 0));
        ck_assert(a.needs_embedding_predictors == (strcmp(*r, "ola-pt") == 0));
        ck_assert_int_eq(a.model_max_length, strncmp(*r, "ola", 3) == 0 ? 4096 : 2048);
        ck_assert_str_eq(a.image_aspect_ratio, pt ? "square" : "pad");
        ck_assert(a.group_by_modality_length == !pt);
        ck_assert_int_eq(train_args_source(&a, "learning_rate"), ARG_RECIPE);
        if (a.recipe_arch == ARCH_MPLUG_OWL2) ck_assert(str_has_prefix(a.notes, "--max_grad_norm 0 (recipe)"));
        else ck_assert_str_eq(a.notes, "");
    }
    ck_assert_int_eq(parse_line(&a, "--output_dir o --recipe llava15-pt"), VLM_OK);
    ck_assert_str_eq(a.version, "plain");
    ck_assert_str_eq(a.mm_projector_type, "mlp2x_gelu");
    ck_assert_int_eq(a.mm_vision_select_layer, -2);
    ck_assert(a.tune_mm_mlp_adapter);
    // a flag wins over the recipe, before or after it
    ck_assert_int_eq(parse_line(&a, "--learning_rate 5e-4 --output_dir o --recipe llava15-ift --version v1 "
                                    "--gradient_accumulation_steps 2"), VLM_OK);
    ck_assert_double_eq(a.learning_rate, 5e-4);
    ck_assert_int_eq(a.gradient_accumulation_steps, 2);
    ck_assert_int_eq(train_args_source(&a, "learning_rate"), ARG_FLAG);
    ck_assert_int_eq(train_args_source(&a, "per_device_train_batch_size"), ARG_RECIPE);
    ck_assert_int_eq(train_args_source(&a, "adam_beta2"), ARG_DEFAULT);
    ck_assert_int_eq(parse_line(&a, "--recipe llava15-ift --unfreeze_mm_vision_tower --output_dir o"), VLM_OK);
    ck_assert(a.trainable[MODULE_VISION] && a.trainable[MODULE_LLM]);
    ck_assert_int_eq(parse_line(&a, "--recipe qinstruct-after --freeze_vision_model --output_dir o"), VLM_OK);
    ck_assert(!a.trainable[MODULE_VISION] && a.trainable[MODULE_LLM] && a.recipe_arch == ARCH_MPLUG_OWL2);
    ck_assert_int_eq(parse_line(&a, "--recipe llava15-ift --freeze_backbone True --output_dir o"), VLM_OK);
    ck_assert(!a.trainable[MODULE_LLM] && a.trainable[MODULE_PROJECTOR]);
    ck_assert_ptr_nonnull(strstr(a.notes, "--freeze_backbone: "));
    // upstream's scripts run unchanged: LLaVA's finetune.sh and OLA-VLM's pretrain.sh (which needs the predictors)
    ck_assert_int_eq(parse_line(&a, "--deepspeed ./scripts/zero3.json --model_name_or_path lmsys/vicuna-13b-v1.5 "
        "--version v1 --data_path ./playground/data/llava_v1_5_mix665k.json --image_folder ./playground/data "
        "--vision_tower openai/clip-vit-large-patch14-336 --pretrain_mm_mlp_adapter ./mm_projector.bin "
        "--mm_projector_type mlp2x_gelu --mm_vision_select_layer -2 --mm_use_im_start_end False "
        "--mm_use_im_patch_token False --image_aspect_ratio pad --group_by_modality_length True --bf16 True "
        "--output_dir ./checkpoints/llava-v1.5-13b --num_train_epochs 1 --per_device_train_batch_size 16 "
        "--per_device_eval_batch_size 4 --gradient_accumulation_steps 1 --evaluation_strategy no "
        "--save_strategy steps --save_steps 50000 --save_total_limit 1 --learning_rate 2e-5 --weight_decay 0. "
        "--warmup_ratio 0.03 --lr_scheduler_type cosine --logging_steps 1 --tf32 True --model_max_length 2048 "
        "--gradient_checkpointing True --dataloader_num_workers 4 --lazy_preprocess True --report_to wandb"), VLM_OK);
    ck_assert(!a.trainable[MODULE_VISION] && a.trainable[MODULE_PROJECTOR] && a.trainable[MODULE_LLM]);
    ck_assert_int_eq(a.save_total_limit, 1);
    ck_assert_ptr_nonnull(strstr(a.notes, "--deepspeed: "));
    ck_assert_ptr_nonnull(strstr(a.notes, "--report_to: "));
    ck_assert_ptr_null(strstr(a.notes, "--gradient_checkpointing"));  // it recomputes now: nothing to note
    ck_assert(a.gradient_checkpointing);
    ck_assert(!a.needs_embedding_predictors);
    ck_assert_int_eq(parse_line(&a, "--model_name_or_path meta-llama/Meta-Llama-3-8B-Instruct --version llava_llama_3 "
        "--mode gen-depth-seg --layer_indices d18-20_s10-18_g12-20 --num_task_tokens 8 --loss_weights d0.5_s0.5_g0.5 "
        "--contrastive_loss_weight 0.3 --image_generator stabilityai/stable-diffusion-2-1-unclip "
        "--depth_estimator depth_anything_v2_vitl.pth --tune_mm_mlp_adapter True --output_dir out"), VLM_OK);
    ck_assert(a.needs_embedding_predictors && !a.trainable[MODULE_LLM]);
    // the printout says where each value came from
    char buf[16384];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ck_assert_int_eq(parse_line(&a, "--recipe llava15-ift --learning_rate 1e-5 --output_dir o"), VLM_OK);
    train_args_print(&a, f);
    fclose(f);
    ck_assert_msg(strstr(buf, "learning_rate                = 1e-05  (flag)"), "%s", buf);
    ck_assert_msg(strstr(buf, "lr_scheduler_type            = cosine  (recipe llava15-ift)"), "%s", buf);
    ck_assert_msg(strstr(buf, "adam_beta2                   = 0.999  (default)"), "%s", buf);
    ck_assert_msg(strstr(buf, "vision no, projector yes, language model yes"), "%s", buf);
}
END_TEST

// Trainer 4.37's step plan: steps of A consecutive micro-batches, leftovers carried into the next epoch.
START_TEST(plan_like_trainer) {
    TrainPlan p;
    ck_assert_int_eq(train_plan(&p, 10, 4, 2.0, -1), VLM_OK);  // 2 steps per epoch, 4 steps
    ck_assert_int_eq(p.n_steps, 4);
    ck_assert_int_eq(p.n_epochs, 2);
    long want_first[] = {0, 4, 8, 12};  // step 3 = epoch 0 batches 8, 9 + epoch 1 batches 0, 1
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(p.first[k], want_first[k]);
        ck_assert_int_eq(p.count[k], 4);
    }
    ck_assert_int_eq(train_plan_epoch(&p, 12), 1);
    ck_assert_int_eq(train_plan_batch(&p, 12), 2);
    train_plan_free(&p);
    // --max_steps wins; fractional epochs round up
    ck_assert_int_eq(train_plan(&p, 10, 4, 3.0, 5), VLM_OK);
    ck_assert_int_eq(p.n_steps, 5);
    ck_assert_int_eq(p.n_epochs, 3);
    train_plan_free(&p);
    ck_assert_int_eq(train_plan(&p, 10, 1, 0.25, -1), VLM_OK);
    ck_assert_int_eq(p.n_steps, 3);
    train_plan_free(&p);
    // fewer micro-batches than A: a short step at each epoch's end (and the counter's multiples of A)
    ck_assert_int_eq(train_plan(&p, 3, 4, 3.0, -1), VLM_OK);
    ck_assert_int_eq(p.n_steps, 3);
    ck_assert_int_eq(p.first[0], 0);
    ck_assert_int_eq(p.count[0], 3);
    ck_assert_int_eq(p.first[1], 3);
    ck_assert_int_eq(p.count[1], 1);
    ck_assert_int_eq(p.first[2], 4);
    ck_assert_int_eq(p.count[2], 2);
    train_plan_free(&p);
    ck_assert_int_eq(train_plan(&p, 0, 1, 1.0, -1), VLM_ERR_INPUT);
}
END_TEST

START_TEST(schedule_shapes) {
    Schedule s = schedule_make(SCHED_COSINE, 0, 0.03, 100);
    ck_assert_int_eq(s.warmup, 3);  // ceil(100 * 0.03) = ceil(3.0)
    ck_assert_double_eq(schedule_lambda(&s, 0), 0.0);
    ck_assert_double_eq_tol(schedule_lambda(&s, 1), 1.0 / 3, 1e-15);
    ck_assert_double_eq(schedule_lambda(&s, 3), 1.0);
    ck_assert_double_eq_tol(schedule_lambda(&s, 100), 0.0, 1e-15);
    s = schedule_make(SCHED_LINEAR, 2, 0.5, 10);  // warmup_steps > 0 wins over the ratio
    ck_assert_int_eq(s.warmup, 2);
    ck_assert_double_eq(schedule_lambda(&s, 6), 0.5);
    s = schedule_make(SCHED_CONSTANT_WITH_WARMUP, 0, 0.1, 10);
    ck_assert_double_eq(schedule_lambda(&s, 0), 0.0);
    ck_assert_double_eq(schedule_lambda(&s, 1), 1.0);
    s = schedule_make(SCHED_CONSTANT, 0, 0.5, 10);
    ck_assert_double_eq(schedule_lambda(&s, 0), 1.0);
}
END_TEST

// ---------------------------------------------------------------- against transformers' Trainer

static const void *tensor(const SafetensorsFile *f, const char *name, const TensorInfo **info) {
    int i = safetensors_find(f, name);
    if (i < 0) return NULL;
    if (info) *info = &f->tensors[i];
    return safetensors_tensor_data(f, i);
}

static void load_tiny(LlavaModel *m, int max_batch) {
    LlavaParams params;
    ck_assert_msg(llava_load_hf(&params, fixture("model/tiny_gqa")) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(params.cfg.vision.image_size, 16);
    ck_assert_int_eq(llava_model_init(m, &params, &(LlavaPlan){max_batch, max_batch, 16, 16 + max_batch * 16, false, false}), VLM_OK);
    m->trainable[MODULE_VISION] = false;  // as the fixture's IFT-like run
}

static json_t *expected(void) {
    json_t *e = fixture_json("trainer/expected.json");
    ck_assert_ptr_nonnull(e);
    return e;
}

static bool in_list(const json_t *list, const char *name) {
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (strcmp(json_string_value(v), name) == 0) return true;
    return false;
}

// Trainer.get_decay_parameter_names and the trained (requires_grad) tensors, name by name.
START_TEST(decay_groups_like_trainer) {
    json_t *e = expected();
    LlavaModel m;
    load_tiny(&m, 2);
    ck_assert_int_eq((int)json_array_size(json_object_get(e, "parameters")), m.params.n_specs);
    for (int i = 0; i < m.params.n_specs; i++) {
        const char *name = m.params.specs[i].name;
        ck_assert_msg(param_decays(&m.params.cfg, name) == in_list(json_object_get(e, "decay_parameters"), name), "%s", name);
    }
    Optimizer o;
    OptimizerConfig oc = {.lr = 1e-3, .weight_decay = 0.1, .projector_lr = -1, .beta1 = 0.9, .beta2 = 0.999,
                          .eps = 1e-8, .max_grad_norm = 1.0};
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    json_t *trained = json_object_get(e, "trained_parameters");
    ck_assert_int_eq(o.n_ranges, (int)json_array_size(trained));
    size_t packed = 0;
    for (int r = 0; r < o.n_ranges; r++) {
        const ParamSpec *s = &m.params.specs[o.spec[r]];
        ck_assert_msg(in_list(trained, s->name), "%s", s->name);
        ck_assert_uint_eq(o.moment_offset[r], packed);
        ck_assert(o.projector[r] == (strncmp(s->name, "multi_modal_projector.", 22) == 0));
        packed += s->numel;
    }
    ck_assert_uint_eq(o.adam.n, packed);  // moments only for the trained tensors
    optimizer_free(&o);
    llava_model_free(&m);
    json_decref(e);
}
END_TEST

// get_scheduler's LambdaLR, every step of three schedules of each type.
START_TEST(schedules_like_torch) {
    json_t *e = expected();
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(json_object_get(e, "schedules"), key, v) {
        const char *type = json_string_value(json_object_get(v, "type"));
        SchedulerType t = strcmp(type, "linear") == 0 ? SCHED_LINEAR : strcmp(type, "cosine") == 0 ? SCHED_COSINE
                          : strcmp(type, "constant") == 0 ? SCHED_CONSTANT : SCHED_CONSTANT_WITH_WARMUP;
        long total = json_integer_value(json_object_get(v, "total"));
        Schedule s = schedule_make(t, 0, json_real_value(json_object_get(v, "warmup_ratio")), total);
        ck_assert_int_eq(s.warmup, json_integer_value(json_object_get(v, "warmup")));
        json_t *lr = json_object_get(v, "lr");
        for (long k = 0; k < total; k++) {
            json_t *x = json_array_get(lr, k);
            double want = json_is_integer(x) ? (double)json_integer_value(x) : json_real_value(x);
            ck_assert_msg(fabs(schedule_lambda(&s, k) - want) <= 1e-12, "%s step %ld: %.17g vs %.17g", key, k,
                          schedule_lambda(&s, k), want);
        }
        n++;
    }
    ck_assert_int_eq(n, 12);
    // which samples Trainer put in each optimizer step with 3 micro-batches per epoch and accumulation 2
    json_t *plan = json_object_get(e, "plan");
    TrainPlan p;
    ck_assert_int_eq(train_plan(&p, 3, 2, 3.0, 3), VLM_OK);
    json_t *steps = json_object_get(plan, "steps");
    ck_assert_int_eq(p.n_steps, (long)json_array_size(steps));
    for (long k = 0; k < p.n_steps; k++) {
        json_t *micro = json_array_get(steps, k);
        ck_assert_int_eq(p.count[k], (int)json_array_size(micro));
        for (int i = 0; i < p.count[k]; i++) {
            long b = train_plan_batch(&p, p.first[k] + i);  // batch b of the epoch = samples 2b, 2b + 1
            ck_assert_int_eq(2 * b, json_integer_value(json_array_get(json_array_get(micro, i), 0)));
        }
    }
    train_plan_free(&p);
    json_decref(e);
}
END_TEST

// Five optimizer steps of transformers 4.37.2's Trainer (micro_mean), step by step.
START_TEST(steps_like_trainer) {
    json_t *e = expected();
    json_t *args = json_object_get(e, "args"), *steps = json_object_get(e, "steps");
    SafetensorsFile ref;
    char path[600];
    snprintf(path, sizeof path, "%s", fixture("trainer/reference.safetensors"));
    ck_assert_int_eq(safetensors_open(&ref, path), VLM_OK);
    LlavaModel m;
    load_tiny(&m, 2);
    TrainArgs a;
    ck_assert_int_eq(parse_line(&a, "--output_dir o --per_device_train_batch_size 2 --gradient_accumulation_steps 2 "
                                    "--learning_rate 1e-3 --weight_decay 0.1 --warmup_ratio 0.2 --lr_scheduler_type "
                                    "cosine --max_steps 5 --max_grad_norm 1.0 --loss_reduction micro_mean"), VLM_OK);
    ck_assert_double_eq(a.learning_rate, json_real_value(json_object_get(args, "learning_rate")));
    TrainPlan plan;
    int n_samples = (int)json_integer_value(json_object_get(e, "n_samples"));
    long len = (n_samples + a.per_device_train_batch_size - 1) / a.per_device_train_batch_size;
    ck_assert_int_eq(train_plan(&plan, len, a.gradient_accumulation_steps, a.num_train_epochs, a.max_steps), VLM_OK);
    ck_assert_int_eq(plan.n_steps, (long)json_array_size(steps));
    Schedule sched = schedule_from_args(&a, plan.n_steps);
    OptimizerConfig oc = optimizer_config_from_args(&a);
    Optimizer o;
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    float *initial = malloc(sizeof(float) * m.params.numel);
    memcpy(initial, m.params.data, sizeof(float) * m.params.numel);
    StepConfig sc = {a.loss_reduction, a.gradient_accumulation_steps, 0};
    Collated *c = malloc(sizeof(Collated) * 2);
    for (long k = 0; k < plan.n_steps; k++) {
        json_t *want = json_array_get(steps, k);
        MicroBatch mb[2];
        for (int i = 0; i < plan.count[k]; i++) {
            long b = train_plan_batch(&plan, plan.first[k] + i);
            int samples[2] = {(int)(2 * b), (int)(2 * b + 1)};
            ck_assert_int_eq(samples[0], json_integer_value(json_array_get(json_array_get(json_object_get(want,
                                         "micro_batches"), i), 0)));
            collate(&ref, samples, 2, &c[i]);
            mb[i] = c[i].mb;
        }
        StepResult r;
        ck_assert_msg(train_step(&m, &o, &sc, mb, plan.count[k], schedule_lambda(&sched, k), &r) == VLM_OK, "%s",
                      vlm_last_error());
        double loss = json_real_value(json_object_get(want, "loss")), norm = json_real_value(json_object_get(want, "grad_norm"));
        json_t *lr = json_object_get(want, "lr");
        double want_lr = json_is_integer(lr) ? (double)json_integer_value(lr) : json_real_value(lr);
        if (getenv("VLM_TEST_VERBOSE"))
            fprintf(stderr, "step %ld loss %.9g (%.3g) lr %.17g norm %.9g (%.3g)\n", k + 1, r.loss,
                    fabs(r.loss - loss) / loss, r.lr, r.grad_norm, fabs(r.grad_norm - norm) / norm);
        ck_assert_msg(fabs(r.loss - loss) <= 1e-5 * loss, "step %ld: loss %.9g, Trainer %.9g", k + 1, r.loss, loss);
        ck_assert_msg(fabs(r.lr - want_lr) <= 1e-12, "step %ld: lr %.17g, Trainer %.17g", k + 1, r.lr, want_lr);
        ck_assert_msg(fabs(r.grad_norm - norm) <= 1e-5 * norm, "step %ld: grad norm %.9g, Trainer %.9g", k + 1,
                      r.grad_norm, norm);
        ck_assert(!r.skipped && r.bad_micro == -1);
    }
    ck_assert_int_eq(o.adam.step, 5);
    // every trained tensor after 5 steps; frozen ones untouched
    int compared = 0;
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        char key[200];
        snprintf(key, sizeof key, "step5.%s", s->name);
        const float *want = tensor(&ref, key, NULL), *ours = m.params.data + s->offset, *start = initial + s->offset;
        if (!want) {
            ck_assert_msg(memcmp(ours, start, s->numel * sizeof(float)) == 0, "%s changed", s->name);
            continue;
        }
        double diff = 0, norm = 0, update = 0;
        for (size_t k = 0; k < s->numel; k++) {
            diff += ((double)ours[k] - want[k]) * ((double)ours[k] - want[k]);
            norm += (double)want[k] * want[k];
            update += ((double)want[k] - start[k]) * ((double)want[k] - start[k]);
        }
        if (getenv("VLM_TEST_VERBOSE")) fprintf(stderr, "%s %.3g %.3g\n", s->name, sqrt(diff / norm), sqrt(diff / update));
        // 1e-5 of the tensor's norm; zero-initialised biases (the projector's) are held to 1e-3 of
        // their update instead, as in test_model.c: Adam turns near-zero gradients' rounding into steps
        ck_assert_msg(sqrt(diff) <= fmax(1e-5 * sqrt(norm), 1e-3 * sqrt(update)),
                      "%s after 5 steps differs by %g of its norm, %g of its update", s->name, sqrt(diff / norm),
                      sqrt(diff / update));
        compared++;
    }
    ck_assert_int_eq(compared, (int)json_array_size(json_object_get(e, "trained_parameters")));
    free(c);
    free(initial);
    train_plan_free(&plan);
    optimizer_free(&o);
    llava_model_free(&m);
    safetensors_close(&ref);
    json_decref(e);
}
END_TEST

static double max_rel_grad_diff(const LlavaModel *x, const LlavaModel *y) {
    double worst = 0;
    for (int i = 0; i < x->params.n_specs; i++) {
        const ParamSpec *s = &x->params.specs[i];
        double diff = 0, norm = 0;
        for (size_t k = 0; k < s->numel; k++) {
            double d = (double)x->grad[s->offset + k] - y->grad[s->offset + k];
            diff += d * d, norm += (double)y->grad[s->offset + k] * y->grad[s->offset + k];
        }
        if (norm > 0) worst = fmax(worst, sqrt(diff / norm));
        if (getenv("VLM_TEST_VERBOSE") && norm > 0) fprintf(stderr, "grad %s %.3g\n", s->name, sqrt(diff / norm));
    }
    return worst;
}

// token_mean: 2 micro-batches of 2 samples = 1 micro-batch of 4 (loss and gradients).
START_TEST(token_mean_is_one_big_batch) {
    SafetensorsFile ref;
    char path[600];
    snprintf(path, sizeof path, "%s", fixture("trainer/reference.safetensors"));
    ck_assert_int_eq(safetensors_open(&ref, path), VLM_OK);
    LlavaModel m2, m4;
    load_tiny(&m2, 4);
    load_tiny(&m4, 4);
    OptimizerConfig oc = {.lr = 1e-3, .projector_lr = -1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};  // no clipping
    Optimizer o2, o4;
    ck_assert_int_eq(optimizer_init(&o2, &m2, &oc), VLM_OK);
    ck_assert_int_eq(optimizer_init(&o4, &m4, &oc), VLM_OK);
    Collated *c = malloc(sizeof(Collated) * 3);
    int a[2] = {0, 1}, b[2] = {2, 3}, all[4] = {0, 1, 2, 3};
    collate(&ref, a, 2, &c[0]);
    collate(&ref, b, 2, &c[1]);
    collate(&ref, all, 4, &c[2]);
    MicroBatch two[2] = {c[0].mb, c[1].mb};
    StepConfig sc = {LOSS_TOKEN_MEAN, 2, 0};
    StepResult r2, r4;
    ck_assert_int_eq(train_step(&m2, &o2, &sc, two, 2, 0.0, &r2), VLM_OK);  // lr 0: the gradients stay to compare
    ck_assert_int_eq(train_step(&m4, &o4, &sc, &c[2].mb, 1, 0.0, &r4), VLM_OK);
    ck_assert_int_eq(r2.n_targets, r4.n_targets);
    ck_assert_msg(fabs(r2.loss - r4.loss) <= 1e-6 * r4.loss, "%.9g vs %.9g", r2.loss, r4.loss);
    ck_assert_msg(fabs(r2.grad_norm - r4.grad_norm) <= 1e-6 * r4.grad_norm, "%.9g vs %.9g", r2.grad_norm, r4.grad_norm);
    // gradients: float32 summation order alone (the same 4 samples in another order in one batch)
    // moves them by up to 1.0e-5 of a tensor's norm on this model (weights x10, as the model
    // fixtures make them); measured here: 4.6e-6 at worst, 2-4e-6 typically
    double worst = max_rel_grad_diff(&m2, &m4);
    ck_assert_msg(worst <= 2e-5, "gradients differ by %g of a tensor's norm", worst);
    // micro_mean weighs the micro-batches' means equally instead: another loss unless they hold as many targets
    long t0 = c[0].mb.B ? llava_count_targets(&m2.params.cfg, c[0].ids, c[0].labels, c[0].lengths, 2, c[0].mb.T_text, 0) : 0;
    long t1 = llava_count_targets(&m2.params.cfg, c[1].ids, c[1].labels, c[1].lengths, 2, c[1].mb.T_text, 0);
    ck_assert_int_eq(t0 + t1, r4.n_targets);
    sc.reduction = LOSS_MICRO_MEAN;
    StepResult rm;
    ck_assert_int_eq(train_step(&m2, &o2, &sc, two, 2, 0.0, &rm), VLM_OK);
    if (t0 != t1) ck_assert(fabs(rm.loss - r4.loss) > 1e-6 * r4.loss);
    free(c);
    optimizer_free(&o2), optimizer_free(&o4);
    llava_model_free(&m2), llava_model_free(&m4);
    safetensors_close(&ref);
}
END_TEST

// A NaN loss stops the step before any update; a step without targets is skipped; mm_projector_lr.
START_TEST(failures_leave_parameters_alone) {
    SafetensorsFile ref;
    char path[600];
    snprintf(path, sizeof path, "%s", fixture("trainer/reference.safetensors"));
    ck_assert_int_eq(safetensors_open(&ref, path), VLM_OK);
    LlavaModel m;
    load_tiny(&m, 2);
    OptimizerConfig oc = {.lr = 1e-3, .weight_decay = 0.1, .projector_lr = -1, .beta1 = 0.9, .beta2 = 0.999,
                          .eps = 1e-8, .max_grad_norm = 1.0};
    Optimizer o;
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    float *before = malloc(sizeof(float) * m.params.numel);
    memcpy(before, m.params.data, sizeof(float) * m.params.numel);
    Collated *c = malloc(sizeof(Collated) * 2);
    int a[2] = {0, 1}, b[2] = {2, 3};
    collate(&ref, a, 2, &c[0]);
    collate(&ref, b, 2, &c[1]);
    ck_assert_int_gt(c[1].mb.n_images, 0);
    c[1].pixels[5] = NAN;
    MicroBatch mb[2] = {c[0].mb, c[1].mb};
    StepConfig sc = {LOSS_TOKEN_MEAN, 2, 0};
    StepResult r;
    vlm_clear_error();
    ck_assert_int_eq(train_step(&m, &o, &sc, mb, 2, 1.0, &r), VLM_ERR_FAIL);
    ck_assert_msg(strstr(vlm_last_error(), "micro-batch 2 of 2: loss is nan: no parameter updated"), "%s",
                  vlm_last_error());
    ck_assert_int_eq(r.bad_micro, 1);
    ck_assert_int_eq(memcmp(before, m.params.data, sizeof(float) * m.params.numel), 0);
    ck_assert_int_eq(o.adam.step, 0);
    for (size_t i = 0; i < o.adam.n; i++) ck_assert(o.adam.m[i] == 0 && o.adam.v[i] == 0);
    // no target in the whole step: skipped, nothing changes
    for (int i = 0; i < 2 * c[0].mb.T_text; i++) c[0].labels[i] = -100;
    ck_assert_int_eq(train_step(&m, &o, &sc, &c[0].mb, 1, 1.0, &r), VLM_OK);
    ck_assert(r.skipped && r.n_targets == 0);
    ck_assert_int_eq(memcmp(before, m.params.data, sizeof(float) * m.params.numel), 0);
    ck_assert_int_eq(o.adam.step, 0);
    optimizer_free(&o);
    // mm_projector_lr 0: the projector stays (no decay either at lr 0), the LLM moves
    oc.projector_lr = 0.0;
    ck_assert_int_eq(optimizer_init(&o, &m, &oc), VLM_OK);
    collate(&ref, b, 2, &c[1]);
    ck_assert_int_eq(train_step(&m, &o, &sc, &c[1].mb, 1, 1.0, &r), VLM_OK);
    for (int i = 0; i < m.params.n_specs; i++) {
        const ParamSpec *s = &m.params.specs[i];
        bool same = memcmp(before + s->offset, m.params.data + s->offset, s->numel * sizeof(float)) == 0;
        ck_assert_msg(same == (s->module != MODULE_LLM), "%s", s->name);
    }
    free(c);
    free(before);
    optimizer_free(&o);
    llava_model_free(&m);
    safetensors_close(&ref);
}
END_TEST

Suite *train_suite(void) {
    return SUITE("train", "parser", 120,
                 args_syntax_and_defaults,
                 args_errors_name_the_flag,
                 args_recipes,
                 plan_like_trainer,
                 schedule_shapes,
                 decay_groups_like_trainer,
                 schedules_like_torch,
                 steps_like_trainer,
                 token_mean_is_one_big_batch,
                 failures_leave_parameters_alone);
}
