// Mixing LLaVA-format files into one, as the recipes do with `jq -s add`
// (the same records in the same order), plus what users need around it:
// per-file sampling ratios, a seeded shuffle, image path prefixes and
// placeholder dialect conversion. The output is written atomically.
#ifndef VLM_DATA_MIX_H
#define VLM_DATA_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *path;
    double ratio;        // 1: every record once; 0.25: a seeded quarter; 2.5: twice + half
    const char *prefix;  // prepended to "image" paths; NULL or "" for none
} MixInput;

typedef struct {
    uint64_t seed;            // for sampling and shuffling
    bool shuffle;
    const char *placeholder;  // "<image>" or "<|image|>": convert the other one; NULL keeps text as is
} MixOptions;

typedef struct {
    size_t read[64], written[64];  // per input (the first 64)
    size_t total;
    size_t placeholders_converted;
} MixReport;

int data_mix(const MixInput *inputs, int n, const MixOptions *opt, const char *out_path, MixReport *report);

#endif
