// The samplers (against LLaVA's algorithm replayed with the same
// permutations, and against transformers' own --group_by_length order) and
// the batch loader (collation, bad-record policies,
// determinism across thread counts, exact resume).
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "test_util.h"

#define IMAGES VLM_SOURCE_DIR "/../shared/assets/images"
#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"

static const uint64_t *json_perm(json_t *arr, uint64_t *buf) {
    for (size_t i = 0; i < json_array_size(arr); i++) buf[i] = (uint64_t)json_integer_value(json_array_get(arr, i));
    return buf;
}

typedef struct {
    json_t *perm;
    uint64_t buf[512];
} FixedMega;

static const uint64_t *fixed_mega(void *ctx, size_t count) {
    FixedMega *m = ctx;
    ck_assert_uint_eq(count, json_array_size(m->perm));
    return json_perm(m->perm, m->buf);
}

START_TEST(sampler_replays_llava) {
    json_t *doc = fixture_json("data/sampler.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        json_t *lens = json_object_get(c, "lengths"), *perms = json_object_get(c, "perms"), *want = json_object_get(c, "order");
        size_t n = json_array_size(lens);
        int32_t lengths[512];
        uint64_t order[512], mm[512], lang[512];
        for (size_t k = 0; k < n; k++) lengths[k] = (int32_t)json_integer_value(json_array_get(lens, k));
        FixedMega mega = {json_array_get(perms, json_array_size(perms) - 1), {0}};
        GroupingPerms gp = {json_perm(json_array_get(perms, 0), mm),
                            json_array_size(perms) == 3 ? json_perm(json_array_get(perms, 1), lang) : lang, fixed_mega, &mega};
        int rc = sampler_group_with_perms(lengths, n, (int)json_integer_value(json_object_get(c, "batch")),
                                          (int)json_integer_value(json_object_get(c, "world")), &gp, order);
        ck_assert_msg(rc == VLM_OK, "%s", vlm_last_error());
        ck_assert_uint_eq(json_array_size(want), n);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(order[k] == (uint64_t)json_integer_value(json_array_get(want, k)), "case %zu position %zu", i, k);
    }
    ck_assert_uint_eq(i, 24);
    json_decref(doc);
}
END_TEST

START_TEST(sampler_seeded_properties) {
    enum { N = 1000, B = 4 };
    int32_t lengths[N];
    for (int i = 0; i < N; i++) lengths[i] = (i % 3 == 0 ? -1 : 1) * (1 + (i * 7919) % 97);
    uint64_t a[N], b[N], c[N];
    ck_assert_int_eq(sampler_modality_grouped(lengths, N, B, 1, 42, 0, a), VLM_OK);
    ck_assert_int_eq(sampler_modality_grouped(lengths, N, B, 1, 42, 0, b), VLM_OK);
    ck_assert_int_eq(sampler_modality_grouped(lengths, N, B, 1, 42, 1, c), VLM_OK);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);  // a pure function of (seed, epoch)
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);  // a new order each epoch
    unsigned char seen[N] = {0};
    for (int i = 0; i < N; i++) seen[a[i]]++;
    for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
    // every batch before the final merged megabatch holds one modality, longest first
    int complete = (N / 3 + 1) / B * B + (N - (N / 3 + 1)) / B * B - 2 * B;
    for (int s = 0; s < complete; s += B)
        for (int k = 1; k < B; k++) {
            ck_assert_int_eq(lengths[a[s + k]] > 0, lengths[a[s]] > 0);
            ck_assert_int_le(abs(lengths[a[s + k]]), abs(lengths[a[s + k - 1]]));
        }
    sampler_random(N, 42, 0, b);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    int32_t zero[3] = {1, 0, -2};
    ck_assert_int_eq(sampler_modality_grouped(zero, 3, 1, 1, 0, 0, a), VLM_ERR_INPUT);
}
END_TEST

