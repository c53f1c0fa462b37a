// vlm train's configuration and optimisation (src/train/args, schedule,
// optimizer, step) against transformers 4.37.2's Trainer
// (tests/fixtures/trainer, made by tools/make_trainer_fixtures.sh).
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/args.h"
#include "train/schedule.h"
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
        ck_assert_str_eq(a.notes, "");
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
    ck_assert(!a.trainable[MODULE_VISION] && a.trainable[MODULE_LLM] && a.owl2);
    ck_assert_int_eq(parse_line(&a, "--recipe llava15-ift --freeze_backbone True --output_dir o"), VLM_OK);
    ck_assert(!a.trainable[MODULE_LLM] && a.trainable[MODULE_PROJECTOR]);
    ck_assert_ptr_nonnull(strstr(a.notes, "--freeze_backbone: "));
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

Suite *train_suite(void) {
    return SUITE("train", "", 120,
                 args_syntax_and_defaults,
                 args_errors_name_the_flag,
                 args_recipes,
                 plan_like_trainer,
                 schedule_shapes);
}
