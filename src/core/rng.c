// Philox4x32-10 and the stream built on it, see rng.h.
#include "core/rng.h"

#include <math.h>  // logf, cosf, sqrtf

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // golden ratio
#define PHILOX_W1 0xBB67AE85u  // sqrt(3) - 1

void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_init(Rng *rng, uint64_t seed, uint64_t stream) {
    rng->seed = seed;
    rng->stream = stream;
    rng->position = 0;
}

uint32_t rng_u32(Rng *rng) {
    // one Philox block yields 4 words: block index = position / 4
    uint64_t block = rng->position >> 2;
    uint32_t counter[4] = {(uint32_t)block, (uint32_t)(block >> 32),
                           (uint32_t)rng->stream, (uint32_t)(rng->stream >> 32)};
    uint32_t key[2] = {(uint32_t)rng->seed, (uint32_t)(rng->seed >> 32)};
    uint32_t out[4];
    philox4x32_10(counter, key, out);
    return out[rng->position++ & 3];
}

uint64_t rng_u64(Rng *rng) {
    uint64_t hi = rng_u32(rng);
    return (hi << 32) | rng_u32(rng);
}

float rng_uniform(Rng *rng) { return (float)(rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

double rng_uniform_double(Rng *rng) { return (double)(rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0); }

float rng_normal(Rng *rng) {
    // 1 - u keeps the log argument in (0, 1]
    float u1 = 1.0f - rng_uniform(rng);
    float u2 = rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

uint64_t rng_below(Rng *rng, uint64_t bound) {
    if (bound <= 1) return 0;
    // rejection sampling: drop the top partial copy of [0, bound) to stay unbiased
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    uint64_t x;
    do { x = rng_u64(rng); } while (x >= limit);
    return x % bound;
}

void rng_shuffle_u64(Rng *rng, uint64_t *items, uint64_t n) {
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_below(rng, i);
        uint64_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}
