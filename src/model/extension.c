// Which extension a configuration describes, see extension.h.
#include "model/extension.h"

#include "model/ola.h"

Extension *extension_new(const LlavaConfig *cfg, bool *out_of_memory) {
    *out_of_memory = false;
    if (!cfg->ola.enabled) return NULL;
    Extension *e = ola_extension_new(cfg);
    *out_of_memory = e == NULL;
    return e;
}

void extension_free(Extension *e) {
    if (e) e->ops->free(e);
}
