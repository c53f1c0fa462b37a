// ZeRO stages 2 and 3, see zero.h.
#include "train/zero.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/str.h"
#include "dist/dist.h"

struct Zero {
    Optimizer *o;
    LlavaModel *m;
    int stage, max_layer;
    bool tied;                     // the LM head is the embeddings
    int n_keys;
    int *first, *count, *members;  // per group key: its ranges (members[first .. first + count))
    int *held;                     // per range: fetches not yet released (stage 3)
    bool *reduced;                 // per range: reduced in this micro-batch
    size_t *bounds;                // (world + 1) scratch: the partition clipped to one range
};

// ---- groups: a module's layer l, or its other tensors (-1)

static int layer_of(const ParamSpec *s) {
    if (s->module != MODULE_VISION && s->module != MODULE_LLM) return -1;  // the connector, an extension: one group
    int layer = param_layer(s);
    if (layer >= 0) return layer;
    bool head = s->module == MODULE_LLM && (str_has_suffix(s->name, "lm_head.weight") || str_has_suffix(s->name, "model.norm.weight"));
    return head ? PARAM_GROUP_HEAD : -1;
}

static int key_of(const Zero *z, Module module, int layer) {
    if (layer < PARAM_GROUP_HEAD || layer > z->max_layer) return -1;
    return (int)module * (z->max_layer + 3) + layer + 2;
}

// ---- one range: the partition clipped to it, this rank's part, the others' parts dropped

static DistView range_view(const Zero *z, int r, float *base) {
    const Optimizer *o = z->o;
    size_t moff = o->moment_offset[r], cnt = o->ranges[2 * r + 1];
    for (int k = 0; k <= o->world; k++) {
        size_t b = o->bounds[k] < moff ? moff : o->bounds[k] > moff + cnt ? moff + cnt : o->bounds[k];
        z->bounds[k] = b - moff;
    }
    return (DistView){base, &o->ranges[2 * r], 1, cnt};
}

// This rank's part of range r: [*a, *b) of its floats, counted from the range's start (empty: a == b).
static void own_part(const Optimizer *o, int r, size_t *a, size_t *b) {
    optimizer_range_slice(o, r, a, b);
    *a -= o->moment_offset[r], *b -= o->moment_offset[r];
}

// Range r's floats in base outside this rank's slice, dropped.
static void drop_others(const Zero *z, int r, float *base) {
    const Optimizer *o = z->o;
    size_t cnt = o->ranges[2 * r + 1], a, b;
    own_part(o, r, &a, &b);
    float *p = base + o->ranges[2 * r];
    vlm_drop_floats(p, a);
    vlm_drop_floats(p + b, cnt - b);
}

static void reduce_range(Zero *z, int r) {
    DistView v = range_view(z, r, z->m->grad);
    if (dist_reduce_scatter(&v, z->bounds) != VLM_OK) dist_abort(vlm_last_error());
    drop_others(z, r, z->m->grad);
    z->reduced[r] = true;
}

static void gather_range(Zero *z, int r) {
    DistView v = range_view(z, r, z->m->params.data);
    if (dist_allgather(&v, z->bounds) != VLM_OK) dist_abort(vlm_last_error());
}

// ---- the model's parameter events

static void on_event(void *ctx, HookEvent event, Module module, int layer) {
    Zero *z = ctx;
    if (z->tied && module == MODULE_LLM && layer == PARAM_GROUP_HEAD) {  // the head is the embeddings (param_hooks.h)
        if (event == HOOK_GRADS) return;
        layer = -1;
    }
    int key = key_of(z, module, layer);
    if (key < 0) return;
    for (int i = 0; i < z->count[key]; i++) {
        int r = z->members[z->first[key] + i];
        if (event == HOOK_GRADS && !z->reduced[r]) reduce_range(z, r);
        if (z->stage < 3) continue;
        if (event == HOOK_FETCH && z->held[r]++ == 0) gather_range(z, r);
        if (event == HOOK_RELEASE && z->held[r] > 0 && --z->held[r] == 0) drop_others(z, r, z->m->params.data);
    }
}

// ---- setup

