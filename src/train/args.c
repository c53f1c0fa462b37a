// `vlm train`'s flags, recipes and their resolution, see args.h.
#include "train/args.h"

#include <ctype.h>   // tolower, isspace
#include <errno.h>   // errno
#include <math.h>    // isfinite
#include <stddef.h>  // offsetof
#include <stdlib.h>  // strtod, strtol
#include <string.h>  // strcmp, strlen, strchr

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "dist/dist.h"
#include "text/template.h"  // template_find, template_names

// ---------------------------------------------------------------- option table

typedef enum { T_BOOL, T_INT, T_LONG, T_DOUBLE, T_STR, T_ENUM, T_LIST, T_OPTPATH } OptType;

typedef struct {
    const char *name;
    OptType type;
    size_t offset, size;  // size: of the char buffer for strings
    const char *def;      // the default, as a command-line value ("None" for Optional numbers)
    const char *choices;  // "a|b|c": T_ENUM's values in enum order, or the allowed strings
    const char *note;     // not applicable on this backend: printed when set (not by default) to an active value
} Opt;

#define F(field) offsetof(TrainArgs, field), sizeof(((TrainArgs *)0)->field)
static const Opt OPTS[] = {
    // LLaVA ModelArguments
    {"model_name_or_path", T_STR, F(model_name_or_path), "facebook/opt-125m", NULL, NULL},
    {"version", T_STR, F(version), "v0", NULL, NULL},
    {"freeze_backbone", T_BOOL, F(freeze_backbone), "False", NULL,
     "freezes the whole language model (upstream's freezes model.model and leaves lm_head trainable)"},
    {"tune_mm_mlp_adapter", T_BOOL, F(tune_mm_mlp_adapter), "False", NULL, NULL},
    {"vision_tower", T_STR, F(vision_tower), "", NULL, NULL},
    {"mm_vision_select_layer", T_INT, F(mm_vision_select_layer), "-1", NULL, NULL},
    {"pretrain_mm_mlp_adapter", T_STR, F(pretrain_mm_mlp_adapter), "", NULL, NULL},
    {"mm_projector_type", T_STR, F(mm_projector_type), "linear", "linear|mlp2x_gelu", NULL},
    {"mm_use_im_start_end", T_BOOL, F(mm_use_im_start_end), "False", NULL, NULL},
    {"mm_use_im_patch_token", T_BOOL, F(mm_use_im_patch_token), "True", NULL,
     "adds no <im_patch> token to the vocabulary (upstream's True adds one and resizes the embeddings; "
     "the recipes pass False)"},
    {"mm_vision_select_feature", T_STR, F(mm_vision_select_feature), "patch", "patch|cls_patch", NULL},
    {"unfreeze_mm_vision_tower", T_BOOL, F(unfreeze_mm_vision_tower), "False", NULL, NULL},
    // DataArguments
    {"data_path", T_LIST, F(data_path), "", NULL, NULL},
    {"lazy_preprocess", T_BOOL, F(lazy_preprocess), "False", NULL, "records are always read lazily here"},
    {"image_folder", T_STR, F(image_folder), "", NULL, NULL},
    {"image_aspect_ratio", T_STR, F(image_aspect_ratio), "square", "square|pad", NULL},
    // LLaVA / mPLUG-Owl2 TrainingArguments
    {"freeze_mm_mlp_adapter", T_BOOL, F(freeze_mm_mlp_adapter), "False", NULL, NULL},
    {"model_max_length", T_INT, F(model_max_length), "512", NULL, NULL},
    {"mm_projector_lr", T_DOUBLE, F(mm_projector_lr), "None", NULL, NULL},
    // mPLUG-Owl2's: its optimizer groups parameters whose *name* holds "visual_abstractor_lr", so
    // it matches none and every parameter trains at --learning_rate (as here)
    {"visual_abstractor_lr", T_DOUBLE, F(visual_abstractor_lr), "None", NULL,
     "matches no parameter in upstream's optimizer either: every parameter trains at --learning_rate"},
    {"group_by_modality_length", T_BOOL, F(group_by_modality_length), "False", NULL, NULL},
    {"tune_visual_abstractor", T_BOOL, F(tune_visual_abstractor), "True", NULL, NULL},
    {"freeze_vision_model", T_BOOL, F(freeze_vision_model), "True", NULL, NULL},
    // transformers 4.37 TrainingArguments
    {"output_dir", T_STR, F(output_dir), "", NULL, NULL},
    {"num_train_epochs", T_DOUBLE, F(num_train_epochs), "3.0", NULL, NULL},
    {"max_steps", T_LONG, F(max_steps), "-1", NULL, NULL},
    {"per_device_train_batch_size", T_INT, F(per_device_train_batch_size), "8", NULL, NULL},
    {"per_device_eval_batch_size", T_INT, F(per_device_eval_batch_size), "8", NULL, NULL},
    {"gradient_accumulation_steps", T_INT, F(gradient_accumulation_steps), "1", NULL, NULL},
    {"learning_rate", T_DOUBLE, F(learning_rate), "5e-05", NULL, NULL},
    {"weight_decay", T_DOUBLE, F(weight_decay), "0.0", NULL, NULL},
    {"adam_beta1", T_DOUBLE, F(adam_beta1), "0.9", NULL, NULL},
    {"adam_beta2", T_DOUBLE, F(adam_beta2), "0.999", NULL, NULL},
    {"adam_epsilon", T_DOUBLE, F(adam_epsilon), "1e-08", NULL, NULL},
    {"max_grad_norm", T_DOUBLE, F(max_grad_norm), "1.0", NULL, NULL},
    {"lr_scheduler_type", T_ENUM, F(lr_scheduler_type), "linear", "linear|cosine|constant|constant_with_warmup", NULL},
    {"warmup_ratio", T_DOUBLE, F(warmup_ratio), "0.0", NULL, NULL},
    {"warmup_steps", T_LONG, F(warmup_steps), "0", NULL, NULL},
    {"logging_steps", T_DOUBLE, F(logging_steps), "500", NULL, NULL},
    {"evaluation_strategy", T_ENUM, F(evaluation_strategy), "no", "no|steps|epoch",
     "no evaluation during training on this backend (run vlm eval on a checkpoint)"},
    {"eval_steps", T_DOUBLE, F(eval_steps), "None", NULL, NULL},
    {"save_strategy", T_ENUM, F(save_strategy), "steps", "no|steps|epoch", NULL},
    {"save_steps", T_DOUBLE, F(save_steps), "500", NULL, NULL},
    {"save_total_limit", T_INT, F(save_total_limit), "None", NULL, NULL},
    {"seed", T_LONG, F(seed), "42", NULL, NULL},
    // LLaVA's and mPLUG-Owl2's trainers check group_by_modality_length first, so it wins
    {"group_by_length", T_BOOL, F(group_by_length), "False", NULL, NULL},
    {"dataloader_num_workers", T_INT, F(dataloader_num_workers), "0", NULL, NULL},
    {"bf16", T_BOOL, F(bf16), "False", NULL,
     "this CPU backend trains in float32 (with --lora_enable True the frozen base's layers are held in bf16)"},
    {"fp16", T_BOOL, F(fp16), "False", NULL,
     "this CPU backend trains in float32 (with --lora_enable True the frozen base's layers are held in fp16)"},
    {"tf32", T_BOOL, F(tf32), "False", NULL, "no TF32 on this CPU backend: float32 matmuls"},
    {"gradient_checkpointing", T_BOOL, F(gradient_checkpointing), "False", NULL, NULL},
    {"deepspeed", T_STR, F(deepspeed), "", NULL,
     "no DeepSpeed engine: its ZeRO stage and gradient_clipping are read from the file (mpirun -np N for several processes)"},
    {"ddp_timeout", T_LONG, F(ddp_timeout), "1800", NULL, NULL},
    {"report_to", T_STR, F(report_to), "all", NULL,
     "no logging integrations: metrics go to the console and OUTPUT_DIR/metrics.jsonl"},
    // upstream flags without an effect here, or with only their default supported
    {"optim", T_STR, F(optim), "adamw_torch", "adamw_torch", NULL},
    {"remove_unused_columns", T_BOOL, F(remove_unused_columns), "False", NULL, NULL},
    {"cache_dir", T_STR, F(cache_dir), "", NULL, "models are read from local directories (no Hub cache)"},
    {"run_name", T_STR, F(run_name), "", NULL, NULL},
    {"logging_dir", T_STR, F(logging_dir), "", NULL, NULL},
    {"mpt_attn_impl", T_STR, F(mpt_attn_impl), "triton", NULL, NULL},
    {"mm_patch_merge_type", T_STR, F(mm_patch_merge_type), "flat", "flat", NULL},
    {"bits", T_INT, F(bits), "16", NULL, NULL},
    {"lora_enable", T_BOOL, F(lora_enable), "False", NULL, NULL},
    {"lora_r", T_INT, F(lora_r), "64", NULL, NULL},
    {"lora_alpha", T_INT, F(lora_alpha), "16", NULL, NULL},
    {"lora_dropout", T_DOUBLE, F(lora_dropout), "0.05", NULL, NULL},
    {"lora_weight_path", T_STR, F(lora_weight_path), "", NULL, "unused by upstream's train.py too"},
    {"lora_bias", T_STR, F(lora_bias), "none", "none", NULL},
    // OLA-VLM's embedding distillation (ola_vlm_train_mem.py)
    // (ModelArguments' defaults; the teachers' names are accepted: their embeddings are read precomputed)
    {"mode", T_STR, F(mode), "gen-depth-seg", NULL, NULL},
    {"layer_indices", T_STR, F(layer_indices), "d8-20_s10-18_g12-20", NULL, NULL},
    {"num_task_tokens", T_INT, F(num_task_tokens), "8", NULL, NULL},
    {"loss_weights", T_STR, F(loss_weights), "d0.5_s0.5_g0.5", NULL, NULL},
    {"contrastive_loss_weight", T_DOUBLE, F(contrastive_loss_weight), "0.3", NULL, NULL},
    {"image_generator", T_STR, F(image_generator), "stabilityai/stable-diffusion-2-1-unclip", NULL,
     "the teacher runs upstream; here its embeddings are read from --teacher_embeddings"},
    {"image_segmentor", T_STR, F(image_segmentor), "shi-labs/oneformer_coco_swin_large", NULL,
     "the teacher runs upstream; here its embeddings are read from --teacher_embeddings"},
    {"depth_estimator", T_STR, F(depth_estimator), "depth_anything_v2_vitl.pth", NULL,
     "the teacher runs upstream; here its embeddings are read from --teacher_embeddings"},
#define HEAD(task, key, field, i, def) {#task "_head_" key, T_INT, F(field[i]), def, NULL, NULL}
#define HEADS(task, field, tokens, out)                                                                  \
    HEAD(task, "depth", field, 0, "1"), HEAD(task, "dim_head", field, 1, "32"),                         \
    HEAD(task, "num_heads", field, 2, "4"), HEAD(task, "num_tokens", field, 3, tokens),                 \
    HEAD(task, "output_dim", field, 4, out), HEAD(task, "ff_mult", field, 5, "1")
    HEADS(depth, depth_head, "576", "1024"), HEADS(seg, seg_head, "576", "1536"), HEADS(img, img_head, "1", "1024"),
#undef HEADS
#undef HEAD
    {"use_contrastive", T_BOOL, F(use_contrastive), "True", NULL, NULL},
    {"pass_text_to_aux", T_BOOL, F(pass_text_to_aux), "True", NULL, NULL},
    {"freeze_task_token", T_BOOL, F(freeze_task_token), "False", NULL, NULL},
    {"teacher_embeddings", T_STR, F(teacher_embeddings), "", NULL, NULL},
    // ours
    {"recipe", T_STR, F(recipe), "", NULL, NULL},
    {"resume", T_OPTPATH, F(resume_path), "", NULL, NULL},
    {"skip_bad_records", T_BOOL, F(skip_bad_records), "False", NULL, NULL},
    {"loss_reduction", T_ENUM, F(loss_reduction), "token_mean", "token_mean|micro_mean", NULL},
    {"zero", T_INT, F(zero_stage), "0", NULL, NULL},
};
#undef F
enum { N_OPTS = sizeof OPTS / sizeof *OPTS };
_Static_assert(N_OPTS <= sizeof(((TrainArgs *)0)->source), "TrainArgs.source too small");