// transformers 4.31.0's Trainer._get_train_sampler with group_by_length over upstream mPLUG-Owl2's
// dataset (tools/make_length_sampler_fixtures.sh): given torch.randperm's draw, the same order, for
// mega_batch_mult 50, in between and 1, with HF's batch = per-device batch x accumulation steps.
// (The lengths themselves: owl2_token_lengths_match_upstream.)
START_TEST(sampler_replays_hf_group_by_length) {
    json_t *doc = fixture_json("owl2/length_sampler.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        json_t *lens = json_object_get(c, "lengths"), *want = json_object_get(c, "order");
        size_t n = json_array_size(lens);
        ck_assert_uint_le(n, 512);
        int32_t lengths[512];
        uint64_t perm[512], order[512];
        for (size_t k = 0; k < n; k++) lengths[k] = (int32_t)json_integer_value(json_array_get(lens, k));
        json_perm(json_object_get(c, "perm"), perm);
        int batch = (int)json_integer_value(json_object_get(c, "sampler_batch_size"));
        ck_assert_int_eq(batch, json_integer_value(json_object_get(c, "per_device_train_batch_size")) *
                                    json_integer_value(json_object_get(c, "gradient_accumulation_steps")));
        ck_assert_msg(sampler_length_grouped_with_perm(lengths, n, batch, perm, order) == VLM_OK, "%s", vlm_last_error());
        ck_assert_uint_eq(json_array_size(want), n);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(order[k] == (uint64_t)json_integer_value(json_array_get(want, k)), "case %zu position %zu", i, k);
    }
    ck_assert_uint_eq(i, 7);
    json_decref(doc);
    uint64_t bad[3] = {0, 0, 1};
    int32_t three[3] = {1, 2, 3};
    uint64_t out[3];
    ck_assert_int_eq(sampler_length_grouped_with_perm(three, 3, 1, bad, out), VLM_ERR_INPUT);
    ck_assert_int_eq(sampler_length_grouped_with_perm(three, 3, 0, out, out), VLM_ERR_INPUT);
}
END_TEST

START_TEST(sampler_length_grouped_properties) {
    enum { N = 1000, B = 4 };  // megabatches of min(1000 / 16, 50) x 4 = 200
    int32_t lengths[N];
    for (int i = 0; i < N; i++) lengths[i] = 1 + (i * 7919) % 97;
    uint64_t a[N], b[N], c[N], r[N];
    ck_assert_int_eq(sampler_length_grouped(lengths, N, B, 42, 0, a), VLM_OK);
    ck_assert_int_eq(sampler_length_grouped(lengths, N, B, 42, 0, b), VLM_OK);
    ck_assert_int_eq(sampler_length_grouped(lengths, N, B, 42, 1, c), VLM_OK);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);  // a pure function of (seed, epoch)
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);  // a new order each epoch
    unsigned char seen[N] = {0};
    for (int i = 0; i < N; i++) seen[a[i]]++;
    for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(lengths[a[0]], 97);  // the longest first
    // each megabatch of 200 is the random order's same 200 records, longest first (but for the swap)
    sampler_random(N, 42, 0, r);
    for (int m = 0; m < N; m += 200) {
        unsigned char in[N] = {0};
        for (int i = m; i < m + 200; i++) in[r[i]] = 1;
        for (int i = m; i < m + 200; i++) {
            if (i != m) ck_assert_msg(in[a[i]], "megabatch %d", m / 200);  // m: the swap's place
            if (i > m + 1) ck_assert_int_le(lengths[a[i]], lengths[a[i - 1]]);
        }
    }
}
END_TEST

START_TEST(modality_lengths_count_words) {
    const char *text =
        "[{\"image\": \"x.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWhat is  this?\"},"
        " {\"from\": \"gpt\", \"value\": \"A\\tcat.\\u3000Yes\"}]},"
        " {\"conversations\": [{\"from\": \"human\", \"value\": \" Hi there \"}, {\"from\": \"gpt\", \"value\": \"Hello\"}]}]";
    Dataset d = {0};
    ck_assert_int_eq(dataset_add(&d, temp_file(text), NULL), VLM_OK);
    int32_t lengths[2];
    ck_assert_int_eq(dataset_modality_lengths(&d, lengths), VLM_OK);
    ck_assert_int_eq(lengths[0], 7);   // <image> What is this? A cat. Yes (U+3000 is whitespace)
    ck_assert_int_eq(lengths[1], -3);
    dataset_close(&d);
    ck_assert_int_eq(dataset_add(&d, temp_file("[{\"conversations\": [{\"from\": \"human\", \"value\": \"  \"}]}]"), NULL),
                     VLM_OK);
    ck_assert_int_eq(dataset_modality_lengths(&d, lengths), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "record 0: no words") != NULL, "%s", vlm_last_error());
    dataset_close(&d);
}
END_TEST

// ---- the loader on real photos and the LLaMA-2 tokenizer

