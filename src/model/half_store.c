// 16-bit frozen layers, see half_store.h.
#include "model/half_store.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

struct HalfStore {
    LlavaModel *m;
    DType dtype;
    ParamHooks prev;   // the hooks this store chains to
    int n, *spec, *layer, *held;
    uint16_t **half;   // per stored spec: its 16-bit values
};

bool half_store_holds(const ParamSpec *s) { return s->module == MODULE_LLM && s->ndim == 2 && param_layer(s) >= 0; }

static void widen(HalfStore *h, int i) {
    const ParamSpec *s = &h->m->params.specs[h->spec[i]];
    dtype_to_f32(h->dtype, h->half[i], h->m->params.data + s->offset, s->numel);
}

static void on_event(void *ctx, HookEvent event, Module module, int layer) {
    HalfStore *h = ctx;
    if (module == MODULE_LLM && layer >= 0)
        for (int i = 0; i < h->n; i++) {
            if (h->layer[i] != layer) continue;
            const ParamSpec *s = &h->m->params.specs[h->spec[i]];
            if (event == HOOK_FETCH && h->held[i]++ == 0) widen(h, i);
            if (event == HOOK_RELEASE && h->held[i] > 0 && --h->held[i] == 0)
                vlm_drop_floats(h->m->params.data + s->offset, s->numel);
        }
    param_hook(&h->prev, event, module, layer);
}

void half_store_free(HalfStore *h) {
    if (!h) return;
    for (int i = 0; i < h->n; i++) {
        if (h->held[i] == 0) widen(h, i);
        free(h->half[i]);
    }
    if (h->m->hooks.ctx == h) h->m->hooks = h->prev;
    free(h->spec), free(h->layer), free(h->held), free(h->half);
    free(h);
}

int half_store_attach(HalfStore **out, LlavaModel *m, DType dtype) {
    *out = NULL;
    HalfStore *h = vlm_calloc(1, sizeof *h);
    int n = m->params.n_specs;
    if (h) {
        h->spec = vlm_calloc((size_t)n, sizeof(int)), h->layer = vlm_calloc((size_t)n, sizeof(int));
        h->held = vlm_calloc((size_t)n, sizeof(int)), h->half = vlm_calloc((size_t)n, sizeof(uint16_t *));
    }
    if (!h || !h->spec || !h->layer || !h->held || !h->half) {
        if (h) free(h->spec), free(h->layer), free(h->held), free(h->half);
        free(h);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
    }
    *h = (HalfStore){.m = m, .dtype = dtype, .prev = m->hooks, .spec = h->spec, .layer = h->layer, .held = h->held,
                     .half = h->half};
    for (int k = 0; k < n; k++) {
        const ParamSpec *s = &m->params.specs[k];
        if (m->trainable[MODULE_LLM] || !half_store_holds(s)) continue;
        int l = param_layer(s);
        uint16_t *q = vlm_malloc(s->numel * sizeof(uint16_t));
        if (!q) {
            half_store_free(h);
            return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the 16-bit base");
        }
        const float *w = m->params.data + s->offset;
        for (size_t j = 0; j < s->numel; j++) q[j] = dtype == DT_BF16 ? f32_to_bf16(w[j]) : f32_to_f16(w[j]);
        h->spec[h->n] = k, h->layer[h->n] = l, h->half[h->n] = q, h->held[h->n] = 0;
        h->n++;
        vlm_drop_floats(m->params.data + s->offset, s->numel);
    }
    m->hooks = (ParamHooks){on_event, h};
    *out = h;
    return VLM_OK;
}

size_t half_store_saved_bytes(const HalfStore *h) {
    size_t b = 0;
    for (int i = 0; h && i < h->n; i++) b += h->m->params.specs[h->spec[i]].numel * 2;
    return b;
}
