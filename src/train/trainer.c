// The training loop, see trainer.h.
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>    // isatty

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/progress.h"  // format_duration
#include "core/timer.h"
#include "data/loader.h"
#include "dist/dist.h"
#include "model/half_store.h"
#include "model/lora.h"
#include "model/open.h"
#include "text/template.h"
#include "train/memory_plan.h"
#include "train/plot.h"
#include "train/run_log.h"
#include "train/schedule.h"
#include "train/step.h"
#include "train/train_checkpoint.h"
#include "train/lora_train.h"
#include "train/train_extension.h"
#include "train/zero.h"

// One micro-batch copied out of the loader (whose batch is valid only until
// the next one), so a step can count the targets of all of them first.
typedef struct {
    int32_t *ids, *labels;
    int *lengths;
    uint64_t *records;
    float *pixels;
    int B, T, n_images;
    long tokens;  // spliced tokens (text + image features, truncated)
    void *aux;    // the model extension's inputs (train_extension.h), NULL: none
} MicroBuf;

typedef struct {
    const TrainArgs *a;
    Dataset data;
    Tokenizer tok;
    const Template *tpl;
    LlavaModel m;
    const TrainExtension *ext;   // the training side of the model's extension, NULL: none
    Optimizer opt;
    Loader *loader;
    TrainPlan plan;
    Schedule sched;
    StepConfig step_cfg;
    MicroBuf *micro;
    MicroBatch *mb;
    int pixels_per_image;
    char *model_dir;             // where the model came from (preprocessor_config.json)
    json_t *args_json;
    int world, rank;             // data parallel (dist.h); rank 0 writes the logs, the model and the checkpoints' shared files
    int lock_fd;                 // output_dir's lock, held by rank 0
    ModelLayout layout;          // the starting model's
    HalfStore *half;             // the frozen base's 16-bit layers (LoRA with --bf16 / --fp16), NULL: none
    bool have_tok, have_data, have_model, have_opt, have_plan;
} Run;

// ---------------------------------------------------------------------------
// setup

// A readable list of the sample ids of a micro-batch, for error messages.
static void sample_ids(const Dataset *d, const MicroBuf *mb, char *out, size_t size) {
    size_t at = 0;
    out[0] = '\0';
    for (int b = 0; b < mb->B && at + 64 < size; b++) {
        int file;
        size_t rec;
        dataset_locate(d, (size_t)mb->records[b], &file, &rec);
        json_t *j = NULL;
        char id[128] = "?";
        if (dataset_file_record(&d->files[file], rec, &j) == VLM_OK) {
            const json_t *v = json_object_get(j, "id");
            if (vlm_json_is_number(v)) vlm_json_number_text(v, id, sizeof id);  // an integer of any size
            else if (json_is_string(v)) snprintf(id, sizeof id, "\"%s\"", json_string_value(v));
        }
        json_decref(j);
        at += (size_t)snprintf(out + at, size - at, "%s%s (%s record %zu)", b ? ", " : "", id, d->files[file].path, rec);
    }
}

static int open_data(Run *r) {
    const TrainArgs *a = r->a;
    if (a->n_data_path == 0) return vlm_fail(VLM_ERR_INPUT, NULL, "--data_path", "no training data given");
    for (int i = 0; i < a->n_data_path; i++) {
        int rc = dataset_add(&r->data, a->data_path[i], a->image_folder[0] ? a->image_folder : NULL);
        if (rc != VLM_OK) return rc;
    }
    r->have_data = true;
    return VLM_OK;
}

static int open_tokenizer(Run *r, const char *dir) {
    r->tpl = template_find(r->a->version);
    if (!r->tpl)
        return vlm_fail(VLM_ERR_INPUT, NULL, "--version", "unknown template '%s' (known: %s)", r->a->version,
                        template_names());
    int rc = tokenizer_load(&r->tok, dir);
    if (rc != VLM_OK) return vlm_fail_context(rc, "the tokenizer of the model (AutoTokenizer.from_pretrained)");
    r->have_tok = true;
    return template_prepare_tokenizer(r->tpl, &r->tok);
}

