// Record orders for training, see sampler.h.
#include "data/sampler.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/utf8.h"

// ---- modality lengths

static int64_t count_words(const char *s) {
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; s[i];) {
        size_t len;
        unsigned cp = utf8_decode(s + i, &len);
        bool space = py_isspace(cp);
        if (!space && !in_word) words++;
        in_word = !space;
        i += len ? len : 1;
    }
    return words;
}

int dataset_modality_lengths(const Dataset *d, int32_t *lengths) {
    for (size_t g = 0; g < d->count; g++) {
        int fi;
        size_t r;
        dataset_locate(d, g, &fi, &r);
        const DatasetFile *f = &d->files[fi];
        json_t *rec;
        if (dataset_file_record(f, r, &rec) != VLM_OK) return VLM_ERR_INPUT;
        json_t *convs = json_object_get(rec, "conversations");
        int64_t words = 0;
        size_t k;
        json_t *turn;
        json_array_foreach(convs, k, turn) {
            const char *v = json_string_value(json_object_get(turn, "value"));
            if (v) words += count_words(v);
        }
        bool image = json_object_get(rec, "image") != NULL;
        json_decref(rec);
        if (words == 0)
            return vlm_fail(VLM_ERR_INPUT, f->path, NULL,
                            "record %zu: no words in its messages (upstream's modality sampler asserts on this)", r);
        if (words > INT32_MAX) words = INT32_MAX;
        lengths[g] = image ? (int32_t)words : -(int32_t)words;
    }
    return VLM_OK;
}

// ---- the grouping algorithm

typedef struct {
    uint64_t index;  // local index
    int64_t length;
    size_t pos;      // position before sorting: ties keep it (Python's sort is stable)
} Keyed;

static int by_length_desc(const void *a, const void *b) {
    const Keyed *x = a, *y = b;
    if (x->length != y->length) return x->length > y->length ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

// split_to_even_chunks: m indices (sorted, longest first) into `world` chunks,
// written one chunk after another to out.
static void split_even(const Keyed *items, size_t m, int world, uint64_t *out, int64_t *chunk_len, size_t *chunk_n,
                       uint64_t *chunk_items) {
    if (m % (size_t)world != 0) {
        size_t o = 0;
        for (int c = 0; c < world; c++)
            for (size_t i = (size_t)c; i < m; i += (size_t)world) out[o++] = items[i].index;
        return;
    }
    size_t per = m / (size_t)world;
    const int64_t FULL = INT64_MAX;  // upstream's float("inf")
    for (int c = 0; c < world; c++) chunk_len[c] = 0, chunk_n[c] = 0;
    for (size_t i = 0; i < m; i++) {
        int best = 0;
        for (int c = 1; c < world; c++)
            if (chunk_len[c] < chunk_len[best]) best = c;  // the first minimum, like list.index(min())
        chunk_items[(size_t)best * per + chunk_n[best]++] = items[i].index;
        chunk_len[best] += items[i].length;
        if (chunk_n[best] == per) chunk_len[best] = FULL;
    }
    memcpy(out, chunk_items, m * sizeof *out);
}

// get_length_grouped_indices over n local records with lengths len[i] and a
// given permutation: megabatches of mega records (a multiple of world),
// sorted, split into world chunks (one chunk: the sorted megabatch as it is).
static int length_grouped(const int64_t *len, size_t n, const uint64_t *perm, size_t mega, int world, uint64_t *out) {
    Keyed *items = vlm_malloc(sizeof(Keyed) * (mega ? mega : 1));
    int64_t *chunk_len = vlm_malloc(sizeof(int64_t) * world);
    size_t *chunk_n = vlm_malloc(sizeof(size_t) * world);
    uint64_t *chunk_items = vlm_malloc(sizeof(uint64_t) * (mega ? mega : 1));
    int rc = items && chunk_len && chunk_n && chunk_items ? VLM_OK : VLM_ERR_FAIL;
    for (size_t start = 0; rc == VLM_OK && start < n; start += mega) {
        size_t m = n - start < mega ? n - start : mega;
        for (size_t i = 0; i < m; i++) items[i] = (Keyed){perm[start + i], len[perm[start + i]], i};
        qsort(items, m, sizeof *items, by_length_desc);
        split_even(items, m, world, out + start, chunk_len, chunk_n, chunk_items);
    }
    free(items), free(chunk_len), free(chunk_n), free(chunk_items);
    return rc;
}

static int check_perm(const uint64_t *perm, size_t n, const char *what) {
    // a permutation, or the order would silently drop or repeat records
    unsigned char *seen = vlm_calloc(n ? n : 1, 1);
    if (!seen) return VLM_ERR_FAIL;
    int rc = VLM_OK;
    for (size_t i = 0; i < n && rc == VLM_OK; i++) {
        if (perm[i] >= n || seen[perm[i]]) rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "%s is not a permutation", what);
        else seen[perm[i]] = 1;
    }
    free(seen);
    return rc;
}

