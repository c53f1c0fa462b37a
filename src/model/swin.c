// The Swin backbone, see swin.h. Shapes: n images; a stage of H x W tokens
// (N = n H W rows) of width C, padded to Hp x Wp for its windows of T = ws^2
// tokens (n nW windows, Np = n Hp Wp rows), NH heads of HS, MLP width I.
#include "model/swin.h"

#include <stdarg.h>  // va_list
#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // memset, strcmp

#include "core/alloc.h"
#include "core/error.h"
#include "core/json.h"
#include "kernels/activation.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/residual.h"
#include "kernels/swin_layout.h"
#include "kernels/window_attention.h"
#include "model/carve.h"
#include "model/config_keys.h"

#define TORCH_LN_EPS 1e-5f  // nn.LayerNorm's default: the norms built without config.layer_norm_eps

// ---- config

// section.key as a list of n ints in [1, hi] (absent or null: dflt, n_dflt of them)
static int read_ints(const json_t *sec, const char *section, const char *key, const int *dflt, int n_dflt, int *out,
                     int *n, long long hi, const char *path) {
    char name[96];
    snprintf(name, sizeof name, "%s.%s", section, key);
    const json_t *v = sec ? json_object_get(sec, key) : NULL;
    if (!v || json_is_null(v)) {
        for (int i = 0; i < n_dflt; i++) out[i] = dflt[i];
        *n = n_dflt;
        return VLM_OK;
    }
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > SWIN_MAX_STAGES)
        return vlm_fail(VLM_ERR_INPUT, path, name, "expected a list of 1 to %d integers", SWIN_MAX_STAGES);
    *n = (int)json_array_size(v);
    for (int i = 0; i < *n; i++) {
        long long x;
        int rc = vlm_json_int(json_array_get(v, (size_t)i), 1, hi, &x, path, name);
        if (rc != VLM_OK) return rc;
        out[i] = (int)x;
    }
    return VLM_OK;
}

// BackboneConfigMixin's out_features / out_indices over stage_names ["stem", "stage1", ...]:
// neither given means the last stage alone
static int read_outs(const json_t *sec, const char *section, SwinConfig *c, const char *path) {
    char name[96];
    const json_t *f = sec ? json_object_get(sec, "out_features") : NULL,
                 *ix = sec ? json_object_get(sec, "out_indices") : NULL;
    bool by_name = f && !json_is_null(f);
    const json_t *list = by_name ? f : ix;
    snprintf(name, sizeof name, "%s.%s", section, by_name ? "out_features" : "out_indices");
    c->outs = 0;
    if (!list || json_is_null(list)) {
        c->outs = 1u << (c->stages - 1);
    } else {
        if (!json_is_array(list) || json_array_size(list) == 0)
            return vlm_fail(VLM_ERR_INPUT, path, name, "expected a non-empty list");
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *e = json_array_get(list, i);
            long long s = -1;
            if (by_name) {
                const char *t = json_is_string(e) ? json_string_value(e) : "";
                int k = 0, used = 0;
                if (!strcmp(t, "stem")) return vlm_fail(VLM_ERR_INPUT, path, name, "the stem's map is not supported");
                if (sscanf(t, "stage%d%n", &k, &used) == 1 && t[used] == '\0') s = k;
                if (s < 1 || s > c->stages)
                    return vlm_fail(VLM_ERR_INPUT, path, name, "'%s' is not one of stage1 .. stage%d", t, c->stages);
            } else {
                int rc = vlm_json_int(e, -(c->stages + 1), c->stages, &s, path, name);
                if (rc != VLM_OK) return rc;
                if (s < 0) s += c->stages + 1;  // Python's negative index into stage_names
                if (s == 0) return vlm_fail(VLM_ERR_INPUT, path, name, "the stem's map is not supported");
            }
            c->outs |= 1u << (s - 1);
        }
    }
    for (int s = c->stages; s >= 1; s--)
        if (c->outs & (1u << (s - 1))) {
            c->out_stage = s;
            break;
        }
    return VLM_OK;
}

