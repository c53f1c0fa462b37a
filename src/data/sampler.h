// The order in which training visits records, per epoch.
//
// Random: a seeded permutation (HF Trainer's RandomSampler).
// Modality-grouped: LLaVA's LengthGroupedSampler(group_by_modality=True),
// the same algorithm with our seeded generator in place of torch.randperm:
// image and text-only records are shuffled separately, cut into megabatches
// of world_size * batch records, each sorted by length (longest first) and
// split into world_size chunks of balanced length; the megabatches of both
// kinds are shuffled together, and the two incomplete last ones, merged and
// sorted by index, come last. A batch then never mixes the two kinds.
//
// Length-grouped: HF Trainer's --group_by_length (transformers'
// LengthGroupedSampler / get_length_grouped_indices), also with our generator
// in place of torch.randperm, see sampler_length_grouped below.
//
// All are pure functions of (seed, epoch): the position to save for exact
// resume is (epoch, index into the order).
#ifndef VLM_DATA_SAMPLER_H
#define VLM_DATA_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"

// LLaVA's modality_lengths: per record the number of whitespace-separated
// words of all its messages (Python's str.split()), positive for records
// with an "image" key, negative for text-only ones. A record that does not
// parse, or has no words (upstream's sampler asserts), is an error naming it.
int dataset_modality_lengths(const Dataset *d, int32_t *lengths);

// order (n) for this epoch.
void sampler_random(size_t n, uint64_t seed, uint64_t epoch, uint64_t *order);
int sampler_modality_grouped(const int32_t *lengths, size_t n, int batch, int world, uint64_t seed, uint64_t epoch,
                             uint64_t *order);

// The algorithm with its three permutations given (what torch.randperm
// returns upstream): mm_perm over the image records (in index order), lang_perm
// over the text-only ones, mega_perm over the complete megabatches (image
// ones first). Exposed so the tests can replay upstream's exact output.
typedef struct {
    const uint64_t *mm_perm, *lang_perm;
    const uint64_t *(*mega_perm)(void *ctx, size_t count);  // a permutation of count
    void *ctx;
} GroupingPerms;
int sampler_group_with_perms(const int32_t *lengths, size_t n, int batch, int world, const GroupingPerms *perms,
                             uint64_t *order);

// HF's get_length_grouped_indices with its permutation given (torch.randperm
// upstream): perm cut into megabatches of mega_batch_mult * batch records
// (mega_batch_mult = min(n / (4 * batch), 50), at least 1), each sorted by
// length, longest first (ties keep perm's order: Python's sorted is stable);
// then the first megabatch's first record trades places with the first record
// of the megabatch holding the longest one (the first such: torch.argmax), so
// the first batch is the longest and an out-of-memory shows at once. batch is
// HF's train_batch_size * gradient_accumulation_steps (per device: accelerate
// shards the one order between ranks, as for the random order). lengths (n):
// the records' token counts (loader_token_lengths).
int sampler_length_grouped_with_perm(const int32_t *lengths, size_t n, int batch, const uint64_t *perm,
                                     uint64_t *order);
// The same on this epoch's random order (sampler_random's permutation: the
// grouping reorders the shuffle --group_by_length False would use).
int sampler_length_grouped(const int32_t *lengths, size_t n, int batch, uint64_t seed, uint64_t epoch,
                           uint64_t *order);

// Data parallel (accelerate's BatchSamplerShard with even_batches, under HF
// Trainer): rank's k-th batch of an epoch is batch k * world + rank of the
// epoch's order cut into batches of `batch`; the last ones are completed from
// the start of the order (positions past n wrap to (p - n) % min(n, world *
// batch)), so every rank gets sampler_shard_batches() full batches. One
// process keeps the last batch short, as Trainer without accelerate's shard.
// positions (batch) receives indices into the order; returns their count.
uint64_t sampler_shard_batches(uint64_t n, int batch, int world);
int sampler_shard_batch(uint64_t n, int batch, int world, int rank, uint64_t k, uint64_t *positions);

#endif