// The checkpoint to continue from: --resume [PATH], or the latest in
// output_dir (LLaVA's train.py resumes whenever one is there). NULL: none.
static char *resume_point(const TrainArgs *a) {
    if (a->resume && a->resume_path[0]) return strdup(a->resume_path);
    char *latest = train_checkpoint_latest(a->output_dir);
    if (latest && !a->resume) log_msg(LOG_INFO, "%s holds %s: resuming from it, as LLaVA's train.py does", a->output_dir, latest);
    return latest;
}

_Static_assert(RUN_LOG_MAX_PARTS == EXT_MAX_PARTS, "the log holds every part of an auxiliary loss");

// Each extension lays the model out for the stage (adds or drops its parameters).
static int prepare_model(const TrainArgs *a, LlavaParams *p) {
    int rc = VLM_OK;
    for (int i = 0; train_extensions[i] && rc == VLM_OK; i++) rc = train_extensions[i]->prepare_model(a, p);
    return rc;
}

static int open_model(Run *r, const char *resume) {
    const TrainArgs *a = r->a;
    LlavaParams params;
    int rc;
    ModelLayout layout = LAYOUT_HF;
    // a LoRA run's checkpoint holds its adapters (and projector): the base comes from the run's model
    bool adapters = resume && lora_adapter_dir(resume);
    if (resume && !adapters) {
        rc = llava_load_hf(&params, resume);
    } else {
        LlavaOpenOptions o = {
            .vision_tower = a->vision_tower[0] ? a->vision_tower : NULL,
            .projector = a->pretrain_mm_mlp_adapter[0] ? a->pretrain_mm_mlp_adapter : NULL,
            .feature_layer = a->mm_vision_select_layer,
            .feature_full = strcmp(a->mm_vision_select_feature, "cls_patch") == 0,
            .projector_type = strcmp(a->mm_projector_type, "linear") == 0 ? PROJECTOR_LINEAR : PROJECTOR_MLP2X_GELU,
            .seed = (unsigned long long)a->seed,
        };
        rc = llava_open(&params, a->model_name_or_path, &o, &layout);
        if (rc == VLM_OK) log_msg(LOG_INFO, "model: %s (%s)", a->model_name_or_path, llava_layout_name(layout));
    }
    if (rc == VLM_OK) rc = prepare_model(a, &params);
    if (rc == VLM_OK) rc = adapters ? lora_load_adapter(&params, resume) : resume ? VLM_OK : lora_prepare(a, &params);
    if (rc == VLM_OK && adapters) params.cfg.lora.seed = (uint64_t)a->seed;  // the dropout masks' seed, as the run began
    // over an LLM + CLIP + projector (LLaVA's finetune_lora.sh) or an original LLaVA folder, the
    // adapters are saved under LLaVA's own names, for its load_pretrained_model
    params.cfg.lora.original_names = layout == LAYOUT_PARTS || layout == LAYOUT_ORIGINAL;
    r->layout = layout;
    if (rc != VLM_OK) return rc;
    r->model_dir = strdup(a->model_name_or_path);  // its tokenizer and preprocessor files, also when resuming
    int B = a->per_device_train_batch_size, L = a->model_max_length;
    rc = train_memory_check(a, &params);  // before any activation, gradient or moment is allocated
    if (rc != VLM_OK) {
        llava_params_free(&params);
        return rc;
    }
    if (a->has_recipe_arch && params.cfg.arch != a->recipe_arch)
        fprintf(stderr, "note: --recipe %s is upstream's script for %s; this run trains the given %s model with its "
                        "hyperparameters\n", a->recipe, arch_name(a->recipe_arch), arch_name(params.cfg.arch));
    int S = llava_planned_length(&params.cfg, L);
    rc = llava_model_init(&r->m, &params, &(LlavaPlan){B, B, L, S, a->gradient_checkpointing, !a->trainable[MODULE_VISION]});
    if (rc != VLM_OK) return rc;
    r->have_model = true;
    memcpy(r->m.trainable, a->trainable, sizeof r->m.trainable);
    r->m.llm.lora_train = true;  // LoRA's dropout (lora_dropout) while training
    if (a->lora_enable && r->m.params.cfg.arch == ARCH_MPLUG_OWL2 && !a->tune_mm_mlp_adapter && !a->freeze_backbone) {
        // upstream's mplug_owl2/train/train.py calls model.requires_grad_(True) after get_peft_model:
        // the LLM trains in full beside its adapters (its non_lora_trainables.bin holds it)
        r->m.trainable[MODULE_LLM] = true;
        if (r->rank == 0)
            fprintf(stderr, "note: --lora_enable on mPLUG-Owl2: the language model trains in full beside its adapters, "
                            "as upstream's train.py (model.requires_grad_(True) after get_peft_model) does\n");
    }
    r->ext = train_extension_of(&r->m);
    int side = r->m.params.cfg.vision.image_size;
    r->pixels_per_image = 3 * side * side;
    return VLM_OK;
}