int swin_config_read(SwinConfig *c, const json_t *j, const char *section, const char *path) {
    static const int DEPTHS[] = {2, 2, 6, 2}, HEADS[] = {3, 6, 12, 24};  // SwinConfig's defaults
    memset(c, 0, sizeof *c);
    const json_t *sec = section ? json_object_get(j, section) : j;
    const char *label = section ? section : "config";
    char name[96], key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", label, k), key)
    snprintf(name, sizeof name, "%s.model_type", label);
    const json_t *mt = sec ? json_object_get(sec, "model_type") : NULL;
    if (!json_is_string(mt) || strcmp(json_string_value(mt), "swin"))
        return vlm_fail(VLM_ERR_INPUT, path, name, "model_type '%s' is not supported (only swin)",
                        json_is_string(mt) ? json_string_value(mt) : "(none)");
    int channels = 3, nd = 0, nh = 0, rc;
    float eps = 0.0f;
    if ((rc = config_get_size(sec, label, "patch_size", 4, 64, &c->patch, path)) ||
        (rc = config_get_size(sec, label, "num_channels", 3, 16, &channels, path)) ||
        (rc = config_get_size(sec, label, "embed_dim", 96, MAX_WIDTH, &c->embed_dim, path)) ||
        (rc = config_get_size(sec, label, "window_size", 7, 64, &c->window, path)) ||
        (rc = read_ints(sec, label, "depths", DEPTHS, 4, c->depths, &nd, MAX_LAYERS, path)) ||
        (rc = read_ints(sec, label, "num_heads", HEADS, 4, c->heads, &nh, MAX_HEADS, path)) ||
        (rc = config_get_float(sec, label, "layer_norm_eps", 1e-5, true, &eps, path)) ||
        (rc = vlm_json_get_real(sec, "mlp_ratio", VLM_JSON_OPTIONAL, 4.0, &c->mlp_ratio, path, KEY("mlp_ratio"))))
        return rc;
    c->eps = eps, c->stages = nd;
    if (channels != 3)
        return vlm_fail(VLM_ERR_INPUT, path, KEY("num_channels"), "%d channels: only RGB (3) is supported", channels);
    if (nh != nd)
        return vlm_fail(VLM_ERR_INPUT, path, KEY("num_heads"), "%d stages of heads for %d stages of depths", nh, nd);
    if (!(c->mlp_ratio > 0.0 && c->mlp_ratio <= 64.0))
        return vlm_fail(VLM_ERR_INPUT, path, KEY("mlp_ratio"), "%g is outside (0, 64]", c->mlp_ratio);
    if ((long long)c->embed_dim << (nd - 1) > MAX_WIDTH)
        return vlm_fail(VLM_ERR_INPUT, path, KEY("embed_dim"), "%d doubled over %d stages is too wide", c->embed_dim,
                        nd);
    for (int s = 0; s < nd; s++)
        if (swin_dim(c, s) % c->heads[s])
            return vlm_fail(VLM_ERR_INPUT, path, KEY("num_heads"), "stage %d: width %d is not a multiple of %d heads",
                            s + 1, swin_dim(c, s), c->heads[s]);
    const json_t *v;
    c->qkv_bias = true;
    if (sec && (v = json_object_get(sec, "qkv_bias")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return vlm_fail(VLM_ERR_INPUT, path, KEY("qkv_bias"), "expected true or false");
        c->qkv_bias = json_is_true(v);
    }
    if (sec && (v = json_object_get(sec, "use_absolute_embeddings")) && json_is_true(v))
        return vlm_fail(VLM_ERR_INPUT, path, KEY("use_absolute_embeddings"),
                        "absolute position embeddings are not supported");
    if (sec && (v = json_object_get(sec, "hidden_act")) && !json_is_null(v) &&
        !(json_is_string(v) && !strcmp(json_string_value(v), "gelu")))
        return vlm_fail(VLM_ERR_INPUT, path, KEY("hidden_act"), "'%s' is not supported (only gelu)",
                        json_is_string(v) ? json_string_value(v) : "(not a string)");
#undef KEY
    return read_outs(sec, label, c, path);
}

// ---- weights

// the float layout of the weights, carved twice (count, then place)
static void weights_carve(SwinWeights *w, Carve *k, const SwinConfig *c) {
    int P = c->patch, C0 = c->embed_dim, R = 2 * c->window - 1;
    w->patch_w = carve(k, (size_t)C0 * 3 * P * P), w->patch_b = carve(k, C0);
    w->embed_ln_w = carve(k, C0), w->embed_ln_b = carve(k, C0);
    SwinBlockWeights dummy;  // counting: the blocks' array is not there yet
    int i = 0;
    for (int s = 0; s < w->stages; s++) {
        size_t C = swin_dim(c, s), I = swin_mlp(c, s), NH = c->heads[s];
        SwinStageWeights *st = &w->st[s];
        st->blocks = k->base ? w->block_mem + i : NULL;
        for (int d = 0; d < c->depths[s]; d++, i++) {
            SwinBlockWeights *b = k->base ? &w->block_mem[i] : &dummy;
            b->ln1_w = carve(k, C), b->ln1_b = carve(k, C);
            b->qkv_w = carve(k, 3 * C * C), b->qkv_b = c->qkv_bias ? carve(k, 3 * C) : NULL;
            b->table = carve(k, (size_t)R * R * NH);
            b->proj_w = carve(k, C * C), b->proj_b = carve(k, C);
            b->ln2_w = carve(k, C), b->ln2_b = carve(k, C);
            b->fc1_w = carve(k, I * C), b->fc1_b = carve(k, I);
            b->fc2_w = carve(k, C * I), b->fc2_b = carve(k, C);
        }
        st->merge_ln_w = st->merge_ln_b = st->merge_w = st->norm_w = st->norm_b = NULL;
        if (s + 1 < w->stages)
            st->merge_ln_w = carve(k, 4 * C), st->merge_ln_b = carve(k, 4 * C), st->merge_w = carve(k, 2 * C * 4 * C);
        if (c->outs & (1u << s)) st->norm_w = carve(k, C), st->norm_b = carve(k, C);
    }
}

// prefix + name into dst, its shape checked against the ndim sizes given
static int load(Checkpoint *ck, const char *prefix, const char *name, float *dst, int ndim, ...) {
    char full[320];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    // the file where one file holds the weights, else the folder (its index)
    const char *file = ck->n_shards == 1 ? ck->shard_paths[0] : ck->path;
    int64_t want[4];
    va_list ap;
    va_start(ap, ndim);
    for (int d = 0; d < ndim; d++) want[d] = va_arg(ap, int64_t);
    va_end(ap);
    return checkpoint_read_f32_shaped(ck, full, file, ndim, want, dst);
}
#define L1(name, dst, a) load(ck, prefix, name, dst, 1, (int64_t)(a))
#define L2(name, dst, a, b) load(ck, prefix, name, dst, 2, (int64_t)(a), (int64_t)(b))

// one block: query, key and value stacked into qkv
static int load_block(Checkpoint *ck, const char *prefix, const SwinConfig *c, int s, int d, SwinBlockWeights *b) {
    int C = swin_dim(c, s), I = swin_mlp(c, s), R = 2 * c->window - 1, rc = VLM_OK;
    char p[160], n[224];
    snprintf(p, sizeof p, "encoder.layers.%d.blocks.%d.", s, d);
#define NAME(x) (snprintf(n, sizeof n, "%s%s", p, x), n)
    if ((rc = L1(NAME("layernorm_before.weight"), b->ln1_w, C)) ||
        (rc = L1(NAME("layernorm_before.bias"), b->ln1_b, C)))
        return rc;
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int q = 0; q < 3; q++) {
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "attention.self.%s.weight", qkv[q]);
        snprintf(bn, sizeof bn, "attention.self.%s.bias", qkv[q]);
        if ((rc = L2(NAME(wn), b->qkv_w + (size_t)q * C * C, C, C)) ||
            (b->qkv_b && (rc = L1(NAME(bn), b->qkv_b + (size_t)q * C, C))))
            return rc;
    }
    if ((rc = L2(NAME("attention.self.relative_position_bias_table"), b->table, R * R, c->heads[s])) ||
        (rc = L2(NAME("attention.output.dense.weight"), b->proj_w, C, C)) ||
        (rc = L1(NAME("attention.output.dense.bias"), b->proj_b, C)) ||
        (rc = L1(NAME("layernorm_after.weight"), b->ln2_w, C)) ||
        (rc = L1(NAME("layernorm_after.bias"), b->ln2_b, C)) ||
        (rc = L2(NAME("intermediate.dense.weight"), b->fc1_w, I, C)) ||
        (rc = L1(NAME("intermediate.dense.bias"), b->fc1_b, I)) ||
        (rc = L2(NAME("output.dense.weight"), b->fc2_w, C, I)) || (rc = L1(NAME("output.dense.bias"), b->fc2_b, C)))
        return rc;
