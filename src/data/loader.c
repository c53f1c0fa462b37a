// Batches for training, prepared ahead by worker threads; see loader.h.
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/check.h"
#include "data/sampler.h"

typedef enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY } SlotState;

typedef struct {
    SlotState state;
    uint64_t g;                 // global batch number: epoch * batches_per_epoch + index
    uint64_t *assigned;         // (batch_size) records to load
    int n_assigned;
    Batch batch;
    size_t cap_tokens;          // capacity of input_ids / labels / attention_mask
    int rc;                     // VLM_OK, or the build's error (STOP policy)
    char error[1024];
} Slot;

struct Loader {
    LoaderConfig cfg;
    int32_t pad_id;
    uint64_t n_records, per_epoch;  // per_epoch: this rank's batches
    int world;
    int32_t *lengths;           // modality lengths or token lengths, when grouping
    uint64_t *order, order_epoch;
    bool order_valid;
    Slot *slots;
    int n_slots;
    uint64_t next_assign, next_return;
    Slot *returned;             // released on the next loader_next
    uint64_t skipped_total;
    PreprocessScratch *scratch; // one per worker, plus one for the caller's thread
    pthread_t *threads;
    int n_threads;
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int32_t loader_pad_id(const Template *tpl, const Tokenizer *tok) {
    if (tpl->pad_token) {
        int32_t id = tokenizer_token_id(tok, tpl->pad_token);
        if (id >= 0) return id;
    }
    if (tok->unk_id >= 0) return tok->unk_id;
    if (tok->pad_id >= 0) return tok->pad_id;
    return 0;
}

// ---- order and assignment (under the lock)

static int ensure_order(Loader *L, uint64_t epoch) {
    if (L->order_valid && L->order_epoch == epoch) return VLM_OK;
    int rc = VLM_OK;
    if (L->cfg.group_by_modality)
        rc = sampler_modality_grouped(L->lengths, L->n_records, L->cfg.batch_size, L->cfg.group_world, L->cfg.seed,
                                      epoch, L->order);
    else if (L->cfg.group_by_length)
        rc = sampler_length_grouped(L->lengths, L->n_records, L->cfg.length_group_batch, L->cfg.seed, epoch,
                                    L->order);
    else
        sampler_random(L->n_records, L->cfg.seed, epoch, L->order);
    L->order_valid = rc == VLM_OK;
    L->order_epoch = epoch;
    return rc;
}

static int assign(Loader *L, Slot *s, uint64_t g) {
    uint64_t epoch = g / L->per_epoch, k = g % L->per_epoch, B = (uint64_t)L->cfg.batch_size;
    int rc = ensure_order(L, epoch);
    if (rc != VLM_OK) return rc;
    // several ranks: this rank's share of the epoch's order (sampler_shard_batch)
    s->n_assigned = sampler_shard_batch(L->n_records, (int)B, L->world, L->cfg.rank, k, s->assigned);
    for (int i = 0; i < s->n_assigned; i++) s->assigned[i] = L->order[s->assigned[i]];
    s->g = g;
    s->batch.epoch = epoch;
    s->batch.index = k;
    return VLM_OK;
}

// ---- building one batch (no lock held)

static int grow_tokens(Slot *s, int B, size_t T) {
    size_t need = (size_t)B * T;
    if (need <= s->cap_tokens) return VLM_OK;
    Batch *b = &s->batch;
    int32_t *ids = vlm_realloc(b->input_ids, need * sizeof(int32_t));
    if (ids) b->input_ids = ids;
    int32_t *labels = ids ? vlm_realloc(b->labels, need * sizeof(int32_t)) : NULL;
    if (labels) b->labels = labels;
    uint8_t *mask = labels ? vlm_realloc(b->attention_mask, need) : NULL;
    if (!mask) return VLM_ERR_FAIL;
    b->attention_mask = mask;
    s->cap_tokens = need;
    return VLM_OK;
}

// One record -> rendered tokens; *image: its image path (NULL: none; the caller frees it).
// Returns the error of a bad record with its file and record named.
static int render_record(const LoaderConfig *cfg, uint64_t global, Rendered *out, char **image) {
    int fi;
    size_t r;
    dataset_locate(cfg->data, global, &fi, &r);
    const DatasetFile *f = &cfg->data->files[fi];
    char where[64];
    snprintf(where, sizeof where, "record %zu", r);
    *image = NULL;
    json_t *rec;
    int rc = dataset_file_record(f, r, &rec);
    if (rc != VLM_OK) return rc;
    Conversation c;
    rc = conversation_parse(&c, rec, where);
    json_decref(rec);
    if (rc != VLM_OK) {
        conversation_free(&c);
        return vlm_fail_context(rc, "%s", f->path);
    }
    char why[160];
    Problem p = conversation_problem(&c, why, sizeof why);
    if (p != PROBLEM_COUNT) rc = vlm_fail(VLM_ERR_INPUT, f->path, where, "%s: %s", problem_name(p), why);
    if (rc == VLM_OK) {
        rc = template_render(cfg->tpl, cfg->tok, &c, cfg->max_len, cfg->mask, out, where);
        if (rc != VLM_OK) vlm_fail_context(rc, "%s", f->path);
    }
    if (rc == VLM_OK && c.image) {
        *image = dataset_image_path(f, c.image);
        if (!*image) {
            rendered_free(out);
            rc = VLM_ERR_FAIL;
        }
    }
    conversation_free(&c);
    return rc;
}

// One record -> rendered tokens and (if it has one) its image in pixel slot `pixels`.
static int load_sample(Loader *L, uint64_t global, Rendered *out, float *pixels, bool *has_image,
                       PreprocessScratch *scratch) {
    char *path;
    int rc = render_record(&L->cfg, global, out, &path);
    *has_image = rc == VLM_OK && path;
    if (*has_image) {
        rc = image_preprocess_file(path, &L->cfg.image, pixels, scratch, NULL, NULL);
        if (rc != VLM_OK) {
            int fi;
            size_t r;
            dataset_locate(L->cfg.data, global, &fi, &r);
            vlm_fail_context(rc, "%s: record %zu", L->cfg.data->files[fi].path, r);
            rendered_free(out);
        }
    }
    free(path);
    return rc;
}

int loader_token_lengths(const LoaderConfig *cfg, int32_t *lengths) {
    for (uint64_t g = 0; g < cfg->data->count; g++) {
        Rendered out;
        char *path;
        int rc = render_record(cfg, g, &out, &path);
        free(path);
        if (rc != VLM_OK) {
            if (cfg->bad_records == BAD_RECORD_STOP) return rc;
            lengths[g] = 1;
            continue;
        }
        lengths[g] = out.item_len > INT32_MAX ? INT32_MAX : (int32_t)out.item_len;
        rendered_free(&out);
    }
    return VLM_OK;
}

static void build(Loader *L, Slot *s, PreprocessScratch *scratch) {
    Batch *b = &s->batch;
    const Preprocessor *pp = &L->cfg.image;
    size_t image_floats = (size_t)3 * pp->crop_h * pp->crop_w;
    Rendered *r = vlm_calloc((size_t)s->n_assigned, sizeof *r);
    s->rc = r ? VLM_OK : VLM_ERR_FAIL;
    b->n = b->n_images = b->n_truncated = b->n_mismatch = b->n_skipped = 0;
    size_t T = 0;
    for (int i = 0; i < s->n_assigned && s->rc == VLM_OK; i++) {
        bool has_image;
        int rc = load_sample(L, s->assigned[i], &r[b->n], b->pixel_values + (size_t)b->n_images * image_floats,
                             &has_image, scratch);
        if (rc != VLM_OK) {
            if (L->cfg.bad_records == BAD_RECORD_STOP) {
                s->rc = rc;
                snprintf(s->error, sizeof s->error, "%s", vlm_last_error());
            } else {
                SkippedRecord *k = &b->skipped[b->n_skipped++];
                k->record = s->assigned[i];
                snprintf(k->reason, sizeof k->reason, "%s", vlm_last_error());
            }
            continue;
        }
        b->records[b->n] = s->assigned[i];
        b->image_of[b->n] = has_image ? b->n_images++ : -1;
        b->len[b->n] = (int)r[b->n].input_ids.len;
        b->n_truncated += r[b->n].truncated;
        b->n_mismatch += r[b->n].mismatch;
        if (r[b->n].input_ids.len > T) T = r[b->n].input_ids.len;
        b->n++;
    }
    if (s->rc == VLM_OK && grow_tokens(s, b->n, T ? T : 1) != VLM_OK) {
        s->rc = VLM_ERR_FAIL;
        snprintf(s->error, sizeof s->error, "out of memory for a batch of %d x %zu tokens", b->n, T);
    }
    if (s->rc == VLM_OK) {
        b->T = (int)T;
        for (int i = 0; i < b->n; i++) {
            int32_t *ids = b->input_ids + (size_t)i * T, *labels = b->labels + (size_t)i * T;
            uint8_t *mask = b->attention_mask + (size_t)i * T;
            size_t n = r[i].input_ids.len;
            for (size_t t = 0; t < T; t++) {
                ids[t] = t < n ? r[i].input_ids.data[t] : L->pad_id;
                labels[t] = t < n ? r[i].labels.data[t] : IGNORE_INDEX;
                mask[t] = t < n;
            }
        }
    }
    for (int i = 0; r && i < b->n; i++) rendered_free(&r[i]);
    free(r);
}

// ---- threads

static void *worker_main(void *arg) {
    void **args = arg;
    Loader *L = args[0];
    PreprocessScratch *scratch = args[1];
    free(args);
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        Slot *s = &L->slots[L->next_assign % L->n_slots];
        if (s->state != SLOT_EMPTY) {
            pthread_cond_wait(&L->cv, &L->mu);
            continue;
        }
        int rc = assign(L, s, L->next_assign);
        if (rc != VLM_OK) {
            s->rc = rc;
            snprintf(s->error, sizeof s->error, "%s", vlm_last_error());
            s->g = L->next_assign;
            s->state = SLOT_READY;
            L->next_assign++;
            pthread_cond_broadcast(&L->cv);
            continue;
        }
        s->state = SLOT_FILLING;
        L->next_assign++;
        pthread_mutex_unlock(&L->mu);
        build(L, s, scratch);
        pthread_mutex_lock(&L->mu);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void stop_workers(Loader *L) {
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->n_threads; i++) pthread_join(L->threads[i], NULL);
    L->n_threads = 0;
    L->stop = false;
}

static int start_workers(Loader *L) {
    for (int i = 0; i < L->cfg.workers; i++) {
        void **args = vlm_malloc(2 * sizeof(void *));
        if (!args) return VLM_ERR_FAIL;
        args[0] = L;
        args[1] = &L->scratch[i + 1];
        if (pthread_create(&L->threads[i], NULL, worker_main, args) != 0) {
            free(args);
            return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "cannot start loader thread %d", i);
        }
        L->n_threads++;
    }
    return VLM_OK;
}