static int open_loader(Run *r) {
    const TrainArgs *a = r->a;
    LoaderConfig lc = {
        .data = &r->data, .tpl = r->tpl, .tok = &r->tok, .mask = MASK_SPANS, .max_len = a->model_max_length,
        .batch_size = a->per_device_train_batch_size, .group_by_modality = a->group_by_modality_length,
        // LLaVATrainer: LengthGroupedSampler(world_size = GPUs x gradient_accumulation_steps)
        .group_world = r->world * a->gradient_accumulation_steps, .seed = (uint64_t)a->seed,
        // HF Trainer: LengthGroupedSampler(train_batch_size * gradient_accumulation_steps)
        .group_by_length = a->group_by_length,  // the loader lets group_by_modality win, as upstream
        .length_group_batch = a->per_device_train_batch_size * a->gradient_accumulation_steps,
        .rank = r->rank, .world = r->world,
        .workers = a->dataloader_num_workers > 0 ? a->dataloader_num_workers : 1,
        .bad_records = a->skip_bad_records ? BAD_RECORD_SKIP : BAD_RECORD_STOP};
    lc.prefetch = 2 * lc.workers;
    int rc = llava_preprocessor(&lc.image, &r->m.params.cfg, r->model_dir, strcmp(a->image_aspect_ratio, "pad") == 0);
    if (rc == VLM_OK) rc = loader_open(&r->loader, &lc);
    return rc;
}

static int alloc_micro(Run *r) {
    int A = r->a->gradient_accumulation_steps + 1, B = r->a->per_device_train_batch_size, L = r->a->model_max_length;
    r->micro = vlm_calloc((size_t)A, sizeof(MicroBuf));
    r->mb = vlm_calloc((size_t)A, sizeof(MicroBatch));
    if (!r->micro || !r->mb) return VLM_ERR_FAIL;
    for (int i = 0; i < A; i++) {
        MicroBuf *u = &r->micro[i];
        u->ids = vlm_malloc(sizeof(int32_t) * B * L), u->labels = vlm_malloc(sizeof(int32_t) * B * L);
        u->lengths = vlm_malloc(sizeof(int) * B), u->records = vlm_malloc(sizeof(uint64_t) * B);
        u->pixels = vlm_malloc(sizeof(float) * B * (size_t)r->pixels_per_image);
        if (!u->ids || !u->labels || !u->lengths || !u->records || !u->pixels) return VLM_ERR_FAIL;
        if (r->ext && !(u->aux = r->ext->inputs_new(&r->m.params.cfg, B))) return VLM_ERR_FAIL;
    }
    return VLM_OK;
}

static void free_micro(Run *r) {
    if (!r->micro) return;
    for (int i = 0; i <= r->a->gradient_accumulation_steps; i++) {
        MicroBuf *u = &r->micro[i];
        free(u->ids), free(u->labels), free(u->lengths), free(u->records), free(u->pixels);
        if (r->ext) r->ext->inputs_free(u->aux);
    }
    free(r->micro), free(r->mb);
}

static void close_run(Run *r) {
    free_micro(r);
    if (r->loader) loader_close(r->loader);
    if (r->have_plan) train_plan_free(&r->plan);
    half_store_free(r->half);  // before the optimizer's ZeRO hooks it chains to
    if (r->have_opt) optimizer_free(&r->opt);
    if (r->have_model) llava_model_free(&r->m);
    if (r->have_tok) tokenizer_free(&r->tok);
    if (r->have_data) dataset_close(&r->data);
    json_decref(r->args_json);
    free(r->model_dir);
    dir_unlock(r->lock_fd);
}

