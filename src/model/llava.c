// LLaVA composition, see llava.h.
#include "model/llava.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/activation.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/gradients.h"
#include "kernels/linear.h"
#include "text/template.h"  // IMAGE_TOKEN_INDEX, IGNORE_INDEX

// false: out of memory (the extension's own bookkeeping)
static bool carve_all(LlavaModel *m, Carve *c) {
    const LlavaConfig *cfg = &m->params.cfg;
    size_t feat_rows = (size_t)m->max_images * llava_feature_rows(cfg), Cv = cfg->vision.hidden, H = cfg->text.hidden;
    size_t proj_rows = (size_t)m->max_images * llava_image_tokens(cfg);
    size_t span_rows = (size_t)m->max_images * llava_image_span(cfg);
    size_t Tv = (size_t)vision_patches(&cfg->vision) + 1;
    if (cfg->vision.kind == VISION_CONVNEXT)
        convnext_acts_carve(&m->cnx, c, &cfg->vision, m->max_images,
                            m->vision_frozen ? CONVNEXT_FROZEN : m->recompute ? CONVNEXT_RECOMPUTE : CONVNEXT_TRAIN, 0);
    else
        clip_acts_carve(&m->vis, c, &cfg->vision, llava_vision_layers_used(cfg), m->max_images, m->recompute);
    llama_acts_carve(&m->llm, c, &cfg->text, &cfg->lora, m->max_batch, m->max_seq, m->recompute);
    m->feat = carve(c, feat_rows * Cv), m->img = carve(c, span_rows * H);
    connector_acts_carve(&m->conn, c, cfg, m->max_images);
    m->text = carve(c, (size_t)m->max_batch * m->max_text * H);
    m->dimg = carve(c, span_rows * H), m->dfeat = carve(c, feat_rows * Cv);
    m->proj = m->img, m->dproj = m->dimg;
    size_t extra = m->ext ? (size_t)m->ext->span_rows : 0;  // rows added after each image's features
    if (extra) {  // the spans are assembled from the projected rows and the extra rows
        m->proj = carve(c, proj_rows * H), m->dproj = carve(c, proj_rows * H);
        m->extra = carve(c, extra * H), m->dextra = carve(c, extra * H);
    }
    m->dvis = carve(c, (size_t)m->max_images * Tv * Cv);
    m->dtext = carve(c, (size_t)m->max_batch * m->max_text * H);
    m->lse = carve(c, (size_t)m->max_batch * m->max_seq);
    return !m->ext || m->ext->ops->carve(m->ext, c, cfg, m->max_batch, m->max_seq);
}

static void plan_sizes(LlavaModel *m, const LlavaPlan *plan) {
    m->max_images = plan->max_images > 0 ? plan->max_images : 1;
    m->max_batch = plan->max_batch, m->max_text = plan->max_text, m->max_seq = plan->max_seq;
    m->recompute = plan->recompute;
    m->vision_frozen = plan->vision_frozen;
}

// The int buffers beside the activations: splice map, shifted labels, rows
// with a target and their targets (each per token), lengths and image positions.
static size_t index_bytes(const LlavaPlan *plan) {
    size_t tokens = (size_t)plan->max_batch * plan->max_seq;
    return 4 * sizeof(int32_t) * tokens + 2 * sizeof(int) * (size_t)plan->max_batch;
}

LlavaMemory llava_memory_plan(const LlavaConfig *cfg, const LlavaPlan *plan) {
    LlavaModel m;
    memset(&m, 0, sizeof m);
    m.params.cfg = *cfg;
    plan_sizes(&m, plan);
    bool oom;
    m.ext = extension_new(cfg, &oom);
    Carve count = {NULL, 0};
    carve_all(&m, &count);
    extension_free(m.ext);
    LlavaParams layout;
    size_t numel = llava_params_layout(&layout, cfg) == VLM_OK ? layout.numel : 0;
    llava_params_free(&layout);
    // the product with the most rows: the tokens, or a block of a weight gradient's outputs
    size_t rows = (size_t)plan->max_batch * plan->max_seq;
    if (rows < LINEAR_DW_ROWS) rows = LINEAR_DW_ROWS;
    return (LlavaMemory){.params = numel * sizeof(float), .grads = numel * sizeof(float),
                         .activations = count.used * sizeof(float) + index_bytes(plan),
                         .workspace = linear_workspace_bytes(rows)};
}