static const char *RECORDS =
    "[{\"id\": \"a\", \"image\": \"extreme_ironing.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWhat is unusual?\"}, {\"from\": \"gpt\", \"value\": \"A man irons on a taxi.\"}]},\n"
    " {\"id\": \"b\", \"conversations\": [{\"from\": \"human\", \"value\": \"Say hi.\"}, {\"from\": \"gpt\", \"value\": \"Hi!\"}]},\n"
    " {\"id\": \"c\", \"image\": \"llava_logo.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"Describe the logo.\\n<image>\"}, {\"from\": \"gpt\", \"value\": \"A volcano with glasses, drawn in a cartoon style, with the word LLaVA under it in large letters.\"}]},\n"
    " {\"id\": \"missing\", \"image\": \"nope.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nHi\"}, {\"from\": \"gpt\", \"value\": \"Hello.\"}]},\n"
    " {\"id\": \"d\", \"image\": \"waterview.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWhere?\"}, {\"from\": \"gpt\", \"value\": \"A lake.\"}, {\"from\": \"human\", \"value\": \"Weather?\"}, {\"from\": \"gpt\", \"value\": \"Sunny.\"}]},\n"
    " {\"id\": \"e\", \"conversations\": [{\"from\": \"human\", \"value\": \"Count to three.\"}, {\"from\": \"gpt\", \"value\": \"One, two, three.\"}]},\n"
    " {\"id\": \"f\", \"image\": \"sausage.jpg\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nFood?\"}, {\"from\": \"gpt\", \"value\": \"Yes.\"}]}]";

typedef struct {
    Dataset data;
    Tokenizer tok;
    LoaderConfig cfg;
} Fixture;

typedef enum { ORDER_RANDOM, ORDER_MODALITY, ORDER_LENGTH } Order;

static void fixture_open(Fixture *fx, int workers, BadRecordPolicy policy, Order order) {
    memset(fx, 0, sizeof *fx);
    ck_assert_int_eq(dataset_add(&fx->data, temp_file(RECORDS), IMAGES), VLM_OK);
    ck_assert_int_eq(tokenizer_load(&fx->tok, LLAMA2), VLM_OK);
    fx->cfg = (LoaderConfig){.data = &fx->data, .tpl = template_find("v1"), .tok = &fx->tok, .mask = MASK_SPANS,
                             .max_len = 48, .batch_size = 3, .group_by_modality = order == ORDER_MODALITY, .group_world = 1,
                             .group_by_length = order == ORDER_LENGTH, .length_group_batch = 3,
                             .seed = 7, .workers = workers, .prefetch = 3, .bad_records = policy};
    preprocessor_default(&fx->cfg.image, 64);
    fx->cfg.image.pad = true;
}

static void fixture_close(Fixture *fx) {
    tokenizer_free(&fx->tok);
    dataset_close(&fx->data);
}

static uint64_t batch_hash(const Batch *b) {
    uint64_t h = 0xcbf29ce484222325ULL;
#define MIX(ptr, bytes)                                                                      \
    for (size_t q = 0; q < (size_t)(bytes); q++) h = (h ^ ((const uint8_t *)(ptr))[q]) * 0x100000001b3ULL;
    MIX(&b->n, sizeof b->n);
    MIX(&b->T, sizeof b->T);
    MIX(b->input_ids, sizeof(int32_t) * b->n * b->T);
    MIX(b->labels, sizeof(int32_t) * b->n * b->T);
    MIX(b->attention_mask, (size_t)b->n * b->T);
    MIX(b->records, sizeof(uint64_t) * b->n);
    MIX(b->image_of, sizeof(int) * b->n);
    MIX(b->pixel_values, sizeof(float) * 3 * 64 * 64 * b->n_images);
#undef MIX
    return h;
}