// ---------------------------------------------------------------------------
// the loop

// Copies the next loader batch into u; logs the records it skipped.
static int next_micro(Run *r, MicroBuf *u, long *skipped) {
    const Batch *b;
    int rc = loader_next(r->loader, &b);
    if (rc != VLM_OK) return rc;
    for (int i = 0; i < b->n_skipped; i++) log_msg(LOG_WARN, "skipped: %s", b->skipped[i].reason);
    *skipped += b->n_skipped;
    u->B = b->n, u->T = b->T, u->n_images = b->n_images;
    memcpy(u->ids, b->input_ids, sizeof(int32_t) * b->n * b->T);
    memcpy(u->labels, b->labels, sizeof(int32_t) * b->n * b->T);
    memcpy(u->lengths, b->len, sizeof(int) * b->n);
    memcpy(u->records, b->records, sizeof(uint64_t) * b->n);
    memcpy(u->pixels, b->pixel_values, sizeof(float) * (size_t)b->n_images * r->pixels_per_image);
    if (r->ext) {
        rc = r->ext->inputs_read(u->aux, r->a, &r->m.params.cfg, &r->data, b);
        if (rc != VLM_OK) return rc;
    }
    u->tokens = 0;
    for (int i = 0; i < b->n; i++)
        u->tokens += llava_spliced_length(&r->m.params.cfg, b->input_ids + (size_t)i * b->T, b->len[i],
                                          r->step_cfg.max_len);
    return VLM_OK;
}

// save_steps / logging_steps below 1 are a ratio of the total (HF).
static long interval_steps(double v, long total) {
    long n = v < 1 ? (long)ceil(v * (double)total) : (long)v;
    return n < 1 ? 1 : n;
}

// PT (--tune_mm_mlp_adapter True) also leaves DIR/mm_projector.bin, as
// LLaVA's trainer saves it in every checkpoint and at the end: torch.save of
// the model.mm_projector.* tensors in the run's dtype (bf16 under --bf16 True,
// fp16 under --fp16 True), the file finetune.sh's --pretrain_mm_mlp_adapter names.
static int save_projector(const Run *r, const char *dir) {
    if (!r->a->tune_mm_mlp_adapter) return VLM_OK;
    char *path = path_join(dir, "mm_projector.bin");
    DType dtype = r->a->bf16 ? DT_BF16 : r->a->fp16 ? DT_F16 : DT_F32;
    int rc = path ? llava_save_mm_projector(&r->m.params, path, dtype) : VLM_ERR_FAIL;
    if (rc == VLM_OK) log_msg(LOG_INFO, "projector saved to %s", path);
    free(path);
    return rc;
}

static int save_checkpoint(Run *r, long step) {
    const TrainArgs *a = r->a;
    long next = step < r->plan.n_steps ? r->plan.first[step] : r->plan.first[step - 1] + r->plan.count[step - 1];
    TrainState st = {.step = step, .total_steps = r->plan.n_steps, .epoch = (uint64_t)train_plan_epoch(&r->plan, next),
                     .index = (uint64_t)train_plan_batch(&r->plan, next), .seed = (uint64_t)a->seed,
                     .world = r->world};
    char path[TRAIN_PATH_MAX + 64];
    int rc = zero_gather_all(r->opt.zero);  // ZeRO-3: the whole model for rank 0 to write
    if (rc == VLM_OK)
        rc = train_checkpoint_save(a->output_dir, &r->m, &r->opt, &st, r->args_json, r->model_dir, path, sizeof path);
    zero_release_all(r->opt.zero);
    if (rc != VLM_OK || r->rank != 0) return dist_agree(rc, NULL);
    rc = save_projector(r, path);
    if (rc == VLM_OK) rc = train_checkpoint_rotate(a->output_dir, a->save_total_limit > 0 ? a->save_total_limit : 0);
    if (rc == VLM_OK) log_msg(LOG_INFO, "saved %s", path);
    return dist_agree(rc, NULL);
}