int llava_model_init(LlavaModel *m, LlavaParams *params, const LlavaPlan *plan) {
    memset(m, 0, sizeof *m);
    m->params = *params;
    memset(params, 0, sizeof *params);
    plan_sizes(m, plan);
    int max_batch = m->max_batch, max_seq = m->max_seq;
    for (int i = 0; i < MODULE_COUNT; i++) m->trainable[i] = true;
    bool oom;
    m->ext = extension_new(&m->params.cfg, &oom);
    if (oom) {
        llava_model_free(m);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the model's extension");
    }
    Carve count = {NULL, 0};
    carve_all(m, &count);
    m->memory = vlm_alloc_aligned(count.used * sizeof(float));
    m->grad_bytes = m->params.numel * sizeof(float);
    m->grad = vlm_map_zeroed(m->grad_bytes);  // touched only where trained (llava_zero_grad)
    size_t tokens = (size_t)max_batch * max_seq;
    m->src = vlm_malloc(sizeof(int32_t) * tokens);
    m->targets = vlm_malloc(sizeof(int32_t) * tokens);
    m->rows = vlm_malloc(sizeof(int32_t) * tokens);
    m->row_targets = vlm_malloc(sizeof(int32_t) * tokens);
    m->seq_len = vlm_malloc(sizeof(int) * max_batch);
    m->image_pos = vlm_malloc(sizeof(int) * max_batch);
    if (!m->memory || !m->grad || !m->src || !m->targets || !m->rows || !m->row_targets || !m->seq_len ||
        !m->image_pos) {
        llava_model_free(m);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for activations (%zu MB)",
                        count.used * sizeof(float) >> 20);
    }
    Carve place = {m->memory, 0};
    if (!carve_all(m, &place)) {
        llava_model_free(m);
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the extension's activations");
    }
    llama_rope_init(&m->llm, &m->params.cfg.text);
    connector_init(&m->conn, &m->params.cfg);
    llava_weights_view(&m->params, m->grad, &m->g);
    m->saw_modality[0] = m->saw_modality[1] = false;  // the gradients start as the mapping's zeros
    m->vis.hooks = m->llm.hooks = &m->hooks;  // none until a caller sets m->hooks (the LlavaModel stays where it is)
    return VLM_OK;
}

void llava_model_free(LlavaModel *m) {
    llava_params_free(&m->params);
    vlm_free_aligned(m->memory);
    vlm_unmap(m->grad, m->grad_bytes);
    free(m->g.vl), free(m->g.tl), free(m->g.al), free(m->g.cx.blk);
    free(m->vis.x), free(m->vis.l), free(m->llm.x), free(m->llm.l);
    convnext_acts_free(&m->cnx);
    free(m->src), free(m->targets), free(m->rows), free(m->row_targets), free(m->seq_len), free(m->image_pos);
    extension_free(m->ext);
    connector_acts_free(&m->conn);
    memset(m, 0, sizeof *m);
}

void llava_zero_grad(LlavaModel *m) {
    // the trained tensors' only: a frozen one is never written, so its pages are never touched
    // (a LoRA run's frozen base costs no gradient memory)
    for (int i = 0; i < m->params.n_specs; i++) {
        const ParamSpec *s = &m->params.specs[i];
        if (param_trained(s, m->trainable)) vlm_zero(m->grad + s->offset, s->numel);
    }
    m->saw_modality[0] = m->saw_modality[1] = false;
}

int llava_trained_ranges(const LlavaModel *m, size_t *ranges) {
    int n = 0;
    for (int i = 0; i < m->params.n_specs; i++) {
        const ParamSpec *s = &m->params.specs[i];
        if (!param_trained(s, m->trainable)) continue;
        ranges[2 * n] = s->offset;
        ranges[2 * n + 1] = s->numel;
        n++;
    }
    return n;
}

const float *llava_logits(const LlavaModel *m, int b, int t) {
    return m->llm.logits + ((size_t)b * m->T + t) * m->params.cfg.text.vocab;
}