static const Opt *find_opt(const char *name) {
    for (int i = 0; i < N_OPTS; i++)
        if (strcmp(OPTS[i].name, name) == 0) return &OPTS[i];
    return NULL;
}

// ---------------------------------------------------------------- recipes

typedef struct {
    const char *name, *description;
    Arch arch;                  // the architecture upstream's script trains
    bool predictors;
    const char *const *values;  // "flag=value", NULL-terminated
} Recipe;

// Upstream scripts: haotian-liu/LLaVA scripts/v1_5/{pretrain,finetune}.sh, Q-Future/Q-Instruct
// scripts/mplug_owl_2/{mix,after}_q_instruct.sh, SHI-Labs/OLA-VLM scripts/train/{pretrain,vpt,finetune}.sh.
// Their flags for this backend's precision, DeepSpeed, checkpointing, workers and loggers are left
// out (they would only produce notes). Global batch on one process = per-device x accumulation.
#define LLAVA_VISION "mm_projector_type=mlp2x_gelu", "mm_vision_select_layer=-2", "mm_use_im_start_end=False", \
                     "mm_use_im_patch_token=False"
#define COMMON "num_train_epochs=1", "weight_decay=0.0", "warmup_ratio=0.03", "lr_scheduler_type=cosine", \
               "logging_steps=1", "evaluation_strategy=no", "save_strategy=steps"
