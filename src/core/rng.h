// Seeded, counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
//
// A counter-based generator is a pure function (key, counter) -> 128 random
// bits, so a stream can be positioned anywhere in O(1): resuming a run or
// giving each sample / thread its own stream needs only a seed and an index,
// never a saved generator state or a sequential replay.
#ifndef VLM_CORE_RNG_H
#define VLM_CORE_RNG_H

#include <stdint.h>

// The raw block function: 4 output words from a 4-word counter and 2-word key.
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

// A stream: key = seed, counter = (position, stream id). Each call consumes
// one 32-bit word; `position` counts 32-bit words drawn so far, so the state
// to save for exact resume is (seed, stream, position).
typedef struct {
    uint64_t seed;
    uint64_t stream;
    uint64_t position;
} Rng;

void rng_init(Rng *rng, uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *rng);
uint64_t rng_u64(Rng *rng);
float rng_uniform(Rng *rng);                  // [0, 1), 24 random bits
double rng_uniform_double(Rng *rng);          // [0, 1), 53 random bits
float rng_normal(Rng *rng);                   // mean 0, std 1 (Box-Muller)
uint64_t rng_below(Rng *rng, uint64_t bound); // uniform in [0, bound), unbiased
void rng_shuffle_u64(Rng *rng, uint64_t *items, uint64_t n);  // Fisher-Yates

#endif