#undef NAME
    return VLM_OK;
}

int swin_weights_load(SwinWeights *w, const SwinConfig *c, Checkpoint *ck, const char *prefix) {
    memset(w, 0, sizeof *w);
    w->stages = c->out_stage;
    int blocks = 0, T = c->window * c->window;
    for (int s = 0; s < w->stages; s++) blocks += c->depths[s];
    Carve k = {0};
    weights_carve(w, &k, c);
    w->floats = k.used;
    w->block_mem = vlm_calloc((size_t)blocks, sizeof(SwinBlockWeights));
    w->rel_index = vlm_malloc(sizeof(int32_t) * (size_t)T * T);
    w->mem = vlm_alloc_aligned(sizeof(float) * k.used);
    if (!w->block_mem || !w->rel_index || !w->mem) return swin_weights_free(w), VLM_ERR_FAIL;
    k = (Carve){.base = w->mem};
    weights_carve(w, &k, c);
    window_relative_index(w->rel_index, c->window);
    int P = c->patch, C0 = c->embed_dim, rc;
    if ((rc = load(ck, prefix, "embeddings.patch_embeddings.projection.weight", w->patch_w, 4, (int64_t)C0, (int64_t)3,
                   (int64_t)P, (int64_t)P)) ||
        (rc = L1("embeddings.patch_embeddings.projection.bias", w->patch_b, C0)) ||
        (rc = L1("embeddings.norm.weight", w->embed_ln_w, C0)) || (rc = L1("embeddings.norm.bias", w->embed_ln_b, C0)))
        return swin_weights_free(w), rc;
    for (int s = 0; s < w->stages; s++) {
        SwinStageWeights *st = &w->st[s];
        int C = swin_dim(c, s);
        for (int d = 0; d < c->depths[s]; d++)
            if ((rc = load_block(ck, prefix, c, s, d, &st->blocks[d]))) return swin_weights_free(w), rc;
        char n[160];
        if (st->merge_w) {
            snprintf(n, sizeof n, "encoder.layers.%d.downsample.norm.weight", s);
            if ((rc = L1(n, st->merge_ln_w, 4 * C))) return swin_weights_free(w), rc;
            snprintf(n, sizeof n, "encoder.layers.%d.downsample.norm.bias", s);
            if ((rc = L1(n, st->merge_ln_b, 4 * C))) return swin_weights_free(w), rc;
            snprintf(n, sizeof n, "encoder.layers.%d.downsample.reduction.weight", s);
            if ((rc = L2(n, st->merge_w, 2 * C, 4 * C))) return swin_weights_free(w), rc;
        }
        if (st->norm_w) {
            snprintf(n, sizeof n, "hidden_states_norms.stage%d.weight", s + 1);
            if ((rc = L1(n, st->norm_w, C))) return swin_weights_free(w), rc;
            snprintf(n, sizeof n, "hidden_states_norms.stage%d.bias", s + 1);
            if ((rc = L1(n, st->norm_b, C))) return swin_weights_free(w), rc;
        }
    }
    return VLM_OK;
}