static const char *const R_LLAVA_PT[] = {"version=plain", LLAVA_VISION, COMMON, "tune_mm_mlp_adapter=True",
    "per_device_train_batch_size=16", "gradient_accumulation_steps=16", "learning_rate=1e-3",
    "model_max_length=2048", "save_steps=24000", "save_total_limit=1", NULL};
static const char *const R_LLAVA_IFT[] = {"version=v1", LLAVA_VISION, COMMON, "image_aspect_ratio=pad",
    "group_by_modality_length=True", "per_device_train_batch_size=16", "gradient_accumulation_steps=8",
    "learning_rate=2e-5", "model_max_length=2048", "save_steps=50000", "save_total_limit=1", NULL};
static const char *const R_QINSTRUCT[] = {"version=v1", COMMON, "image_aspect_ratio=pad",
    "group_by_modality_length=True", "per_device_train_batch_size=16", "gradient_accumulation_steps=8",
    "learning_rate=2e-5", "model_max_length=2048", "save_steps=800", "save_total_limit=1",
    "tune_visual_abstractor=True", "freeze_vision_model=False", "max_grad_norm=0", NULL};
static const char *const R_OLA_PT[] = {"version=llava_llama_3", LLAVA_VISION, COMMON, "tune_mm_mlp_adapter=True",
    "per_device_train_batch_size=16", "gradient_accumulation_steps=16", "learning_rate=1e-3",
    "model_max_length=4096", "save_steps=200", "save_total_limit=3", NULL};