int sampler_group_with_perms(const int32_t *lengths, size_t n, int batch, int world, const GroupingPerms *perms,
                             uint64_t *order) {
    if (batch < 1 || world < 1) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "batch and world size must be positive");
    size_t n_mm = 0, n_lang = 0;
    for (size_t i = 0; i < n; i++) {
        if (lengths[i] == 0) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "record %zu has length 0", i);
        if (lengths[i] > 0) n_mm++;
        else n_lang++;
    }
    int64_t *len = vlm_malloc(sizeof(int64_t) * (n ? n : 1));
    uint64_t *global = vlm_malloc(sizeof(uint64_t) * (n ? n : 1)), *grouped = vlm_malloc(sizeof(uint64_t) * (n ? n : 1));
    int rc = len && global && grouped ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK && (n_mm == 0 || n_lang == 0)) {
        // one modality: upstream groups the raw lengths (negative for text: shortest first)
        for (size_t i = 0; i < n; i++) len[i] = lengths[i];
        rc = check_perm(perms->mm_perm, n, "the permutation");
        if (rc == VLM_OK) rc = length_grouped(len, n, perms->mm_perm, (size_t)batch * (size_t)world, world, order);
        free(len), free(global), free(grouped);
        return rc;
    }
    if (rc == VLM_OK) rc = check_perm(perms->mm_perm, n_mm, "the image permutation");
    if (rc == VLM_OK) rc = check_perm(perms->lang_perm, n_lang, "the text permutation");
    // each modality grouped on its own: local lengths (text ones made positive), global indices
    size_t mega = (size_t)batch * (size_t)world;
    for (int pass = 0; rc == VLM_OK && pass < 2; pass++) {
        bool mm = pass == 0;
        size_t m = 0, base = mm ? 0 : n_mm;
        for (size_t i = 0; i < n; i++)
            if ((lengths[i] > 0) == mm) {
                len[base + m] = mm ? lengths[i] : -(int64_t)lengths[i];
                global[base + m++] = i;
            }
        rc = length_grouped(len + base, m, mm ? perms->mm_perm : perms->lang_perm, mega, world, grouped + base);
        for (size_t i = 0; rc == VLM_OK && i < m; i++) grouped[base + i] = global[base + grouped[base + i]];
    }
    if (rc == VLM_OK) {
        // complete megabatches of both kinds (each kind's last one excluded), shuffled together
        size_t mm_megas = (n_mm + mega - 1) / mega, lang_megas = (n_lang + mega - 1) / mega;
        size_t count = (mm_megas - 1) + (lang_megas - 1);
        const uint64_t *mp = perms->mega_perm(perms->ctx, count);
        rc = mp ? check_perm(mp, count, "the megabatch permutation") : VLM_ERR_FAIL;
        size_t o = 0;
        for (size_t k = 0; rc == VLM_OK && k < count; k++) {
            size_t j = mp[k];
            size_t start = j < mm_megas - 1 ? j * mega : n_mm + (j - (mm_megas - 1)) * mega;
            for (size_t i = 0; i < mega; i++) order[o++] = grouped[start + i];
        }
        if (rc == VLM_OK) {
            // the last image megabatch + the last text one, sorted by record index
            size_t first = o;
            for (size_t i = (mm_megas - 1) * mega; i < n_mm; i++) order[o++] = grouped[i];
            for (size_t i = n_mm + (lang_megas - 1) * mega; i < n; i++) order[o++] = grouped[i];
            for (size_t i = first + 1; i < o; i++)  // insertion sort: at most 2 * mega items
                for (size_t j = i; j > first && order[j - 1] > order[j]; j--) {
                    uint64_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        }
    }
    free(len), free(global), free(grouped);
    return rc;
}

// ---- HF's LengthGroupedSampler