// The status line: a bar redrawn in place on a terminal, plain lines otherwise.
// done: the steps this process took in `elapsed` (fewer than step after a resume).
static void show_progress(bool tty, long step, long total, long done, const LogEntry *e, double elapsed) {
    char eta[32];
    format_duration(step < total ? elapsed / (double)done * (double)(total - step) : 0, eta, sizeof eta);
    if (tty) {
        int width = 24, fill = (int)((double)width * (double)step / (double)total);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %ld/%ld loss %.4f lr %.3g %.0f tok/s ETA %s   ", bar, step, total, e->loss, e->lr,
                e->tokens_per_s, eta);
        if (step == total) fputc('\n', stderr);
    } else {
        char parts[160] = "";
        if (e->n_parts) {
            size_t at = (size_t)snprintf(parts, sizeof parts, " (text %.4f", e->text_loss);
            for (int p = 0; p < e->n_parts && at < sizeof parts; p++)
                at += (size_t)snprintf(parts + at, sizeof parts - at, " %s %.4f", e->part_names[p], e->part_loss[p]);
            if (at + 1 < sizeof parts) parts[at] = ')', parts[at + 1] = '\0';
        }
        fprintf(stderr, "step %ld/%ld loss %.4f%s lr %.3g grad_norm %.3f %.0f tok/s ETA %s\n", step, total, e->loss, parts,
                e->lr, e->grad_norm, e->tokens_per_s, eta);
    }
    fflush(stderr);
}

// OUTPUT_DIR/training.png: loss and learning rate of the whole run.
static int plot_run(const RunLog *log, const char *output_dir) {
    if (log->n == 0) return VLM_OK;
    double *x = vlm_malloc(sizeof(double) * 3 * (size_t)log->n);
    char *png = path_join(output_dir, "training.png");
    int rc = x && png ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) {
        double *loss = x + log->n, *lr = loss + log->n;
        for (int i = 0; i < log->n; i++)
            x[i] = (double)log->entries[i].step, loss[i] = log->entries[i].loss, lr[i] = log->entries[i].lr;
        rc = plot_training_png(png, x, loss, lr, log->n);
        if (rc == VLM_OK) log_msg(LOG_INFO, "plot: %s", png);
    }
    free(x), free(png);
    return rc;
}