static const char *const R_OLA_IFT[] = {"version=llava_llama_3", LLAVA_VISION, COMMON, "image_aspect_ratio=pad",
    "group_by_modality_length=True", "per_device_train_batch_size=16", "gradient_accumulation_steps=8",
    "learning_rate=2e-5", "model_max_length=4096", "save_steps=200", "save_total_limit=3", NULL};
#undef LLAVA_VISION
#undef COMMON

static const Recipe RECIPES[] = {
    {"llava15-pt", "LLaVA-1.5 pretraining: projector only, plain template, lr 1e-3, batch 256 = 16 x 16, "
                   "blip_laion_cc_sbu_558k.json", ARCH_LLAVA, false, R_LLAVA_PT},
    {"llava15-ift", "LLaVA-1.5 instruction tuning: projector + LLM, v1, pad, by modality, lr 2e-5, batch 128 = "
                    "16 x 8, llava_v1_5_mix665k.json, --pretrain_mm_mlp_adapter from PT", ARCH_LLAVA, false, R_LLAVA_IFT},
    {"qinstruct-mix", "Q-Instruct (mix) on mPLUG-Owl2: the whole model, v1, pad, by modality, lr 2e-5, batch 128 "
                      "= 16 x 8, Q-Instruct + llava_v1_5_mix665k, no clipping", ARCH_MPLUG_OWL2, false, R_QINSTRUCT},
    {"qinstruct-after", "Q-Instruct (after) on mPLUG-Owl2: as mix, on Q-Instruct's cleaned_labels.json alone",
     ARCH_MPLUG_OWL2, false, R_QINSTRUCT},
    {"ola-pt", "OLA-VLM pretraining: projector + embedding predictors (depth/seg/gen losses), llava_llama_3, lr "
               "1e-3, batch 256 = 16 x 16, max len 4096", ARCH_LLAVA, true, R_OLA_PT},
    {"ola-vpt", "OLA-VLM visual pretraining: projector + LLM (upstream's script leaves vision frozen), "
                "llava_llama_3, pad, lr 2e-5, batch 128 = 16 x 8, ALLaVA-Caption", ARCH_LLAVA, false, R_OLA_IFT},
    {"ola-ift", "OLA-VLM instruction tuning: projector + LLM, llava_llama_3, pad, lr 2e-5, batch 128 = 16 x 8, "
                "llava_v1_5_mix665k", ARCH_LLAVA, false, R_OLA_IFT},
};
enum { N_RECIPES = sizeof RECIPES / sizeof *RECIPES };

const char *const *train_recipe_names(void) {
    static const char *names[N_RECIPES + 1];
    for (int i = 0; i < N_RECIPES; i++) names[i] = RECIPES[i].name;
    return names;
}

static const Recipe *find_recipe(const char *name) {
    for (int i = 0; i < N_RECIPES; i++)
        if (strcmp(RECIPES[i].name, name) == 0) return &RECIPES[i];
    return NULL;
}

const char *train_recipe_description(const char *name) {
    const Recipe *r = find_recipe(name);
    return r ? r->description : NULL;
}

// ---------------------------------------------------------------- values

static int bad(const Opt *o, const char *fmt, const char *value) {
    char rec[80];
    snprintf(rec, sizeof rec, "--%s", o->name);
    return vlm_fail(VLM_ERR_INPUT, NULL, rec, fmt, value);
}

// HfArgumentParser's string_to_bool
static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"yes", "true", "t", "y", "1"}, *const no[] = {"no", "false", "f", "n", "0"};
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

static int choice_index(const char *choices, const char *v) {
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (strlen(v) == n && strncmp(p, v, n) == 0) return i;
        p = end ? end + 1 : p + n;
    }
    return -1;
}

// Splits a --data_path value on commas and whitespace, appending to the list.
static int add_paths(TrainArgs *a, const Opt *o, const char *v) {
    const char *p = v;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        size_t n = strcspn(p, ", \t\n");
        if (a->n_data_path >= TRAIN_MAX_DATA) return bad(o, "more than 16 data files ('%s')", v);
        if (n >= TRAIN_PATH_MAX) return bad(o, "path too long: '%s'", v);
        memcpy(a->data_path[a->n_data_path], p, n);
        a->data_path[a->n_data_path++][n] = '\0';
        p += n;
    }
    return VLM_OK;
}

