// `vlm train`'s configuration: every flag of upstream's launch scripts
// (transformers 4.37 TrainingArguments + LLaVA's ModelArguments /
// DataArguments / TrainingArguments + mPLUG-Owl2's), with upstream's
// defaults, parsed as HfArgumentParser accepts them (`--flag value`,
// `--flag=value`, `--bool`, `--bool True|true|yes|1|False|...`,
// `--no_bool` for booleans whose default is true, dashes for underscores),
// the named recipes (--recipe) underneath explicit flags, and the trainable
// modules the result implies. Each value remembers where it came from.
#ifndef VLM_TRAIN_ARGS_H
#define VLM_TRAIN_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "model/weights.h"  // Module, MODULE_COUNT

typedef enum { SCHED_LINEAR, SCHED_COSINE, SCHED_CONSTANT, SCHED_CONSTANT_WITH_WARMUP } SchedulerType;
typedef enum { INTERVAL_NO, INTERVAL_STEPS, INTERVAL_EPOCH } IntervalStrategy;  // HF's IntervalStrategy
// token_mean (ours, default): one token mean over the whole accumulated batch,
// what one large batch of the same samples gives. micro_mean: HF Trainer
// 4.37 (each micro-batch's token mean / gradient_accumulation_steps, summed).
typedef enum { LOSS_TOKEN_MEAN, LOSS_MICRO_MEAN } LossReduction;
typedef enum { ARG_DEFAULT, ARG_RECIPE, ARG_FLAG } ArgSource;

#define TRAIN_PATH_MAX 1024
#define TRAIN_MAX_DATA 16
#define TRAIN_NOTES_MAX 2048

typedef struct TrainArgs {
    // ---- LLaVA ModelArguments (+ LLaVA-NeXT's unfreeze_mm_vision_tower)
    char model_name_or_path[TRAIN_PATH_MAX];  // default facebook/opt-125m (upstream's placeholder)
    char version[64];                         // template; default v0
    char vision_tower[TRAIN_PATH_MAX];        // "" = None
    char pretrain_mm_mlp_adapter[TRAIN_PATH_MAX];
    char mm_projector_type[32];               // linear | mlp2x_gelu; default linear
    int mm_vision_select_layer;               // default -1
    char mm_vision_select_feature[16];        // patch | cls_patch
    bool mm_use_im_start_end, mm_use_im_patch_token;  // False, True
    bool freeze_backbone, tune_mm_mlp_adapter, unfreeze_mm_vision_tower;
    // ---- DataArguments
    char data_path[TRAIN_MAX_DATA][TRAIN_PATH_MAX];
    int n_data_path;
    char image_folder[TRAIN_PATH_MAX];
    char image_aspect_ratio[16];  // square | pad
    bool lazy_preprocess;
    // ---- LLaVA / mPLUG-Owl2 TrainingArguments
    bool freeze_mm_mlp_adapter, group_by_modality_length;
    bool tune_visual_abstractor, freeze_vision_model;  // mPLUG-Owl2: True, True
    double mm_projector_lr;                            // < 0: None (the projector uses learning_rate)
    double visual_abstractor_lr;                       // mPLUG-Owl2's; accepted, without effect (as upstream's)
    int model_max_length;                              // default 512
    // ---- transformers 4.37 TrainingArguments
    char output_dir[TRAIN_PATH_MAX];
    double num_train_epochs;  // 3.0
    long max_steps;           // -1: from epochs
    int per_device_train_batch_size, per_device_eval_batch_size, gradient_accumulation_steps;  // 8, 8, 1
    double learning_rate, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm;  // 5e-5 0 .9 .999 1e-8 1
    double warmup_ratio;
    long warmup_steps;
    bool group_by_length;     // False (group_by_modality_length wins when both are set, as upstream's trainers)
    SchedulerType lr_scheduler_type;  // linear
    double logging_steps;             // 500; < 1: a ratio of the total steps (HF)
    IntervalStrategy save_strategy, evaluation_strategy;  // steps, no
    double save_steps, eval_steps;    // 500, -1 (None: logging_steps); < 1: ratio
    int save_total_limit;             // -1: None (keep all)
    long seed;                        // 42
    int dataloader_num_workers;       // 0; used as the loader's decode-ahead threads
    bool bf16, fp16, tf32;          // accepted, noted: this backend trains in float32
    bool gradient_checkpointing;    // each layer's activations recomputed in the backward (the same numbers)
    char deepspeed[TRAIN_PATH_MAX];   // its zero_optimization.stage sets zero_stage unless --zero is given
    long ddp_timeout;                 // 1800: seconds a collective waits for the other ranks (dist.h)
    char report_to[256];              // "all" (4.37's default)
    // ---- accepted so upstream scripts run unchanged (validated: only upstream's defaults work)
    char optim[32];                   // adamw_torch (LLaVA's default) only
    bool remove_unused_columns;       // no effect
    char cache_dir[TRAIN_PATH_MAX], run_name[256], logging_dir[TRAIN_PATH_MAX], mpt_attn_impl[32];
    char mm_patch_merge_type[16];     // flat only
    int bits;                         // 16 only (no 4/8-bit QLoRA)
    // LoRA (LLaVA's / mPLUG-Owl2's TrainingArguments): adapters on the LLM's linears, the LLM frozen
    bool lora_enable;
    int lora_r, lora_alpha;           // 64, 16
    double lora_dropout;              // 0.05
    char lora_weight_path[TRAIN_PATH_MAX], lora_bias[16];  // unused upstream; "none" only
    // OLA-VLM's embedding-distillation flags (scripts/train/pretrain.sh): --mode
    // sets needs_embedding_predictors
    char mode[64], layer_indices[128], loss_weights[128];
    char image_generator[TRAIN_PATH_MAX], image_segmentor[TRAIN_PATH_MAX], depth_estimator[TRAIN_PATH_MAX];
    int num_task_tokens;
    double contrastive_loss_weight;
    // --{depth,seg,img}_head_{depth,dim_head,num_heads,num_tokens,output_dim,ff_mult}, in that order
    int depth_head[6], seg_head[6], img_head[6];
    bool use_contrastive, pass_text_to_aux, freeze_task_token;
    char teacher_embeddings[TRAIN_PATH_MAX];  // ours: the precomputed targets (data/teacher_targets.h)
    // ---- ours
    char recipe[32];                  // "" = none
    bool resume;                      // --resume [PATH]
    char resume_path[TRAIN_PATH_MAX]; // "" = the latest checkpoint-N in output_dir
    bool skip_bad_records;
    LossReduction loss_reduction;
    int zero_stage;                   // --zero 0|1|2|3 (DeepSpeed's stages; 2 and 3 run as 1 for now, noted)

    // ---- resolved by train_args_parse
    bool trainable[MODULE_COUNT];     // see train_args_trainable
    // ola-pt, or --mode given: OLA-VLM's embedding predictors train (with the
    // distillation losses) and the model gets them when it has none yet.
    bool needs_embedding_predictors;
    // the architecture the recipe's upstream script trains (the trainer says so when the model is another)
    Arch recipe_arch;
    bool has_recipe_arch;
    // One line per flag accepted but not applicable on this backend (bf16,
    // deepspeed, ...), for the caller to print; "" when none.
    char notes[TRAIN_NOTES_MAX];
    unsigned char source[160];         // ArgSource of each option, in the option table's order
} TrainArgs;