static int train_loop(Run *r, long start) {
    const TrainArgs *a = r->a;
    long total = r->plan.n_steps, log_every = interval_steps(a->logging_steps, total);
    long save_every = interval_steps(a->save_steps, total), skipped = 0;
    RunLog log;
    const Extension *ext = r->m.ext && r->m.ext->has_loss ? r->m.ext : NULL;  // its parts are logged
    int n_parts = ext ? ext->n_parts : 0;
    bool main_rank = r->rank == 0;  // the one that writes metrics.jsonl and the plot
    int rc = main_rank ? run_log_open(&log, a->output_dir, start > 0 ? start : -1, n_parts, ext ? ext->part_names : NULL)
                       : VLM_OK;
    rc = dist_agree(rc, NULL);
    if (rc != VLM_OK) {
        if (main_rank) run_log_close(&log);
        return rc;
    }
    bool tty = isatty(fileno(stderr));
    double t0 = timer_now_s(), t_log = t0, loss_sum = 0, text_sum = 0, part_sum[EXT_MAX_PARTS] = {0};
    long tokens = 0, targets = 0, n_loss = 0;
    for (long s = start; s < total && rc == VLM_OK; s++) {
        int n = 0;
        for (int i = 0; i < r->plan.count[s] && rc == VLM_OK; i++) {
            MicroBuf *u = &r->micro[n];
            rc = next_micro(r, u, &skipped);
            if (rc != VLM_OK || u->B == 0) continue;  // every record of it skipped
            r->mb[n++] = (MicroBatch){.input_ids = u->ids, .labels = u->labels, .lengths = u->lengths, .B = u->B,
                                      .T_text = u->T, .pixels = u->pixels, .n_images = u->n_images,
                                      .aux_inputs = u->aux,
                                      .index = (uint64_t)(r->plan.first[s] + i) * (uint64_t)r->world + (uint64_t)r->rank};
            tokens += u->tokens;
        }
        rc = dist_agree(rc, NULL);  // a rank whose data failed stops every rank before the step
        if (rc != VLM_OK) break;
        StepResult res = {.bad_micro = -1};
        double lambda = schedule_lambda(&r->sched, s);
        rc = train_step(&r->m, &r->opt, &r->step_cfg, r->mb, n, lambda, &res);
        if (rc != VLM_OK) {
            char ids[2048] = "";
            if (res.bad_micro >= 0) sample_ids(&r->data, &r->micro[res.bad_micro], ids, sizeof ids);
            rc = vlm_fail_context(rc, "step %ld of %ld%s%s (nothing was updated; the checkpoints on disk are intact)",
                                  s + 1, total, ids[0] ? ", samples " : "", ids);
            break;
        }
        if (res.skipped) log_msg(LOG_WARN, "step %ld: no target in any sample: no update", s + 1);
        else loss_sum += res.loss, text_sum += res.text_loss, n_loss++;
        for (int p = 0; p < n_parts; p++) part_sum[p] += res.part_loss[p];
        targets += res.n_targets;
        long step = s + 1;
        if (step % log_every == 0 || step == total) {
            rc = dist_sum_long(&tokens, 1);  // every rank's: the run's throughput
            double now = timer_now_s();
            LogEntry e = {.step = step, .epoch = (double)(r->plan.first[s] + r->plan.count[s]) / (double)r->plan.len_dataloader,
                          .loss = n_loss ? loss_sum / (double)n_loss : NAN, .lr = res.lr, .grad_norm = res.grad_norm,
                          .targets = targets, .tokens_per_s = (double)tokens / (now - t_log), .elapsed_s = now - t0,
                          .n_parts = n_parts, .text_loss = n_loss ? text_sum / (double)n_loss : NAN};
            for (int p = 0; p < n_parts; p++)
                e.part_names[p] = ext->part_names[p], e.part_loss[p] = n_loss ? part_sum[p] / (double)n_loss : NAN, part_sum[p] = 0;
            if (main_rank) {
                rc = run_log_append(&log, &e);
                show_progress(tty, step, total, step - start, &e, now - t0);
            }
            loss_sum = 0, text_sum = 0, n_loss = 0, tokens = 0, targets = 0, t_log = now;
        }
        bool epoch_end = step < total && train_plan_epoch(&r->plan, r->plan.first[step]) >
                                             train_plan_epoch(&r->plan, r->plan.first[s]);
        bool save = (a->save_strategy == INTERVAL_STEPS && step % save_every == 0) ||
                    (a->save_strategy == INTERVAL_EPOCH && epoch_end) || (a->save_strategy != INTERVAL_NO && step == total);
        rc = dist_agree(rc, NULL);  // rank 0's log
        if (rc == VLM_OK && save) rc = save_checkpoint(r, step);
    }
    if (skipped) log_msg(LOG_WARN, "%ld bad records skipped (listed above)", skipped);
    if (main_rank && rc == VLM_OK) rc = plot_run(&log, a->output_dir);
    if (main_rank) run_log_close(&log);
    return rc;
}

// The final model in output_dir itself (llava-hf layout, tokenizer and
// preprocessor files beside it), as upstream saves it at the end.
static int save_final(Run *r) {
    int rc = zero_gather_all(r->opt.zero);  // ZeRO-3: the whole model for rank 0 to write
    if (r->rank == 0) {  // every rank holds the same parameters
        // a LoRA run leaves what LLaVA's train.py does: the adapters (PEFT's save_pretrained) and
        // non_lora_trainables.bin; `vlm lora merge` makes the full model
        rc = r->m.params.cfg.lora.r > 0 ? lora_save_adapter(&r->m.params, r->a->output_dir, r->m.trainable, r->model_dir)
                                        : llava_save_hf(&r->m.params, r->a->output_dir);
        if (rc == VLM_OK && r->m.params.cfg.lora.r > 0) rc = lora_write_base_config(r->a, r->model_dir, r->layout, r->m.params.cfg.vision.hidden, r->a->output_dir);
        if (rc == VLM_OK) rc = train_copy_model_files(r->model_dir, r->a->output_dir);
        if (rc == VLM_OK) rc = save_projector(r, r->a->output_dir);
        if (rc == VLM_OK) log_msg(LOG_INFO, "model saved to %s", r->a->output_dir);
    }
    return dist_agree(rc, NULL);
}

