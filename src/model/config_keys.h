// Reading config.json keys for the model configs (config.c and the
// per-architecture config files): transformers' default for an absent or
// null key, every size bounded, errors naming the file and "SECTION.KEY".
#ifndef VLM_MODEL_CONFIG_KEYS_H
#define VLM_MODEL_CONFIG_KEYS_H

#include <jansson.h>
#include <stdbool.h>

#include "model/config.h"

// Limits on every size a config.json sets: far above any released model,
// low enough that the products the parameter layout multiplies stay far
// from overflow, so an impossible value is an error naming its key instead
// of an out-of-memory with a wrapped-around size.
#define MAX_WIDTH (1 << 18)        // hidden, intermediate and head sizes
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_IMAGE 16384            // pixels on a side
#define MAX_POSITIONS (1 << 24)

// section: where the keys sit (NULL: the top level). An integer in [lo, hi].
int config_get_int(const json_t *j, const char *section, const char *key, int dflt, long long lo, long long hi,
                   int *out, const char *path);
// A size: an integer in [1, hi].
int config_get_size(const json_t *j, const char *section, const char *key, int dflt, long long hi, int *out,
                    const char *path);
// A number; positive: finite and > 0 (epsilons, rope bases).
int config_get_float(const json_t *j, const char *section, const char *key, double dflt, bool positive, float *out,
                     const char *path);
// A ViT config's keys with its class's defaults d (hidden_act, when set, must be d's: d->gelu
// "gelu", else "quick_gelu"; the other VisionConfig flags are d's).
int vision_config_read(VisionConfig *c, const VisionConfig *d, const json_t *j, const char *section, const char *path);

#endif