static int set_value(TrainArgs *a, const Opt *o, const char *v) {
    char *field = (char *)a + o->offset, *end;
    switch (o->type) {
    case T_BOOL: {
        bool b;
        if (parse_bool(v, &b) != 0) return bad(o, "'%s' is not a boolean (True/False, true/false, yes/no, 1/0)", v);
        *(bool *)field = b;
        return VLM_OK;
    }
    case T_INT:
    case T_LONG: {
        long x;
        if (strcmp(v, "None") == 0 && strcmp(o->def, "None") == 0) {
            x = -1;
        } else {
            errno = 0;
            x = strtol(v, &end, 10);
            if (!*v || *end || errno) return bad(o, "'%s' is not an integer", v);
            if (o->type == T_INT && (x > 2147483647L || x < -2147483647L)) return bad(o, "'%s' is out of range", v);
        }
        if (o->type == T_INT) *(int *)field = (int)x;
        else *(long *)field = x;
        return VLM_OK;
    }
    case T_DOUBLE: {
        double x;
        if (strcmp(v, "None") == 0 && strcmp(o->def, "None") == 0) {
            x = -1.0;
        } else {
            x = strtod(v, &end);
            if (!*v || *end || !isfinite(x)) return bad(o, "'%s' is not a finite number", v);
        }
        *(double *)field = x;
        return VLM_OK;
    }
    case T_ENUM: {
        int i = choice_index(o->choices, v);
        if (i < 0) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "--%s: '%s' is not one of %s", o->name, v, o->choices);
        *(int *)field = i;
        return VLM_OK;
    }
    case T_STR:
    case T_OPTPATH:
        if (o->choices && choice_index(o->choices, v) < 0)
            return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "--%s: '%s' is not supported (one of %s)", o->name, v,
                            o->choices);
        if (strlen(v) >= o->size) return bad(o, "value too long: '%s'", v);
        strcpy(field, v);
        if (o->type == T_OPTPATH) a->resume = true;
        return VLM_OK;
    case T_LIST:
        return add_paths(a, o, v);
    }
    return VLM_OK;
}

// ---------------------------------------------------------------- parsing

static void note(TrainArgs *a, const char *fmt, const char *x, const char *y) {
    size_t n = strlen(a->notes);
    if (n + 1 < sizeof a->notes) snprintf(a->notes + n, sizeof a->notes - n, fmt, x, y);
}

static int levenshtein(const char *s, const char *t) {
    size_t n = strlen(t);
    int row[128];
    if (n >= 128) return 1000;
    for (size_t j = 0; j <= n; j++) row[j] = (int)j;
    for (size_t i = 1; s[i - 1]; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= n; j++) {
            int up = row[j], best = diag + (s[i - 1] != t[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up, row[j] = best;
        }
    }
    return row[n];
}

const char *train_args_closest(const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int i = 0; i < N_OPTS; i++) {
        int d = levenshtein(name, OPTS[i].name);
        if (d < bd) bd = d, best = OPTS[i].name;
    }
    return best;
}

void train_args_trainable(const TrainArgs *a, bool t[MODULE_COUNT]) {
    t[MODULE_VISION] = (a->unfreeze_mm_vision_tower || !a->freeze_vision_model) && !a->tune_mm_mlp_adapter;
    t[MODULE_PROJECTOR] = !a->freeze_mm_mlp_adapter;
    t[MODULE_LLM] = !a->tune_mm_mlp_adapter && !a->freeze_backbone && !a->lora_enable;
    // LoRA: PEFT freezes the LLM and trains its adapters (the projector, made after get_peft_model, trains)
    t[MODULE_LORA] = a->lora_enable && !a->tune_mm_mlp_adapter;
    // upstream creates the predictors after freezing the model (requires_grad True); freeze_task_token is refused
    t[MODULE_OLA] = a->needs_embedding_predictors;
}

void train_args_defaults(TrainArgs *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < N_OPTS; i++) {
        int rc = set_value(a, &OPTS[i], OPTS[i].def);
        (void)rc;  // the table's defaults parse
        a->source[i] = ARG_DEFAULT;
    }
    a->resume = false;
    train_args_trainable(a, a->trainable);
}

typedef struct {
    int opt;
    const char *value;
} Assign;

static bool active(const TrainArgs *a, const Opt *o) {
    const char *field = (const char *)a + o->offset;
    switch (o->type) {
    case T_BOOL: return *(const bool *)field;
    case T_ENUM: return *(const int *)field != 0;
    case T_STR: return field[0] && strcmp(field, "none") != 0;
    default: return true;
    }
}

// zero_optimization.stage of a DeepSpeed config, unless --zero is given.
static int deepspeed_stage(TrainArgs *a, const json_t *j) {
    const json_t *stage = json_object_get(json_object_get(j, "zero_optimization"), "stage");
    if (!stage || a->source[find_opt("zero") - OPTS] == ARG_FLAG) return VLM_OK;
    if (!json_is_integer(stage) || json_integer_value(stage) < 0 || json_integer_value(stage) > 3)
        return vlm_fail(VLM_ERR_INPUT, a->deepspeed, "zero_optimization.stage", "expected 0, 1, 2 or 3");
    a->zero_stage = (int)json_integer_value(stage);
    char z[16];
    snprintf(z, sizeof z, "%d", a->zero_stage);
    note(a, "--zero %s: from %s (its zero_optimization.stage)\n", z, a->deepspeed);
    return VLM_OK;
}