void swin_weights_free(SwinWeights *w) {
    free(w->mem), free(w->block_mem), free(w->rel_index);
    memset(w, 0, sizeof *w);
}

// ---- activations

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

static void acts_carve(SwinActs *a, Carve *k, const SwinConfig *c) {
    size_t n = (size_t)a->max_images, P = c->patch, tok = 0, pad = 0, wide = 0, merged = 0, rows = 0;
    size_t G = (size_t)(round_up(a->in_h, c->patch) / c->patch) * (round_up(a->in_w, c->patch) / c->patch);
    for (int s = 0; s < a->stages; s++) {
        const SwinStageGeom *g = &a->g[s];
        size_t N = (size_t)g->H * g->W, Np = (size_t)g->Hp * g->Wp;
        tok = tok > N * g->C ? tok : N * g->C;
        pad = pad > Np * g->C ? pad : Np * g->C;
        wide = wide > N * g->mlp ? wide : N * g->mlp;
        rows = rows > N ? rows : N;
        if (s + 1 < a->stages) {
            size_t M = (size_t)((g->H + 1) / 2) * ((g->W + 1) / 2);
            merged = merged > M * 4 * g->C ? merged : M * 4 * g->C;
            rows = rows > M ? rows : M;
        }
    }
    a->cols = carve(k, n * G * 3 * P * P);
    a->x = carve(k, n * tok), a->mid = carve(k, n * tok), a->ln = carve(k, n * tok);
    a->mean = carve(k, n * rows), a->rstd = carve(k, n * rows);
    a->win = carve(k, n * pad), a->qkv = carve(k, n * pad * 3), a->att = carve(k, n * pad);
    a->fc = carve(k, n * wide), a->merge = carve(k, n * merged), a->merge_ln = carve(k, n * merged);
    for (int s = 0; s < a->stages; s++) {
        const SwinStageGeom *g = &a->g[s];
        float *m = (a->maps_wanted & (1u << s)) ? carve(k, n * g->C * g->H * g->W) : NULL;
        if (k->base) a->map[s] = m;
    }
    int T = c->window * c->window;
    a->att_scratch = carve(k, window_attention_scratch_floats(T));
}