// ---- public API

static int alloc_slot(Slot *s, const LoaderConfig *cfg) {
    Batch *b = &s->batch;
    int B = cfg->batch_size;
    size_t image_floats = (size_t)3 * cfg->image.crop_h * cfg->image.crop_w;
    s->assigned = vlm_malloc(sizeof(uint64_t) * B);
    b->len = vlm_malloc(sizeof(int) * B);
    b->records = vlm_malloc(sizeof(uint64_t) * B);
    b->image_of = vlm_malloc(sizeof(int) * B);
    b->skipped = vlm_malloc(sizeof(SkippedRecord) * B);
    b->pixel_values = vlm_alloc_aligned(sizeof(float) * image_floats * B);
    if (!s->assigned || !b->len || !b->records || !b->image_of || !b->skipped || !b->pixel_values) return VLM_ERR_FAIL;
    return cfg->max_len > 0 ? grow_tokens(s, B, (size_t)cfg->max_len) : VLM_OK;
}

static void free_slot(Slot *s) {
    Batch *b = &s->batch;
    free(s->assigned), free(b->len), free(b->records), free(b->image_of), free(b->skipped);
    free(b->input_ids), free(b->labels), free(b->attention_mask);
    vlm_free_aligned(b->pixel_values);
}

int loader_open(Loader **out, const LoaderConfig *cfg) {
    *out = NULL;
    if (cfg->batch_size < 1 || cfg->workers < 0 || cfg->group_world < 1 ||
        (cfg->group_by_length && cfg->length_group_batch < 1))
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "loader: batch size and group world size must be positive");
    if (cfg->data->count == 0) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "the dataset has no records");
    Loader *L = vlm_calloc(1, sizeof *L);
    if (!L) return VLM_ERR_FAIL;
    L->cfg = *cfg;
    L->n_records = cfg->data->count;
    L->world = cfg->world > 1 ? cfg->world : 1;
    if (cfg->rank < 0 || cfg->rank >= L->world) {
        int world = L->world;
        free(L);
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "loader: rank %d outside a world of %d", cfg->rank, world);
    }
    L->per_epoch = sampler_shard_batches(L->n_records, cfg->batch_size, L->world);
    L->pad_id = loader_pad_id(cfg->tpl, cfg->tok);
    L->n_slots = cfg->workers == 0 ? 1 : (cfg->prefetch > cfg->workers ? cfg->prefetch : cfg->workers) + 1;
    L->slots = vlm_calloc((size_t)L->n_slots, sizeof(Slot));
    L->scratch = vlm_calloc((size_t)cfg->workers + 1, sizeof(PreprocessScratch));
    L->threads = vlm_calloc((size_t)cfg->workers + 1, sizeof(pthread_t));
    L->order = vlm_malloc(sizeof(uint64_t) * L->n_records);
    int rc = L->slots && L->scratch && L->threads && L->order ? VLM_OK : VLM_ERR_FAIL;
    for (int i = 0; rc == VLM_OK && i < L->n_slots; i++) rc = alloc_slot(&L->slots[i], cfg);
    if (rc == VLM_OK && (cfg->group_by_modality || cfg->group_by_length)) {
        L->lengths = vlm_malloc(sizeof(int32_t) * L->n_records);
        rc = !L->lengths                ? VLM_ERR_FAIL
             : cfg->group_by_modality ? dataset_modality_lengths(cfg->data, L->lengths)
                                      : loader_token_lengths(cfg, L->lengths);
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    if (rc == VLM_OK) rc = start_workers(L);
    if (rc != VLM_OK) {
        loader_close(L);
        return rc;
    }
    *out = L;
    return VLM_OK;
}