int llava_spliced_length(const LlavaConfig *cfg, const int32_t *ids, int len, int max_len) {
    long n = 0, span = llava_image_span(cfg);
    for (int t = 0; t < len; t++) n += ids[t] == IMAGE_TOKEN_INDEX ? span : 1;
    return (int)(max_len > 0 && n > max_len ? max_len : n);
}

// Upstream's prepare_inputs_labels_for_multimodal: each placeholder becomes
// the image's span of rows (labels IGNORE), the sequence is cut to max_len,
// and the batch is right-padded to its longest sample.
static int splice_layout(LlavaModel *m, const int32_t *ids, const int32_t *labels, const int *lengths, int B,
                         int T_text, int n_images, int max_len, int32_t *labels_out) {
    int span = llava_image_span(&m->params.cfg), image = 0, T = 0;
    for (int b = 0; b < B; b++) {
        m->seq_len[b] = llava_spliced_length(&m->params.cfg, ids + (size_t)b * T_text, lengths[b], max_len);
        if (m->seq_len[b] > T) T = m->seq_len[b];
    }
    if (T > m->max_seq)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "a spliced sequence of %d tokens exceeds the planned %d", T, m->max_seq);
    // every text token must be a row of the embedding (a tokenizer larger than the model's vocabulary:
    // upstream's embedding lookup raises IndexError; here the error names it)
    int V = m->params.cfg.text.vocab;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lengths[b]; t++) {
            int32_t id = ids[(size_t)b * T_text + t];
            if (id != IMAGE_TOKEN_INDEX && (id < 0 || id >= V))
                return vlm_fail(VLM_ERR_INPUT, NULL, NULL,
                                "sample %d, token %d: id %d is outside the model's vocabulary of %d (a tokenizer with "
                                "more tokens than the model's embedding?)", b, t, (int)id, V);
        }
    for (int b = 0; b < B; b++) {
        int pos = 0;
        int32_t *src = m->src + (size_t)b * T, *lab = labels_out + (size_t)b * T;
        m->image_pos[b] = -1;
        for (int t = 0; t < lengths[b]; t++) {
            int32_t id = ids[(size_t)b * T_text + t];
            if (id == IMAGE_TOKEN_INDEX) {
                if (image >= n_images)
                    return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "sample %d has more image placeholders than images", b);
                // the auxiliary losses read a sample with one image (-2: several)
                m->image_pos[b] = m->image_pos[b] == -1 ? pos : -2;
                for (int f = 0; f < span; f++, pos++)
                    if (pos < T) src[pos] = -1 - (image * span + f), lab[pos] = IGNORE_INDEX;
                image++;
            } else {
                if (pos < T) src[pos] = (int32_t)(b * T_text + t), lab[pos] = labels[(size_t)b * T_text + t];
                pos++;
            }
        }
        for (int p = m->seq_len[b]; p < T; p++) src[p] = SPLICE_ZERO, lab[p] = IGNORE_INDEX;
    }
    if (image != n_images)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "%d images given, %d placeholders in the batch", n_images, image);
    m->T = T;
    return VLM_OK;
}

void llava_set_aux_inputs(LlavaModel *m, const void *inputs) {
    if (m->ext) m->ext->inputs = inputs;
}

static SpliceInfo splice_info(const LlavaModel *m) {
    return (SpliceInfo){.image_pos = m->image_pos, .seq_len = m->seq_len, .B = m->B, .T = m->T};
}