static void print_trainable(const LlavaModel *m, const Optimizer *o) {
    size_t per[MODULE_COUNT] = {0}, total = 0;
    for (int r = 0; r < o->n_ranges; r++) per[m->params.specs[o->spec[r]].module] += o->ranges[2 * r + 1];
    fprintf(stderr, "trainable parameters:\n");
    for (int i = 0; i < MODULE_COUNT; i++) {
        fprintf(stderr, "  %-22s %12zu of %12zu%s\n", module_name(&m->params.cfg, (Module)i), per[i], m->params.module_numel[i],
                m->trainable[i] ? "" : "  (frozen)");
        total += per[i];
    }
    fprintf(stderr, "  %-22s %12zu of %12zu\n", "total", total, m->params.numel);
}

// Rank 0 holds output_dir's lock for the run: a second run into it (another
// mpirun, or several copies of a build without MPI) stops at once.
static int lock_output_dir(Run *r) {
    int rc = VLM_OK;
    if (r->rank == 0) {
        rc = dir_lock(r->a->output_dir, ".vlm-train.lock", &r->lock_fd);
        if (rc != VLM_OK) vlm_fail_context(rc, "--output_dir");
    }
    return dist_agree(rc, NULL);
}

int train_run(const TrainArgs *a) {
    for (int i = 0; train_extensions[i]; i++) {
        int rc = train_extensions[i]->check_args(a);
        if (rc != VLM_OK) return rc;
    }
    if (!a->output_dir[0]) return vlm_fail(VLM_ERR_INPUT, NULL, "--output_dir", "required");
    Run r = {.a = a, .world = dist_world(), .rank = dist_rank(), .lock_fd = -1};
    if (r.rank == 0) {
        train_args_print(a, stderr);
        if (a->notes[0]) fputs(a->notes, stderr);
    }
    int rc0 = make_dirs(a->output_dir) != VLM_OK ? vlm_fail_context(VLM_ERR_FAIL, "--output_dir") : VLM_OK;
    rc0 = dist_agree(rc0, NULL);
    if (rc0 == VLM_OK) rc0 = lock_output_dir(&r);
    if (rc0 != VLM_OK) return rc0;
    char *resume = resume_point(a);
    TrainState st = {0};
    int rc = resume ? train_checkpoint_read_state(resume, &st) : VLM_OK;
    if (rc == VLM_OK) rc = open_data(&r);
    if (rc == VLM_OK) rc = open_model(&r, resume);
    if (rc == VLM_OK) rc = open_tokenizer(&r, a->model_name_or_path);  // as upstream, also when resuming
    if (rc == VLM_OK) rc = open_loader(&r);
    if (rc == VLM_OK) rc = alloc_micro(&r);
    if (rc == VLM_OK) {
        OptimizerConfig oc = optimizer_config_from_args(a);
        rc = optimizer_init(&r.opt, &r.m, &oc);
        r.have_opt = rc == VLM_OK;
        if (rc == VLM_OK) rc = optimizer_attach_model(&r.opt, &r.m);  // ZeRO-2 / 3: the model's parameter events
        // LoRA with --bits 16 and --bf16 / --fp16: the frozen LLM's layers held in 16 bits (chained after ZeRO's)
        if (rc == VLM_OK && a->lora_enable && a->bits == 16 && (a->bf16 || a->fp16))
            rc = half_store_attach(&r.half, &r.m, a->bf16 ? DT_BF16 : DT_F16);
    }
    if (rc == VLM_OK) {
        rc = train_plan(&r.plan, (long)loader_batches_per_epoch(r.loader), a->gradient_accumulation_steps,
                        a->num_train_epochs, a->max_steps);
        r.have_plan = rc == VLM_OK;
    }
    if (rc == VLM_OK) {
        r.sched = schedule_from_args(a, r.plan.n_steps);
        r.step_cfg = (StepConfig){a->loss_reduction, a->gradient_accumulation_steps,
                                  llava_cuts_after_splice(&r.m.params.cfg) ? a->model_max_length : 0};
        // what identifies the run (the full resolution is printed at start)
        r.args_json = json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:i, s:i, s:i, s:I, s:s}", "recipe", a->recipe,
                                "model_name_or_path", a->model_name_or_path, "version", a->version, "learning_rate",
                                a->learning_rate, "weight_decay", a->weight_decay, "num_train_epochs",
                                a->num_train_epochs, "per_device_train_batch_size", a->per_device_train_batch_size,
                                "gradient_accumulation_steps", a->gradient_accumulation_steps, "model_max_length",
                                a->model_max_length, "seed", (json_int_t)a->seed, "loss_reduction",
                                a->loss_reduction == LOSS_MICRO_MEAN ? "micro_mean" : "token_mean");
        json_t *paths = json_array();
        for (int i = 0; i < a->n_data_path; i++) json_array_append_new(paths, json_string(a->data_path[i]));
        json_object_set_new(r.args_json, "data_path", paths);
        if (r.rank == 0) {
            print_trainable(&r.m, &r.opt);
            fprintf(stderr, "plan: %ld micro-batches of %d per epoch%s, %d per step, %ld optimizer steps (%d epochs), "
                            "%ld warmup, %s schedule\n",
                    r.plan.len_dataloader, a->per_device_train_batch_size, r.world > 1 ? " on each rank" : "",
                    a->gradient_accumulation_steps, r.plan.n_steps, r.plan.n_epochs, r.sched.warmup,
                    schedule_name(r.sched.type));
            if (a->group_by_modality_length)
                fprintf(stderr, "order: grouped by modality and length (LLaVA's LengthGroupedSampler, %d x %d)%s\n",
                        r.world * a->gradient_accumulation_steps, a->per_device_train_batch_size,
                        a->group_by_length ? "; --group_by_length is not used: upstream's trainer takes "
                                             "group_by_modality_length first" : "");
            else if (a->group_by_length)
                fprintf(stderr, "order: grouped by token length (HF's LengthGroupedSampler, batch %d)\n",
                        a->per_device_train_batch_size * a->gradient_accumulation_steps);
            if (r.world > 1)
                fprintf(stderr, "data parallel: %d ranks, global batch %d (%d per device x %d accumulation x %d ranks), "
                                "ZeRO-%d%s\n", r.world, a->per_device_train_batch_size * a->gradient_accumulation_steps * r.world,
                        a->per_device_train_batch_size, a->gradient_accumulation_steps, r.world, r.opt.cfg.zero_stage,
                        r.opt.cfg.zero_stage ? ": each rank holds 1 / world of AdamW's moments" : "");
        }
    }
    rc = dist_agree(rc, NULL);  // a rank that could not set up (a file missing on its machine) stops every rank
    if (rc == VLM_OK && resume && st.world != r.world && r.rank == 0)
        fprintf(stderr, "note: %s was saved by %d rank(s), this run has %d: AdamW's moments are re-sharded and the "
                        "run continues at step %ld of this world's plan (exact up to the data order)\n",
                resume, st.world, r.world, st.step);
    if (rc == VLM_OK && resume) {
        if ((st.world == r.world && st.total_steps != r.plan.n_steps) || st.seed != (uint64_t)a->seed)
            rc = vlm_fail(VLM_ERR_INPUT, resume, NULL,
                          "planned for %ld steps with seed %llu; these arguments give %ld steps with seed %ld: "
                          "resume with the run's own arguments",
                          st.total_steps, (unsigned long long)st.seed, r.plan.n_steps, a->seed);
        if (rc == VLM_OK) rc = train_checkpoint_read_optimizer(resume, &r.m, &r.opt);
        if (rc == VLM_OK && st.step < r.plan.n_steps) {
            long g = r.plan.first[st.step];
            rc = loader_seek(r.loader, (LoaderPosition){(uint64_t)train_plan_epoch(&r.plan, g),
                                                         (uint64_t)train_plan_batch(&r.plan, g)});
        }
        rc = dist_agree(rc, NULL);
        if (rc == VLM_OK && r.rank == 0) fprintf(stderr, "resuming from %s at step %ld\n", resume, st.step);
    }
    if (rc == VLM_OK) rc = train_loop(&r, resume ? st.step : 0);
    if (rc == VLM_OK) rc = save_final(&r);
    free(resume);
    close_run(&r);
    return rc;
}