// Whether upstream's run clips: under DeepSpeed, HF Trainer's max_grad_norm
// reaches the optimizer only through the config's "gradient_clipping": "auto"
// (a number is used as it is; no key: DeepSpeed does not clip). So a
// --deepspeed file that exists decides --max_grad_norm unless the flag is given.
static int deepspeed_clipping(TrainArgs *a) {
    if (!a->deepspeed[0] || !file_exists(a->deepspeed)) return VLM_OK;
    json_error_t err;
    json_t *j = vlm_json_load_file(a->deepspeed, 0, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        return vlm_fail(VLM_ERR_INPUT, a->deepspeed, "--deepspeed", "not a JSON object (line %d: %s)", err.line, err.text);
    }
    const json_t *clip = json_object_get(j, "gradient_clipping");
    double value = a->max_grad_norm;
    int rc = VLM_OK;
    if (!clip) value = 0;
    else if (json_is_number(clip)) value = json_number_value(clip);
    else if (!(json_is_string(clip) && strcmp(json_string_value(clip), "auto") == 0))
        rc = vlm_fail(VLM_ERR_INPUT, a->deepspeed, "gradient_clipping", "expected a number or \"auto\"");
    rc = rc == VLM_OK ? deepspeed_stage(a, j) : rc;
    json_decref(j);
    if (rc != VLM_OK || a->source[find_opt("max_grad_norm") - OPTS] == ARG_FLAG || value == a->max_grad_norm) return rc;
    char v[32];
    snprintf(v, sizeof v, "%g", value);
    note(a, "--max_grad_norm %s: from %s (its gradient_clipping; none means DeepSpeed clips nothing)\n", v, a->deepspeed);
    a->max_grad_norm = value;
    a->source[find_opt("max_grad_norm") - OPTS] = ARG_FLAG;
    return VLM_OK;
}

static int validate(TrainArgs *a) {
#define NEED(cond, flag, ...) \
    if (!(cond)) return vlm_fail(VLM_ERR_INPUT, NULL, "--" flag, __VA_ARGS__)
    NEED(a->learning_rate >= 0, "learning_rate", "must be >= 0, got %g", a->learning_rate);
    NEED(a->zero_stage >= 0 && a->zero_stage <= 3, "zero", "is a ZeRO stage: 0, 1, 2 or 3, got %d", a->zero_stage);
    NEED(a->ddp_timeout > 0, "ddp_timeout", "must be > 0 seconds, got %ld", a->ddp_timeout);
    NEED(a->mm_projector_lr >= 0 || a->mm_projector_lr == -1.0, "mm_projector_lr", "must be >= 0, got %g",
         a->mm_projector_lr);
    NEED(a->weight_decay >= 0, "weight_decay", "must be >= 0, got %g", a->weight_decay);
    NEED(a->adam_beta1 >= 0 && a->adam_beta1 < 1, "adam_beta1", "must be in [0, 1), got %g", a->adam_beta1);
    NEED(a->adam_beta2 >= 0 && a->adam_beta2 < 1, "adam_beta2", "must be in [0, 1), got %g", a->adam_beta2);
    NEED(a->adam_epsilon >= 0, "adam_epsilon", "must be >= 0, got %g", a->adam_epsilon);
    NEED(a->max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0: no clipping), got %g", a->max_grad_norm);
    NEED(a->warmup_ratio >= 0 && a->warmup_ratio <= 1, "warmup_ratio", "must be in [0, 1], got %g", a->warmup_ratio);
    NEED(a->warmup_steps >= 0, "warmup_steps", "must be >= 0, got %ld", a->warmup_steps);
    NEED(a->num_train_epochs >= 0, "num_train_epochs", "must be >= 0, got %g", a->num_train_epochs);
    NEED(a->max_steps > 0 || a->num_train_epochs > 0, "num_train_epochs", "must be > 0 when --max_steps is not set");
    NEED(a->per_device_train_batch_size >= 1, "per_device_train_batch_size", "must be >= 1, got %d",
         a->per_device_train_batch_size);
    NEED(a->per_device_eval_batch_size >= 1, "per_device_eval_batch_size", "must be >= 1, got %d",
         a->per_device_eval_batch_size);
    NEED(a->gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1, got %d",
         a->gradient_accumulation_steps);
    NEED(a->model_max_length >= 1, "model_max_length", "must be >= 1, got %d", a->model_max_length);
    NEED(a->logging_steps > 0 && (a->logging_steps < 1 || a->logging_steps == (long)a->logging_steps),
         "logging_steps", "must be an integer >= 1 or a ratio in (0, 1), got %g", a->logging_steps);
    NEED(a->save_strategy != INTERVAL_STEPS ||
             (a->save_steps > 0 && (a->save_steps < 1 || a->save_steps == (long)a->save_steps)),
         "save_steps", "must be an integer >= 1 or a ratio in (0, 1), got %g", a->save_steps);
    NEED(a->save_total_limit >= -1, "save_total_limit", "must be >= 0, got %d", a->save_total_limit);
    NEED(a->dataloader_num_workers >= 0, "dataloader_num_workers", "must be >= 0, got %d", a->dataloader_num_workers);
    NEED(!a->mm_use_im_start_end, "mm_use_im_start_end",
         "True is not supported (LLaVA-1.5 and every recipe here use False: no <im_start>/<im_end> tokens)");
    NEED(!(a->bf16 && a->fp16), "fp16", "and --bf16 cannot both be True");
    NEED(a->bits == 16, "bits",
         "%d-bit (quantised, QLoRA's bitsandbytes) training is not supported: use 16 (the frozen base is held in float32 "
         "here)", a->bits);
    NEED(a->lora_r >= 1, "lora_r", "must be >= 1, got %d", a->lora_r);
    NEED(a->lora_alpha > 0, "lora_alpha", "must be > 0, got %d", a->lora_alpha);
    NEED(a->lora_dropout >= 0 && a->lora_dropout < 1, "lora_dropout", "must be in [0, 1), got %g", a->lora_dropout);
    NEED(a->use_contrastive, "use_contrastive", "False is not supported (OLA-VLM's released models use the InfoNCE term)");
    NEED(a->pass_text_to_aux, "pass_text_to_aux", "False is not supported (upstream's default True is)");
    NEED(!a->freeze_task_token, "freeze_task_token", "True is not supported (the task tokens train with the predictors)");
    NEED(a->output_dir[0], "output_dir", "is required (checkpoints and the trained model go there)");
    int v = train_args_source(a, "version");
    NEED(v == ARG_DEFAULT || template_find(a->version) != NULL, "version", "unknown template '%s' (known: %s)",
         a->version, template_names());
#undef NEED
    return VLM_OK;
}