int llava_forward(LlavaModel *m, const int32_t *input_ids, const int32_t *labels, const int *lengths, int B,
                  int T_text, const float *pixels, int n_images, int max_len, double *loss) {
    const LlavaConfig *cfg = &m->params.cfg;
    const LlavaWeights *w = &m->params.w;
    if (B > m->max_batch || T_text > m->max_text || n_images > m->max_images)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "batch of %d x %d tokens and %d images exceeds the planned %d x %d, %d",
                        B, T_text, n_images, m->max_batch, m->max_text, m->max_images);
    int H = cfg->text.hidden, Cv = cfg->vision.hidden, n_feat = llava_image_tokens(cfg), NP = vision_patches(&cfg->vision);
    int feat_rows = llava_feature_rows(cfg);
    int32_t *spliced_labels = m->targets;  // labels of the spliced sequence, shifted in place below
    int rc = splice_layout(m, input_ids, labels, lengths, B, T_text, n_images, max_len, spliced_labels);
    if (rc != VLM_OK) return rc;
    m->input_ids = input_ids, m->n_images = n_images, m->B = B, m->T_text = T_text;
    int T = m->T, N = B * T;
    // every group's parameter events, images or not (param_hooks.h: the same on every rank)
    const ParamHooks *h = &m->hooks;
    if (m->ext) param_hook(h, HOOK_FETCH, m->ext->module, -1);
    // images -> features -> projector
    bool convnext = cfg->vision.kind == VISION_CONVNEXT;  // no class token, no per-layer parameter groups
    param_hook(h, HOOK_FETCH, MODULE_VISION, -1);
    if (n_images > 0 && convnext) convnext_forward(&m->cnx, &cfg->vision, w, pixels, n_images);
    else if (n_images > 0) clip_forward(&m->vis, &cfg->vision, w, pixels, n_images);
    else clip_walk_hooks(&m->vis, false);
    param_hook(h, HOOK_RELEASE, MODULE_VISION, -1);
    param_hook(h, HOOK_FETCH, MODULE_PROJECTOR, -1);
    if (n_images > 0) {
        if (convnext) token_slice_forward(m->feat, convnext_output(&m->cnx), n_images, NP, 0, feat_rows, Cv);
        else token_slice_forward(m->feat, clip_output(&m->vis), n_images, NP + 1, cfg->feature_full ? 0 : 1, feat_rows, Cv);
        connector_forward(&m->conn, cfg, w, m->feat, m->proj, n_images);
        int extra = m->ext ? m->ext->span_rows : 0;
        if (extra) {
            m->ext->ops->rows_forward(m->ext, cfg, w, m->extra);
            image_span_forward(m->img, m->proj, m->extra, n_images, n_feat, extra, H);
        }
    }
    param_hook(h, HOOK_RELEASE, MODULE_PROJECTOR, -1);
    // a multiway decoder's modalities: 1 for the image rows (mPLUG-Owl2's modality_indicators,
    // vit_eos included), 0 for text and padding (host-side bookkeeping over the splice map)
    if (cfg->text.multiway) {
        m->llm.n_vis = 0;
        for (int r = 0; r < N; r++) {
            bool visual = m->src[r] < 0 && m->src[r] != SPLICE_ZERO;
            m->llm.modality[r] = visual;
            if (visual) m->llm.vis_rows[m->llm.n_vis++] = r;
        }
    }
    long real = 0;  // the rows of each modality this forward ran (padding is modality 0 but runs no branch)
    for (int b = 0; b < B; b++) real += m->seq_len[b];
    m->saw_modality[1] |= cfg->text.multiway && m->llm.n_vis > 0;
    m->saw_modality[0] |= real > (cfg->text.multiway ? m->llm.n_vis : 0);
    // text embeddings, the splice, the decoder
    param_hook(h, HOOK_FETCH, MODULE_LLM, -1);
    embedding_forward(m->text, input_ids, w->embed, B * T_text, H);
    param_hook(h, HOOK_RELEASE, MODULE_LLM, -1);  // the head (and tied embeddings) come again at the decoder's end
    splice_forward(m->llm.x[0], m->src, m->text, m->img, N, H);
    // next-token targets: label t+1 for position t; the positions that have one (host-side
    // bookkeeping over int labels, like the splice map: a backend uploads it once per forward)
    int n_rows = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t y = t + 1 < T ? m->targets[(size_t)b * T + t + 1] : IGNORE_INDEX;
            m->targets[(size_t)b * T + t] = y;
            if (y >= 0) m->row_targets[n_rows] = y, m->rows[n_rows++] = b * T + t;
        }
    if (m->all_logits) {
        llama_forward(&m->llm, &cfg->text, w, m->seq_len, B, T, NULL, 0);
        memcpy(m->row_targets, m->targets, sizeof(int32_t) * N);  // host-side int labels, every row (inspection)
        n_rows = N;
    } else {
        llama_forward(&m->llm, &cfg->text, w, m->seq_len, B, T, m->rows, n_rows);
    }
    double sum = crossentropy_forward(m->llm.logits, m->row_targets, n_rows, cfg->text.vocab, &m->n_targets, m->lse);
    m->loss = m->n_targets ? sum / (double)m->n_targets : NAN;
    *loss = m->loss;
    if (m->ext) {
        m->ext->loss = 0, m->ext->samples = 0;
        memset(m->ext->part, 0, sizeof m->ext->part);  // host-side scalars
        SpliceInfo s = splice_info(m);
        if (m->ext->has_loss && m->ext->inputs) m->ext->ops->loss_forward(m->ext, cfg, w, &m->llm, &s);
        param_hook(h, HOOK_RELEASE, m->ext->module, -1);
    }
    return VLM_OK;
}