int loader_next(Loader *L, const Batch **out) {
    *out = NULL;
    uint64_t g = L->next_return;
    Slot *s = &L->slots[g % L->n_slots];
    pthread_mutex_lock(&L->mu);
    if (L->returned) {
        L->returned->state = SLOT_EMPTY;
        L->returned = NULL;
        pthread_cond_broadcast(&L->cv);
    }
    if (L->cfg.workers == 0) {
        // in the caller's thread
        int rc = assign(L, s, g);
        pthread_mutex_unlock(&L->mu);
        if (rc != VLM_OK) return rc;
        build(L, s, &L->scratch[0]);
    } else {
        while (!(s->state == SLOT_READY && s->g == g)) pthread_cond_wait(&L->cv, &L->mu);
        pthread_mutex_unlock(&L->mu);
    }
    if (s->rc != VLM_OK) {
        // the slot stays READY with its error: asking again gives the same answer
        if (L->cfg.workers == 0) s->state = SLOT_EMPTY;
        return vlm_fail(s->rc, NULL, NULL, "%s", s->error);
    }
    L->returned = L->cfg.workers ? s : NULL;
    L->next_return++;
    L->skipped_total += (uint64_t)s->batch.n_skipped;
    *out = &s->batch;
    return VLM_OK;
}

LoaderPosition loader_position(const Loader *L) {
    return (LoaderPosition){L->next_return / L->per_epoch, L->next_return % L->per_epoch};
}

uint64_t loader_batches_per_epoch(const Loader *L) { return L->per_epoch; }
uint64_t loader_skipped_total(const Loader *L) { return L->skipped_total; }

int loader_seek(Loader *L, LoaderPosition pos) {
    if (pos.index >= L->per_epoch)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "loader position %llu is past the epoch's %llu batches",
                        (unsigned long long)pos.index, (unsigned long long)L->per_epoch);
    stop_workers(L);
    for (int i = 0; i < L->n_slots; i++) L->slots[i].state = SLOT_EMPTY;
    L->returned = NULL;
    L->next_assign = L->next_return = pos.epoch * L->per_epoch + pos.index;
    return start_workers(L);
}

void loader_close(Loader *L) {
    if (!L) return;
    stop_workers(L);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    for (int i = 0; L->slots && i < L->n_slots; i++) free_slot(&L->slots[i]);
    for (int i = 0; L->scratch && i <= L->cfg.workers; i++) preprocess_scratch_free(&L->scratch[i]);
    free(L->slots), free(L->scratch), free(L->threads), free(L->order), free(L->lengths);
    free(L);
}
