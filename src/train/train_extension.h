// The training side of a model extension (model/extension.h): what a stage
// does with the extension's parameters before training, and the per-sample
// inputs its auxiliary losses read, made from each micro-batch's records.
// trainer.c runs every registered one without knowing what they are;
// OLA-VLM's (train/ola_train.c) is the one today.
#ifndef VLM_TRAIN_TRAIN_EXTENSION_H
#define VLM_TRAIN_TRAIN_EXTENSION_H

#include "data/dataset.h"
#include "data/loader.h"
#include "model/llava.h"
#include "train/args.h"

typedef struct {
    const char *name;  // the model extension's (Extension.name)
    // The stage's own arguments, before anything is opened.
    int (*check_args)(const TrainArgs *a);
    // The model's layout for the stage: adds the extension's parameters
    // (freshly initialised) where the stage trains them, drops them where it does not.
    int (*prepare_model)(const TrainArgs *a, LlavaParams *p);
    // A buffer of inputs for micro-batches of up to max_batch samples (NULL:
    // out of memory); the pointer is what llava_set_aux_inputs takes.
    void *(*inputs_new)(const LlavaConfig *cfg, int max_batch);
    // Fills it for batch b from its records; errors name the file and record.
    int (*inputs_read)(void *in, const TrainArgs *a, const LlavaConfig *cfg, const Dataset *d, const Batch *b);
    void (*inputs_free)(void *in);
} TrainExtension;

// Every registered one, NULL-terminated.
extern const TrainExtension *const train_extensions[];
// The one of m's extension (NULL: m has none, or it needs no inputs).
const TrainExtension *train_extension_of(const LlavaModel *m);

#endif