long llava_count_targets(const LlavaConfig *cfg, const int32_t *input_ids, const int32_t *labels, const int *lengths,
                         int B, int T_text, int max_len) {
    int span = llava_image_span(cfg);
    long n = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *ids = input_ids + (size_t)b * T_text, *lab = labels + (size_t)b * T_text;
        long pos = 0;  // spliced position of token t; its label is a target when pos >= 1 and within max_len
        for (int t = 0; t < lengths[b]; t++) {
            if (max_len > 0 && pos >= max_len) break;
            if (ids[t] == IMAGE_TOKEN_INDEX) {
                pos += span;  // image features (and task tokens) are never targets
            } else {
                if (pos >= 1 && lab[t] != IGNORE_INDEX) n++;
                pos++;
            }
        }
    }
    return n;
}

void llava_backward(LlavaModel *m) {
    llava_backward_scaled(m, m->n_targets > 0 ? 1.0f / (float)m->n_targets : 0.0f, 1.0f);
}

void llava_backward_scaled(LlavaModel *m, float ce_scale, float aux_scale) {
    const LlavaConfig *cfg = &m->params.cfg;
    const LlavaWeights *w = &m->params.w;
    LlavaWeights *g = &m->g;
    const ParamHooks *h = &m->hooks;
    int B = m->B, T = m->T, N = B * T, H = cfg->text.hidden, Cv = cfg->vision.hidden, V = cfg->text.vocab;
    int n_feat = llava_image_tokens(cfg), span = llava_image_span(cfg), NP = vision_patches(&cfg->vision);
    int feat_rows = llava_feature_rows(cfg);
    bool aux = llava_aux_samples(m) > 0 && aux_scale != 0.0f, ext = m->ext && m->trainable[m->ext->module];
    // nothing to back-propagate: only the parameter events, which every rank makes alike (param_hooks.h)
    bool run = m->n_targets > 0 || aux;
    bool proj = m->trainable[MODULE_PROJECTOR], vision = m->trainable[MODULE_VISION];
    bool need_image = run && m->n_images > 0 && (proj || vision || ext);
    if (m->ext) param_hook(h, HOOK_FETCH, m->ext->module, -1);
    if (run) {
        // the logits buffer becomes dlogits (each row is read before it is written)
        crossentropy_backward(m->llm.logits, m->llm.logits, m->row_targets, m->lse, m->llm.n_rows, V, ce_scale);
        float *const *dstates = NULL;  // the auxiliary losses first: their gradients enter the LLM at the states they read
        SpliceInfo s = splice_info(m);
        if (aux) dstates = m->ext->ops->loss_backward(m->ext, cfg, w, ext ? g : NULL, &m->llm, &s, aux_scale);
        llama_backward(&m->llm, &cfg->text, w, m->trainable[MODULE_LLM] ? g : NULL, m->trainable[MODULE_LORA] ? g : NULL,
                       m->llm.logits, dstates, m->seq_len,
                       B, T);
        splice_backward(m->trainable[MODULE_LLM] ? m->dtext : NULL, need_image ? m->dimg : NULL, m->llm.dx, m->src, N, H,
                        B * m->T_text, m->n_images * span);
        param_hook(h, HOOK_FETCH, MODULE_LLM, -1);
        if (m->trainable[MODULE_LLM]) embedding_backward(g->embed, m->dtext, m->input_ids, B * m->T_text, V, H);
    } else {
        llama_walk_hooks(&m->llm, &cfg->text);
        param_hook(h, HOOK_FETCH, MODULE_LLM, -1);
    }
    param_hook(h, HOOK_GRADS, MODULE_LLM, -1);
    param_hook(h, HOOK_RELEASE, MODULE_LLM, -1);
    int extra = m->ext ? m->ext->span_rows : 0;
    if (need_image && extra) {
        image_span_backward(proj || vision ? m->dproj : NULL, ext ? m->dextra : NULL, m->dimg, m->n_images, n_feat, extra,
                            H);
        if (ext) m->ext->ops->rows_backward(m->ext, cfg, g, m->dextra);
    }
    if (m->ext) {
        param_hook(h, HOOK_GRADS, m->ext->module, -1);
        param_hook(h, HOOK_RELEASE, m->ext->module, -1);
    }
    param_hook(h, HOOK_FETCH, MODULE_PROJECTOR, -1);
    if (need_image && (proj || vision))
        connector_backward(&m->conn, cfg, w, proj ? g : NULL, m->dproj, m->feat, vision ? m->dfeat : NULL, m->n_images);
    param_hook(h, HOOK_GRADS, MODULE_PROJECTOR, -1);
    param_hook(h, HOOK_RELEASE, MODULE_PROJECTOR, -1);
    param_hook(h, HOOK_FETCH, MODULE_VISION, -1);
    if (need_image && vision && cfg->vision.kind == VISION_CONVNEXT) {
        token_slice_backward(m->dvis, m->dfeat, m->n_images, NP, 0, feat_rows, Cv);
        convnext_backward(&m->cnx, &cfg->vision, w, g, m->dvis, m->n_images);
    } else if (need_image && vision) {
        token_slice_backward(m->dvis, m->dfeat, m->n_images, NP + 1, cfg->feature_full ? 0 : 1, feat_rows, Cv);
        clip_backward(&m->vis, &cfg->vision, w, g, m->dvis, m->n_images);
    } else {
        clip_walk_hooks(&m->vis, true);
    }
    param_hook(h, HOOK_GRADS, MODULE_VISION, -1);
    param_hook(h, HOOK_RELEASE, MODULE_VISION, -1);
}

