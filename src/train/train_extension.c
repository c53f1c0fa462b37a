// The registered training extensions, see train_extension.h.
#include "train/train_extension.h"

#include <string.h>

extern const TrainExtension ola_train_extension;  // train/ola_train.c

const TrainExtension *const train_extensions[] = {&ola_train_extension, NULL};

const TrainExtension *train_extension_of(const LlavaModel *m) {
    if (!m->ext) return NULL;
    for (int i = 0; train_extensions[i]; i++)
        if (strcmp(train_extensions[i]->name, m->ext->name) == 0) return train_extensions[i];
    return NULL;
}