// Parses argv[0 .. argc) (the arguments after `vlm train`). Defaults, then
// the recipe (wherever --recipe appears), then the explicit flags: a flag
// always wins over the recipe. Errors (VLM_ERR_INPUT) name the flag: unknown
// flags with the closest known one, values that do not parse, values out of
// range, unknown recipes or choices.
int train_args_parse(TrainArgs *a, int argc, char **argv);
// Defaults only (as if no flag were given), trainable flags resolved.
void train_args_defaults(TrainArgs *a);
// Which modules train, from the freezing flags (LLaVA's train.py and
// mPLUG-Owl2's, which agree on these):
//   vision    trains iff (unfreeze_mm_vision_tower or not freeze_vision_model)
//             and not tune_mm_mlp_adapter (LLaVA's CLIP tower is created frozen)
//   projector trains iff not freeze_mm_mlp_adapter
//   LLM       trains iff not (tune_mm_mlp_adapter or freeze_backbone)
// (upstream's freeze_backbone freezes model.model, i.e. not lm_head; here the
// whole LLM module, noted when used.)
void train_args_trainable(const TrainArgs *a, bool trainable[MODULE_COUNT]);
// OLA-VLM's configuration from the flags (mode, layer_indices, loss_weights,
// num_task_tokens, contrastive_loss_weight, the heads' sizes) for an LLM of
// llm_layers; errors name the flag.
int train_args_ola_config(const TrainArgs *a, int llm_layers, OlaConfig *o);
// The resolved configuration, one `name = value  (default|recipe NAME|flag)` line per option.
void train_args_print(const TrainArgs *a, FILE *f);
// Where an option's value came from (name without dashes); -1 if unknown.
int train_args_source(const TrainArgs *a, const char *name);

// The named recipes: NULL-terminated list, and a one-line description of each.
const char *const *train_recipe_names(void);
const char *train_recipe_description(const char *name);
// Global batch of the recipes on one process: per_device_train_batch_size x
// gradient_accumulation_steps = upstream's per-device batch x GPUs x
// accumulation (PT 256 = 16 x 16, IFT / Q-Instruct / OLA VPT+IFT 128 = 16 x 8).

// HF's flag names, and the closest one to `name` by edit distance (for "did you mean").
const char *train_args_closest(const char *name);

#endif