int train_args_parse(TrainArgs *a, int argc, char **argv) {
    train_args_defaults(a);
    Assign *as = calloc(argc > 0 ? (size_t)argc * 2 : 1, sizeof *as);
    if (!as) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    int n = 0, rc = VLM_OK;
    char name[128];
    for (int i = 0; i < argc && rc == VLM_OK; i++) {
        const char *arg = argv[i];
        if (!str_has_prefix(arg, "--") || !arg[2]) {
            rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "unexpected argument '%s' (every option is a --flag)", arg);
            break;
        }
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name) len = sizeof name - 1;
        for (size_t k = 0; k < len; k++) name[k] = arg[2 + k] == '-' ? '_' : arg[2 + k];  // --learning-rate too
        name[len] = '\0';
        const Opt *o = find_opt(name);
        const char *value = eq ? eq + 1 : NULL;
        bool has_next = i + 1 < argc && !str_has_prefix(argv[i + 1], "--");
        if (!o && str_has_prefix(name, "no_") && (o = find_opt(name + 3)) && o->type == T_BOOL &&
            strcmp(o->def, "True") == 0) {
            // HfArgumentParser's --no_X for a boolean whose default is True
            if (value) {
                rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "--%s takes no value", name);
                break;
            }
            as[n++] = (Assign){(int)(o - OPTS), "False"};
            continue;
        }
        if (!o) {
            rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "unknown flag --%s (did you mean --%s?)", name,
                          train_args_closest(name));
            break;
        }
        int idx = (int)(o - OPTS);
        if (o->type == T_BOOL || o->type == T_OPTPATH) {  // nargs="?": a value only if one follows
            if (!value && has_next) value = argv[++i];
            as[n++] = (Assign){idx, value ? value : (o->type == T_BOOL ? "True" : "")};
        } else if (o->type == T_LIST) {  // nargs="+", and repeated flags add files
            if (value) as[n++] = (Assign){idx, value};
            while (i + 1 < argc && !str_has_prefix(argv[i + 1], "--")) as[n++] = (Assign){idx, argv[++i]};
            if (n == 0 || as[n - 1].opt != idx) rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "--%s needs a value", name);
        } else {
            if (!value && i + 1 < argc && !str_has_prefix(argv[i + 1], "--")) value = argv[++i];
            if (!value) rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "--%s needs a value", name);
            else as[n++] = (Assign){idx, value};
        }
    }
    // the recipe first, wherever it was given; then every flag on top of it
    const Opt *recipe_opt = find_opt("recipe");
    for (int k = 0; k < n && rc == VLM_OK; k++)
        if (&OPTS[as[k].opt] == recipe_opt) rc = set_value(a, recipe_opt, as[k].value);
    const Recipe *r = NULL;
    if (rc == VLM_OK && a->recipe[0]) {
        r = find_recipe(a->recipe);
        if (!r) {
            char list[256] = "";
            for (int i = 0; i < N_RECIPES; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", RECIPES[i].name);
            rc = vlm_fail(VLM_ERR_INPUT, NULL, "--recipe", "unknown recipe '%s' (known: %s)", a->recipe, list);
        }
        for (const char *const *v = r ? r->values : NULL; rc == VLM_OK && v && *v; v++) {
            const char *eq = strchr(*v, '=');
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(eq - *v), *v);
            const Opt *o = find_opt(key);
            rc = set_value(a, o, eq + 1);
            a->source[o - OPTS] = ARG_RECIPE;
        }
        if (r) a->recipe_arch = r->arch, a->has_recipe_arch = true, a->needs_embedding_predictors = r->predictors;
        if (r && r->values == R_QINSTRUCT)
            note(a, "%s%s\n", "--max_grad_norm 0 (recipe): upstream's run clips nothing, as DeepSpeed's zero3.json has no ",
                 "gradient_clipping and HF's max_grad_norm only reaches DeepSpeed through it");
    }
    bool data_from_flag = false;
    for (int k = 0; k < n && rc == VLM_OK; k++) {
        const Opt *o = &OPTS[as[k].opt];
        if (o == recipe_opt) {
            a->source[as[k].opt] = ARG_FLAG;
            continue;
        }
        if (o->type == T_LIST && !data_from_flag) a->n_data_path = 0, data_from_flag = true;
        rc = set_value(a, o, as[k].value);
        a->source[as[k].opt] = ARG_FLAG;
    }
    free(as);
    if (rc == VLM_OK) rc = validate(a);
    if (rc == VLM_OK) rc = deepspeed_clipping(a);
    if (rc != VLM_OK) return rc;

    for (int i = 0; i < N_OPTS; i++)
        if (OPTS[i].note && a->source[i] != ARG_DEFAULT && active(a, &OPTS[i]))
            note(a, "--%s: %s\n", OPTS[i].name, OPTS[i].note);
    if (a->dataloader_num_workers > 0 && a->source[find_opt("dataloader_num_workers") - OPTS] != ARG_DEFAULT)
        note(a, "--%s: used as the loader's decode-ahead threads%s\n", "dataloader_num_workers", "");
    if (a->source[find_opt("mode") - OPTS] == ARG_FLAG) a->needs_embedding_predictors = true;  // OLA-VLM's pretrain.sh
    train_args_trainable(a, a->trainable);
    return VLM_OK;
}