void llava_walk_hooks(LlavaModel *m) {
    const ParamHooks *h = &m->hooks;
    Module e = m->ext ? m->ext->module : MODULE_COUNT;
    static const Module order[] = {MODULE_VISION, MODULE_PROJECTOR, MODULE_LLM};
    // the forward's events
    if (m->ext) param_hook(h, HOOK_FETCH, e, -1);
    for (int i = 0; i < 3; i++) {
        param_hook(h, HOOK_FETCH, order[i], -1);
        if (order[i] == MODULE_VISION) clip_walk_hooks(&m->vis, false);
        if (order[i] == MODULE_LLM) {  // as llava_forward: the embeddings, the layers, the head
            param_hook(h, HOOK_RELEASE, MODULE_LLM, -1);
            for (int l = 0; l < m->params.cfg.text.layers; l++)
                param_hook(h, HOOK_FETCH, MODULE_LLM, l), param_hook(h, HOOK_RELEASE, MODULE_LLM, l);
            param_hook(h, HOOK_FETCH, MODULE_LLM, PARAM_GROUP_HEAD);
            param_hook(h, HOOK_RELEASE, MODULE_LLM, PARAM_GROUP_HEAD);
            continue;
        }
        param_hook(h, HOOK_RELEASE, order[i], -1);
    }
    if (m->ext) param_hook(h, HOOK_RELEASE, e, -1);
    llava_walk_backward_hooks(m);
}

void llava_walk_backward_hooks(LlavaModel *m) {  // as llava_backward_scaled makes them without a target
    long targets = m->n_targets;
    int samples = m->ext ? m->ext->samples : 0;
    m->n_targets = 0;
    if (m->ext) m->ext->samples = 0;
    llava_backward_scaled(m, 0.0f, 0.0f);
    m->n_targets = targets;
    if (m->ext) m->ext->samples = samples;
}
