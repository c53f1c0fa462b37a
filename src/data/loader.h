// The batch loader: records -> (input_ids, labels, attention_mask, images),
// exactly what upstream's LazySupervisedDataset + DataCollatorForSupervised-
// Dataset hand the model, prepared ahead by background threads.
//
// Order: the sampler (random, modality-grouped or length-grouped) per epoch; batch k of an
// epoch holds order[k*B .. k*B+B). Several ranks (HF Trainer under accelerate:
// BatchSamplerShard, even_batches): rank r's batch k is the epoch's batch
// k * world + r, every rank reads and decodes only its own, and the last
// ones are completed from the start of the order so that every rank gets
// ceil(batches / world) full batches. Every batch is a pure function of
// (seed, epoch, k), so the position (epoch, k) restores a run exactly, and the
// thread count never changes a batch.
//
// Collation: right padding to the longest sample (at most max_len, which the
// template already truncated to, like upstream's collator), labels padded
// with IGNORE_INDEX, attention mask 1 on real tokens. Upstream computes the
// mask as input_ids != pad_id with pad = unk, which also masks a literal
// "<unk>" in the text; we mask by length.
//
// Bad records (invalid JSON, schema, placeholders, missing / unreadable
// image, template failure): with BAD_RECORD_STOP the batch fails with the
// message naming file, record and reason; with BAD_RECORD_SKIP the record is
// left out of its batch (the batch is smaller, never refilled with another
// record) and listed in batch->skipped for the run's log.
#ifndef VLM_DATA_LOADER_H
#define VLM_DATA_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "image/preprocess.h"
#include "text/template.h"

typedef enum { BAD_RECORD_STOP, BAD_RECORD_SKIP } BadRecordPolicy;

typedef struct {
    const Dataset *data;
    const Template *tpl;
    const Tokenizer *tok;
    MaskPolicy mask;
    int max_len;             // model_max_length
    Preprocessor image;      // size, crop, pad, mean / std
    int batch_size;          // per device
    bool group_by_modality;  // LLaVA's / mPLUG-Owl2's group_by_modality_length (wins over group_by_length)
    int group_world;         // upstream's LengthGroupedSampler world_size (GPUs x accumulation steps)
    bool group_by_length;    // HF Trainer's group_by_length
    int length_group_batch;  // its batch size: per-device batch x accumulation steps
    uint64_t seed;
    int workers;             // background threads (0: batches are built in loader_next)
    int prefetch;            // batches prepared ahead (>= workers)
    BadRecordPolicy bad_records;
    int rank, world;         // data parallel: this rank's share of each epoch (world 0 or 1: everything)
} LoaderConfig;

typedef struct {
    uint64_t record;         // global record index
    char reason[600];        // "FILE: record N: reason"
} SkippedRecord;

typedef struct {
    uint64_t epoch, index;   // which batch of which epoch
    int n;                   // samples (fewer than batch_size at an epoch's end or after skips; may be 0)
    int T;                   // padded length
    int32_t *input_ids;      // (n, T), pad-filled; IMAGE_TOKEN_INDEX where an image goes
    int32_t *labels;         // (n, T), IGNORE_INDEX-filled
    uint8_t *attention_mask; // (n, T)
    int *len;                // (n) real tokens per sample
    uint64_t *records;       // (n) global record index of each sample
    int *image_of;           // (n) index into pixel_values, -1 for a text-only sample
    int n_images;
    float *pixel_values;     // (n_images, 3, crop_h, crop_w)
    int n_truncated, n_mismatch;
    SkippedRecord *skipped;
    int n_skipped;
} Batch;

typedef struct {
    uint64_t epoch, index;   // the next batch loader_next returns
} LoaderPosition;

typedef struct Loader Loader;

// Indexes nothing new: uses cfg->data as it is (modality lengths, or token
// lengths by rendering every record once, are computed here when grouping). Starts the worker threads at position (0, 0).
int loader_open(Loader **out, const LoaderConfig *cfg);
// The next batch, in order; valid until the next call. Errors (STOP policy)
// carry the bad record's message.
int loader_next(Loader *L, const Batch **out);
LoaderPosition loader_position(const Loader *L);
int loader_seek(Loader *L, LoaderPosition pos);
uint64_t loader_batches_per_epoch(const Loader *L);
uint64_t loader_skipped_total(const Loader *L);  // over the batches returned so far
void loader_close(Loader *L);

// What HF's LengthGroupedSampler measures for --group_by_length: per record
// len(dataset[i]["input_ids"]), upstream's __getitem__ tokens (the text-only
// path's truncation at max_len applied, the collator's cut not; upstream loads
// every image for it, the tokens alone give the same count). lengths
// (cfg->data->count). A bad record is an error naming it under
// BAD_RECORD_STOP, as upstream's sampler would fail; under BAD_RECORD_SKIP it
// gets length 1 and is skipped, with its reason, by the batch that meets it.
int loader_token_lengths(const LoaderConfig *cfg, int32_t *lengths);

// The pad id upstream uses for this template: the template's pad token when
// it adds one (Llama-3's "<pad>"), else unk (LLaVA sets pad = unk), else the
// tokenizer's pad, else 0.
int32_t loader_pad_id(const Template *tpl, const Tokenizer *tok);

#endif