int swin_acts_init(SwinActs *a, const SwinConfig *c, const SwinWeights *w, int in_h, int in_w, int max_images,
                   unsigned maps_wanted) {
    memset(a, 0, sizeof *a);
    a->max_images = max_images, a->in_h = in_h, a->in_w = in_w, a->stages = w->stages, a->maps_wanted = maps_wanted;
    for (int s = 0; s < SWIN_MAX_STAGES; s++)
        if ((maps_wanted & (1u << s)) && (s >= w->stages || !w->st[s].norm_w))
            return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "stage %d's map is not an output of this backbone", s + 1);
    int ws = c->window, H = round_up(in_h, c->patch) / c->patch, W = round_up(in_w, c->patch) / c->patch;
    size_t regions = 0, T = (size_t)ws * ws;
    for (int s = 0; s < a->stages; s++) {
        SwinStageGeom *g = &a->g[s];
        g->H = H, g->W = W, g->Hp = round_up(H, ws), g->Wp = round_up(W, ws);
        g->nW = (g->Hp / ws) * (g->Wp / ws);
        g->C = swin_dim(c, s), g->NH = c->heads[s], g->mlp = swin_mlp(c, s);
        regions += (size_t)g->nW * T;
        H = (H + 1) / 2, W = (W + 1) / 2;
    }
    Carve k = {0};
    acts_carve(a, &k, c);
    a->floats = k.used;
    a->mem = vlm_alloc_aligned(sizeof(float) * k.used);
    a->imem = vlm_malloc(sizeof(int32_t) * regions);
    if (!a->mem || !a->imem) return swin_acts_free(a), VLM_ERR_FAIL;
    k = (Carve){.base = a->mem};
    acts_carve(a, &k, c);
    int32_t *r = a->imem;
    for (int s = 0; s < a->stages; s++) {
        const SwinStageGeom *g = &a->g[s];
        a->region[s] = r;
        window_shift_regions(r, g->Hp, g->Wp, ws, ws / 2);
        r += (size_t)g->nW * T;
    }
    return VLM_OK;
}