int train_args_source(const TrainArgs *a, const char *name) {
    const Opt *o = find_opt(name);
    return o ? a->source[o - OPTS] : -1;
}

// ---------------------------------------------------------------- printing

static void print_value(const TrainArgs *a, const Opt *o, FILE *f) {
    const char *field = (const char *)a + o->offset;
    switch (o->type) {
    case T_BOOL: fputs(*(const bool *)field ? "True" : "False", f); break;
    case T_INT:
        if (*(const int *)field == -1 && strcmp(o->def, "None") == 0) fputs("None", f);
        else fprintf(f, "%d", *(const int *)field);
        break;
    case T_LONG: fprintf(f, "%ld", *(const long *)field); break;
    case T_DOUBLE:
        if (*(const double *)field == -1.0 && strcmp(o->def, "None") == 0) fputs("None", f);
        else fprintf(f, "%.10g", *(const double *)field);
        break;
    case T_ENUM: {
        int i = *(const int *)field;
        const char *p = o->choices;
        while (i-- > 0) p = strchr(p, '|') + 1;
        fprintf(f, "%.*s", (int)strcspn(p, "|"), p);
        break;
    }
    case T_STR: fputs(field[0] ? field : "None", f); break;
    case T_OPTPATH: fputs(!a->resume ? "no" : field[0] ? field : "latest checkpoint in output_dir", f); break;
    case T_LIST:
        if (!a->n_data_path) fputs("None", f);
        for (int i = 0; i < a->n_data_path; i++) fprintf(f, "%s%s", i ? "," : "", a->data_path[i]);
        break;
    }
}

void train_args_print(const TrainArgs *a, FILE *f) {
    for (int i = 0; i < N_OPTS; i++) {
        fprintf(f, "  %-28s = ", OPTS[i].name);
        print_value(a, &OPTS[i], f);
        if (a->source[i] == ARG_RECIPE) fprintf(f, "  (recipe %s)\n", a->recipe);
        else fprintf(f, "  (%s)\n", a->source[i] == ARG_FLAG ? "flag" : "default");
    }
    fprintf(f, "  %-28s = vision %s, projector %s, language model %s%s\n", "trains",
            a->trainable[MODULE_VISION] ? "yes" : "no", a->trainable[MODULE_PROJECTOR] ? "yes" : "no",
            a->trainable[MODULE_LLM] ? "yes" : "no", a->trainable[MODULE_LORA] ? ", its LoRA adapters yes" : "");
    int world = dist_world();  // the processes mpirun started (1 before dist_init)
    fprintf(f, "  %-28s = %d x %d x %d rank(s) = %d per optimizer step\n", "global batch", a->per_device_train_batch_size,
            a->gradient_accumulation_steps, world, a->per_device_train_batch_size * a->gradient_accumulation_steps * world);
    if (a->needs_embedding_predictors)
        fprintf(f, "  %-28s = OLA-VLM's embedding predictors and task tokens train (distillation losses)\n", "ola");
}

int train_args_ola_config(const TrainArgs *a, int llm_layers, OlaConfig *o) {
    const int heads[OLA_TASKS][OLA_HEAD_FLAGS] = {
        {a->depth_head[0], a->depth_head[1], a->depth_head[2], a->depth_head[3], a->depth_head[4], a->depth_head[5]},
        {a->seg_head[0], a->seg_head[1], a->seg_head[2], a->seg_head[3], a->seg_head[4], a->seg_head[5]},
        {a->img_head[0], a->img_head[1], a->img_head[2], a->img_head[3], a->img_head[4], a->img_head[5]}};
    return ola_config_from_flags(o, a->mode, a->layer_indices, a->loss_weights, a->num_task_tokens,
                                 a->contrastive_loss_weight, llm_layers, heads);
}