int sampler_length_grouped_with_perm(const int32_t *lengths, size_t n, int batch, const uint64_t *perm,
                                     uint64_t *order) {
    if (batch < 1) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "the length-grouping batch size must be positive");
    int rc = check_perm(perm, n, "the permutation");
    size_t mult = n / ((size_t)batch * 4);
    if (mult > 50) mult = 50;
    if (mult == 0) mult = 1;
    size_t mega = mult * (size_t)batch;
    int64_t *len = rc == VLM_OK ? vlm_malloc(sizeof(int64_t) * (n ? n : 1)) : NULL;
    if (rc == VLM_OK && !len) rc = VLM_ERR_FAIL;
    for (size_t i = 0; rc == VLM_OK && i < n; i++) len[i] = lengths[i];
    if (rc == VLM_OK) rc = length_grouped(len, n, perm, mega, 1, order);
    // the megabatch whose first (longest) record is the longest overall trades it with the first
    size_t longest = 0;
    for (size_t start = 0; rc == VLM_OK && start < n; start += mega)
        if (lengths[order[start]] > lengths[order[longest]]) longest = start;
    if (rc == VLM_OK && n) {
        uint64_t t = order[0];
        order[0] = order[longest];
        order[longest] = t;
    }
    free(len);
    return rc;
}

// ---- seeded versions

static void identity_shuffled(uint64_t *p, size_t n, uint64_t seed, uint64_t stream) {
    for (size_t i = 0; i < n; i++) p[i] = i;
    Rng rng;
    rng_init(&rng, seed, stream);
    rng_shuffle_u64(&rng, p, n);
}

void sampler_random(size_t n, uint64_t seed, uint64_t epoch, uint64_t *order) {
    identity_shuffled(order, n, seed, epoch * 4);
}

typedef struct {
    uint64_t seed, epoch;
    uint64_t *buf;
} MegaCtx;

static const uint64_t *seeded_mega_perm(void *ctx, size_t count) {
    MegaCtx *c = ctx;
    c->buf = vlm_malloc(sizeof(uint64_t) * (count ? count : 1));
    if (c->buf) identity_shuffled(c->buf, count, c->seed, c->epoch * 4 + 3);
    return c->buf;
}

int sampler_modality_grouped(const int32_t *lengths, size_t n, int batch, int world, uint64_t seed, uint64_t epoch,
                             uint64_t *order) {
    size_t n_mm = 0;
    for (size_t i = 0; i < n; i++) n_mm += lengths[i] > 0;
    size_t n_lang = n - n_mm;
    // one stream per permutation, so each is a pure function of (seed, epoch)
    uint64_t *mm = vlm_malloc(sizeof(uint64_t) * (n ? n : 1)), *lang = vlm_malloc(sizeof(uint64_t) * (n_lang ? n_lang : 1));
    MegaCtx ctx = {seed, epoch, NULL};
    int rc = mm && lang ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) {
        bool one_kind = n_mm == 0 || n_lang == 0;
        identity_shuffled(mm, one_kind ? n : n_mm, seed, epoch * 4 + 1);
        identity_shuffled(lang, n_lang, seed, epoch * 4 + 2);
        GroupingPerms perms = {mm, lang, seeded_mega_perm, &ctx};
        rc = sampler_group_with_perms(lengths, n, batch, world, &perms, order);
    }
    free(mm), free(lang), free(ctx.buf);
    return rc;
}

int sampler_length_grouped(const int32_t *lengths, size_t n, int batch, uint64_t seed, uint64_t epoch,
                           uint64_t *order) {
    uint64_t *perm = vlm_malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!perm) return VLM_ERR_FAIL;
    sampler_random(n, seed, epoch, perm);
    int rc = sampler_length_grouped_with_perm(lengths, n, batch, perm, order);
    free(perm);
    return rc;
}

// ---- data parallel shards

uint64_t sampler_shard_batches(uint64_t n, int batch, int world) {
    uint64_t W = world > 1 ? (uint64_t)world : 1;
    return ((n + (uint64_t)batch - 1) / (uint64_t)batch + W - 1) / W;
}

int sampler_shard_batch(uint64_t n, int batch, int world, int rank, uint64_t k, uint64_t *positions) {
    uint64_t W = world > 1 ? (uint64_t)world : 1, B = (uint64_t)batch, first = (k * W + (uint64_t)rank) * B;
    uint64_t end = W == 1 && first + B > n ? n : first + B, wrap = n < W * B ? n : W * B;
    for (uint64_t p = first; p < end; p++) positions[p - first] = p < n ? p : (p - n) % wrap;
    return (int)(end - first);
}