START_TEST(loader_collates_like_upstream) {
    Fixture fx;
    fixture_open(&fx, 2, BAD_RECORD_SKIP, ORDER_RANDOM);
    Loader *L;
    ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_OK);
    ck_assert_uint_eq(loader_batches_per_epoch(L), 3);
    int samples = 0, images = 0;
    PreprocessScratch scratch = {0};
    float *want_pixels = malloc(sizeof(float) * 3 * 64 * 64);
    for (int k = 0; k < 3; k++) {
        const Batch *b;
        ck_assert_msg(loader_next(L, &b) == VLM_OK, "%s", vlm_last_error());
        ck_assert_uint_eq(b->epoch, 0);
        ck_assert_uint_eq(b->index, (uint64_t)k);
        for (int s = 0; s < b->n_skipped; s++) {
            ck_assert_uint_eq(b->skipped[s].record, 3);
            ck_assert_msg(strstr(b->skipped[s].reason, "nope.jpg: image not found") != NULL, "%s", b->skipped[s].reason);
        }
        int maxlen = 0;
        for (int i = 0; i < b->n; i++) {
            // the sample equals the template's rendering of its record, right-padded
            json_t *rec;
            ck_assert_int_eq(dataset_file_record(&fx.data.files[0], b->records[i], &rec), VLM_OK);
            Conversation c;
            ck_assert_int_eq(conversation_parse(&c, rec, "t"), VLM_OK);
            Rendered r;
            ck_assert_int_eq(template_render(fx.cfg.tpl, &fx.tok, &c, 48, MASK_SPANS, &r, "t"), VLM_OK);
            ck_assert_int_eq(b->len[i], (int)r.input_ids.len);
            if (b->len[i] > maxlen) maxlen = b->len[i];
            for (int t = 0; t < b->T; t++) {
                bool real = t < b->len[i];
                ck_assert_int_eq(b->input_ids[i * b->T + t], real ? r.input_ids.data[t] : 0);  // pad = unk = 0
                ck_assert_int_eq(b->labels[i * b->T + t], real ? r.labels.data[t] : IGNORE_INDEX);
                ck_assert_int_eq(b->attention_mask[i * b->T + t], real);
            }
            // the image equals preprocessing it directly
            ck_assert_int_eq(b->image_of[i] >= 0, c.image != NULL);
            if (c.image) {
                char path[512];
                snprintf(path, sizeof path, "%s/%s", IMAGES, c.image);
                Image im;
                ck_assert_int_eq(image_decode_file(path, &im), VLM_OK);
                ck_assert_int_eq(image_preprocess(&im, &fx.cfg.image, want_pixels, NULL, &scratch, path), VLM_OK);
                ck_assert_int_eq(memcmp(want_pixels, b->pixel_values + (size_t)b->image_of[i] * 3 * 64 * 64,
                                        sizeof(float) * 3 * 64 * 64), 0);
                image_free(&im);
                images++;
            }
            rendered_free(&r);
            conversation_free(&c);
            json_decref(rec);
        }
        ck_assert_int_eq(b->T, maxlen);
        samples += b->n;
    }
    ck_assert_int_eq(samples, 6);
    ck_assert_int_eq(images, 4);
    ck_assert_uint_eq(loader_skipped_total(L), 1);
    LoaderPosition p = loader_position(L);
    ck_assert(p.epoch == 1 && p.index == 0);
    free(want_pixels);
    preprocess_scratch_free(&scratch);
    loader_close(L);
    fixture_close(&fx);
}
END_TEST

START_TEST(loader_stops_on_a_bad_record) {
    Fixture fx;
    fixture_open(&fx, 1, BAD_RECORD_STOP, ORDER_RANDOM);
    Loader *L;
    ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_OK);
    const Batch *b;
    int rc = VLM_OK, batches = 0;
    while (batches < 3 && (rc = loader_next(L, &b)) == VLM_OK) batches++;
    ck_assert_int_eq(rc, VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), ": record 3: ") != NULL && strstr(vlm_last_error(), "nope.jpg: image not found"),
                  "%s", vlm_last_error());
    loader_close(L);
    fixture_close(&fx);
}
END_TEST