void zero_free(Zero *z) {
    if (!z) return;
    if (z->m && z->m->hooks.ctx == z) z->m->hooks = (ParamHooks){0};
    free(z->first), free(z->count), free(z->members), free(z->held), free(z->reduced), free(z->bounds);
    free(z);
}

int zero_attach(Zero **out, Optimizer *o, LlavaModel *m) {
    *out = NULL;
    if (o->cfg.zero_stage < 2 || o->world == 1) return VLM_OK;
    Zero *z = vlm_calloc(1, sizeof *z);
    if (!z) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    const LlavaConfig *cfg = &m->params.cfg;
    *z = (Zero){.o = o, .m = m, .stage = o->cfg.zero_stage,
                .max_layer = cfg->vision.layers > cfg->text.layers ? cfg->vision.layers : cfg->text.layers,
                .tied = cfg->text.tie_embeddings};
    z->n_keys = MODULE_COUNT * (z->max_layer + 3);
    int n = o->n_ranges ? o->n_ranges : 1;
    z->first = vlm_calloc((size_t)z->n_keys, sizeof(int)), z->count = vlm_calloc((size_t)z->n_keys, sizeof(int));
    z->members = vlm_calloc((size_t)n, sizeof(int)), z->held = vlm_calloc((size_t)n, sizeof(int));
    z->reduced = vlm_calloc((size_t)n, sizeof(bool)), z->bounds = vlm_calloc((size_t)o->world + 1, sizeof(size_t));
    int *key = vlm_calloc((size_t)n, sizeof(int));
    if (!z->first || !z->count || !z->members || !z->held || !z->reduced || !z->bounds || !key) {
        free(key);
        zero_free(z);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    }
    for (int r = 0; r < o->n_ranges; r++) {  // the groups' members, a counting sort by key
        const ParamSpec *s = &m->params.specs[o->spec[r]];
        key[r] = key_of(z, s->module, layer_of(s));
        if (key[r] < 0) key[r] = key_of(z, s->module, -1);
        z->count[key[r]]++;
    }
    for (int k = 1; k < z->n_keys; k++) z->first[k] = z->first[k - 1] + z->count[k - 1];
    int *fill = vlm_calloc((size_t)z->n_keys, sizeof(int));
    for (int r = 0; fill && r < o->n_ranges; r++) z->members[z->first[key[r]] + fill[key[r]]++] = r;
    free(key);
    if (!fill) {
        zero_free(z);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    }
    free(fill);
    m->hooks = (ParamHooks){on_event, z};
    if (z->stage == 3)
        for (int r = 0; r < o->n_ranges; r++) drop_others(z, r, m->params.data);
    *out = z;
    return VLM_OK;
}

void zero_zero_grad(Zero *z) {
    const Optimizer *o = z->o;
    for (int r = 0; r < o->n_ranges; r++) {
        size_t a, b;
        own_part(o, r, &a, &b);
        memset(z->m->grad + o->ranges[2 * r] + a, 0, (b - a) * sizeof(float));
        drop_others(z, r, z->m->grad);
        z->reduced[r] = false;
    }
    z->m->saw_modality[0] = z->m->saw_modality[1] = false;
}

void zero_finish_micro(Zero *z) {
    for (int r = 0; r < z->o->n_ranges; r++) {
        if (!z->reduced[r]) reduce_range(z, r);
        z->reduced[r] = false;
    }
}

int zero_gather_all(Zero *z) {
    if (!z || z->stage < 3) return VLM_OK;
    for (int r = 0; r < z->o->n_ranges; r++)
        if (z->held[r] == 0) gather_range(z, r);
    return VLM_OK;
}

void zero_release_all(Zero *z) {
    if (!z || z->stage < 3) return;
    for (int r = 0; r < z->o->n_ranges; r++)
        if (z->held[r] == 0) drop_others(z, r, z->m->params.data);
}

size_t zero_largest_group_bytes(const Zero *z) {
    size_t most = 0;
    for (int k = 0; k < z->n_keys; k++) {
        size_t n = 0;
        for (int i = 0; i < z->count[k]; i++) n += z->o->ranges[2 * z->members[z->first[k] + i] + 1];
        if (n > most) most = n;
    }
    return most * sizeof(float);
}
