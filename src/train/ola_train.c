// OLA-VLM's stages on the training side (train/train_extension.h): ola-pt
// adds the predictors and task tokens and reads the teachers' precomputed
// targets of each sample's image; the other stages train without them.
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "data/teacher_targets.h"
#include "model/init.h"
#include "model/ola.h"
#include "train/train_extension.h"

static int check_args(const TrainArgs *a) {
    if (!a->needs_embedding_predictors) return VLM_OK;
    if (!a->teacher_embeddings[0])
        return vlm_fail(VLM_ERR_INPUT, NULL, "--teacher_embeddings",
                        "OLA-VLM's pretraining distils the teachers' embeddings of each image: give the folder of "
                        "their precomputed targets (IMAGE.safetensors with depth / seg / gen tensors)");
    if (!dir_exists(a->teacher_embeddings))
        return vlm_fail(VLM_ERR_INPUT, a->teacher_embeddings, "--teacher_embeddings", "not a folder");
    return VLM_OK;
}

// ola-pt adds fresh predictors and task tokens to a model without them (as
// upstream's init_heads does after loading; a model that has them keeps its
// own); any other stage trains the model without them, as upstream's next
// stages load the LLM with train.py's LLaVA class.
static int prepare_model(const TrainArgs *a, LlavaParams *p) {
    LlavaConfig cfg = p->cfg;
    if (a->needs_embedding_predictors == cfg.ola.enabled) {
        if (cfg.ola.enabled) log_msg(LOG_INFO, "OLA-VLM's predictors and task tokens: the model's own");
        return VLM_OK;
    }
    if (a->needs_embedding_predictors) {
        int rc = train_args_ola_config(a, cfg.text.layers, &cfg.ola);
        if (rc != VLM_OK) return rc;
    } else {
        cfg.ola.enabled = false;
        log_msg(LOG_INFO, "the model's OLA-VLM predictors and task tokens are left out (they train in ola-pt only)");
    }
    int rc = llava_params_relayout(p, &cfg, NULL);
    if (rc == VLM_OK && cfg.ola.enabled) llava_ola_init_default(p, (uint64_t)a->seed);
    return rc;
}

// OlaInputs first, so a pointer to the buffer is one to its OlaInputs.
typedef struct {
    OlaInputs view;
    float *targets[OLA_TASKS];  // (max_batch, ola_pred_size) per task of the model
    bool *has_target;           // (max_batch) a sample with an image has them
} Inputs;

static void inputs_free(void *p) {
    Inputs *in = p;
    if (!in) return;
    for (int t = 0; t < OLA_TASKS; t++) free(in->targets[t]);
    free(in->has_target);
    free(in);
}

static void *inputs_new(const LlavaConfig *cfg, int max_batch) {
    const OlaConfig *o = &cfg->ola;
    Inputs *in = vlm_calloc(1, sizeof *in);
    if (!in || !(in->has_target = vlm_calloc((size_t)max_batch, sizeof(bool)))) return inputs_free(in), NULL;
    for (int k = 0; k < o->n_order; k++) {
        OlaTask t = o->order[k];
        if (!(in->targets[t] = vlm_malloc(sizeof(float) * max_batch * (size_t)ola_pred_size(o, t))))
            return inputs_free(in), NULL;
    }
    for (int t = 0; t < OLA_TASKS; t++) in->view.targets[t] = in->targets[t];
    in->view.has_target = in->has_target;
    return in;
}

// The targets of the batch's samples that have an image
// (--teacher_embeddings/<the record's image>.safetensors).
static int inputs_read(void *p, const TrainArgs *a, const LlavaConfig *cfg, const Dataset *d, const Batch *b) {
    Inputs *in = p;
    const OlaConfig *o = &cfg->ola;
    int rc = VLM_OK;
    for (int i = 0; i < b->n && rc == VLM_OK; i++) {
        in->has_target[i] = b->image_of[i] >= 0;
        if (!in->has_target[i]) continue;
        int file;
        size_t rec;
        dataset_locate(d, (size_t)b->records[i], &file, &rec);
        json_t *j = NULL;
        rc = dataset_file_record(&d->files[file], rec, &j);
        const char *image = json_string_value(json_object_get(j, "image"));
        if (rc == VLM_OK && !image) rc = vlm_fail(VLM_ERR_INPUT, d->files[file].path, NULL, "record %zu: no \"image\" string", rec);
        float *out[OLA_TASKS];
        for (int t = 0; t < OLA_TASKS; t++) out[t] = in->targets[t] ? in->targets[t] + (size_t)i * ola_pred_size(o, t) : NULL;
        if (rc == VLM_OK) rc = teacher_targets_read(a->teacher_embeddings, image, o, out);
        if (rc != VLM_OK) rc = vlm_fail_context(rc, "%s record %zu", d->files[file].path, rec);
        json_decref(j);
    }
    return rc;
}

const TrainExtension ola_train_extension = {.name = OLA_EXTENSION, .check_args = check_args, .prepare_model = prepare_model,
                                            .inputs_new = inputs_new, .inputs_read = inputs_read,
                                            .inputs_free = inputs_free};