// --group_by_length: every record's upstream token count, then batches in the
// length-grouped order (the missing image's record skipped where it falls).
START_TEST(loader_groups_by_length) {
    Fixture fx;
    fixture_open(&fx, 1, BAD_RECORD_SKIP, ORDER_LENGTH);
    int32_t lengths[7];
    ck_assert_int_eq(loader_token_lengths(&fx.cfg, lengths), VLM_OK);
    for (uint64_t g = 0; g < 7; g++) {
        json_t *rec;
        ck_assert_int_eq(dataset_file_record(&fx.data.files[0], g, &rec), VLM_OK);
        Conversation c;
        ck_assert_int_eq(conversation_parse(&c, rec, "t"), VLM_OK);
        Rendered r;
        ck_assert_int_eq(template_render(fx.cfg.tpl, &fx.tok, &c, 0, MASK_SPANS, &r, "t"), VLM_OK);
        // past max_len 48 an image record keeps its full count (record c), a text-only one is cut (e)
        int want = c.image || r.input_ids.len < 48 ? (int)r.input_ids.len : 48;
        ck_assert_msg(lengths[g] == want, "record %d: %d, rendered %zu", (int)g, lengths[g], r.input_ids.len);
        rendered_free(&r);
        conversation_free(&c);
        json_decref(rec);
    }
    ck_assert_int_gt(lengths[2], 48);
    ck_assert_int_eq(lengths[5], 48);
    uint64_t want[7];
    ck_assert_int_eq(sampler_length_grouped(lengths, 7, 3, fx.cfg.seed, 0, want), VLM_OK);
    ck_assert_uint_eq(want[0], 2);  // the longest first
    Loader *L;
    ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_OK);
    for (int k = 0; k < 3; k++) {  // batches of 3, 3, 1
        const Batch *b;
        ck_assert_int_eq(loader_next(L, &b), VLM_OK);
        int i = 0;
        for (int j = 3 * k; j < 3 * k + 3 && j < 7; j++) {
            if (want[j] == 3) {  // the missing image
                ck_assert_int_eq(b->n_skipped, 1);
                continue;
            }
            ck_assert_uint_eq(b->records[i++], want[j]);
        }
        ck_assert_int_eq(b->n, i);
    }
    loader_close(L);
    // a record that does not render stops the loader at open under STOP, naming it
    fixture_close(&fx);
    memset(&fx, 0, sizeof fx);
    ck_assert_int_eq(dataset_add(&fx.data, temp_file("[{\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, {\"from\": \"gpt\", \"value\": \"Yo\"}]}, {\"id\": \"b\", \"conversations\": 5}]"), IMAGES), VLM_OK);
    ck_assert_int_eq(tokenizer_load(&fx.tok, LLAMA2), VLM_OK);
    fx.cfg = (LoaderConfig){.data = &fx.data, .tpl = template_find("v1"), .tok = &fx.tok, .max_len = 48,
                            .batch_size = 1, .group_world = 1, .group_by_length = true, .length_group_batch = 1,
                            .bad_records = BAD_RECORD_STOP};
    preprocessor_default(&fx.cfg.image, 64);
    ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "record 1") != NULL, "%s", vlm_last_error());
    fx.cfg.bad_records = BAD_RECORD_SKIP;
    ck_assert_int_eq(loader_token_lengths(&fx.cfg, lengths), VLM_OK);
    ck_assert_int_eq(lengths[1], 1);
    fixture_close(&fx);
}
END_TEST

// The same batches with 0, 1 or 3 threads and each order; a loader moved to
// a saved position continues with exactly the batches an uninterrupted one gives.
START_TEST(loader_is_deterministic_and_resumable) {
    for (Order grouped = ORDER_RANDOM; grouped <= ORDER_LENGTH; grouped++) {
        uint64_t want[8];
        LoaderPosition after2 = {0, 0};
        for (int workers = 0; workers <= 3; workers += workers ? 2 : 1) {
            Fixture fx;
            fixture_open(&fx, workers, BAD_RECORD_SKIP, grouped);
            Loader *L;
            ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_OK);
            for (int k = 0; k < 8; k++) {  // almost three epochs
                const Batch *b;
                ck_assert_int_eq(loader_next(L, &b), VLM_OK);
                uint64_t h = batch_hash(b);
                if (workers == 0) want[k] = h;
                else ck_assert_msg(h == want[k], "batch %d differs with %d workers", k, workers);
                if (k == 1) after2 = loader_position(L);
            }
            // resume from after batch 2, in a fresh loader
            loader_close(L);
            ck_assert_int_eq(loader_open(&L, &fx.cfg), VLM_OK);
            ck_assert_int_eq(loader_seek(L, after2), VLM_OK);
            for (int k = 2; k < 8; k++) {
                const Batch *b;
                ck_assert_int_eq(loader_next(L, &b), VLM_OK);
                ck_assert_msg(batch_hash(b) == want[k], "resumed batch %d differs", k);
            }
            loader_close(L);
            fixture_close(&fx);
        }
        ck_assert(want[0] != want[3]);  // epochs are shuffled differently
    }
}
END_TEST

Suite *loader_suite(void) {
    return SUITE("loader", "", 120,
                 sampler_replays_llava,
                 sampler_seeded_properties,
                 sampler_replays_hf_group_by_length,
                 sampler_length_grouped_properties,
                 modality_lengths_count_words,
                 loader_collates_like_upstream,
                 loader_stops_on_a_bad_record,
                 loader_groups_by_length,
                 loader_is_deterministic_and_resumable);
}