void swin_acts_free(SwinActs *a) {
    free(a->mem), free(a->imem);
    memset(a, 0, sizeof *a);
}

// ---- forward

// Block d of a stage: a->x -> a->x (SwinLayer.forward).
static void block_forward(SwinActs *a, const SwinConfig *c, const SwinWeights *w, int s, int d, int n) {
    const SwinStageGeom *g = &a->g[s];
    const SwinBlockWeights *b = &w->st[s].blocks[d];
    int ws = c->window, shift = d % 2 ? ws / 2 : 0, T = ws * ws, C = g->C, I = g->mlp, N = n * g->H * g->W;
    int Np = n * g->Hp * g->Wp;
    layernorm_forward(a->ln, a->mean, a->rstd, a->x, b->ln1_w, b->ln1_b, N, C, c->eps);
    window_partition_forward(a->win, a->ln, n, g->H, g->W, C, ws, shift);
    linear_forward(a->qkv, a->win, b->qkv_w, b->qkv_b, Np, C, 3 * C);
    window_attention_forward(a->att, a->qkv, b->table, w->rel_index, shift ? a->region[s] : NULL, n * g->nW, g->nW, T,
                             g->NH, C / g->NH, a->att_scratch);
    linear_forward(a->win, a->att, b->proj_w, b->proj_b, Np, C, C);
    window_merge_residual_forward(a->mid, a->x, a->win, n, g->H, g->W, C, ws, shift);
    layernorm_forward(a->ln, a->mean, a->rstd, a->mid, b->ln2_w, b->ln2_b, N, C, c->eps);
    linear_forward(a->fc, a->ln, b->fc1_w, b->fc1_b, N, C, I);
    gelu_forward(a->fc, a->fc, (size_t)N * I);
    linear_forward(a->ln, a->fc, b->fc2_w, b->fc2_b, N, I, C);
    residual_forward(a->x, a->mid, a->ln, (size_t)N * C);
}

void swin_forward(SwinActs *a, const SwinConfig *c, const SwinWeights *w, const float *pixels, int n) {
    int P = c->patch;
    const SwinStageGeom *g0 = &a->g[0];
    // embeddings: the padded patchify, the conv as one product (with its bias), LayerNorm
    patch_im2col_padded(a->cols, pixels, n, a->in_h, a->in_w, P);
    linear_forward(a->mid, a->cols, w->patch_w, w->patch_b, n * g0->H * g0->W, 3 * P * P, g0->C);
    layernorm_forward(a->x, a->mean, a->rstd, a->mid, w->embed_ln_w, w->embed_ln_b, n * g0->H * g0->W, g0->C,
                      TORCH_LN_EPS);
    for (int s = 0; s < a->stages; s++) {
        const SwinStageGeom *g = &a->g[s];
        const SwinStageWeights *st = &w->st[s];
        int N = n * g->H * g->W, C = g->C;
        for (int d = 0; d < c->depths[s]; d++) block_forward(a, c, w, s, d, n);
        if (a->map[s]) {  // the map before merging, through its norm, channels-first
            layernorm_forward(a->ln, a->mean, a->rstd, a->x, st->norm_w, st->norm_b, N, C, TORCH_LN_EPS);
            tokens_to_map_forward(a->map[s], a->ln, n, g->H * g->W, C);
        }
        if (s + 1 < a->stages) {  // patch merging: gather, LayerNorm(4C), reduction (no bias)
            int M = n * a->g[s + 1].H * a->g[s + 1].W;
            patch_merge_gather_forward(a->merge, a->x, n, g->H, g->W, C);
            layernorm_forward(a->merge_ln, a->mean, a->rstd, a->merge, st->merge_ln_w, st->merge_ln_b, M, 4 * C,
                              TORCH_LN_EPS);
            linear_forward(a->x, a->merge_ln, st->merge_w, NULL, M, 4 * C, 2 * C);
        }
    }
}
