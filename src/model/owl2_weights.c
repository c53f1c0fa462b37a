// mPLUG-Owl2's parameter walk: MPLUGOwl2LlamaForCausalLM's state dict,
// upstream's names in its order (model.embed_tokens, model.layers.N, model.norm,
// model.vision_model, model.visual_abstractor, lm_head), see walk.h. The ViT
// reuses ClipLayerWeights (input_layernorm = ln1, query_key_value = q|k|v,
// dense = o, post_attention_layernorm = ln2); the abstractor is the connector
// (MODULE_PROJECTOR). Buffers that are not parameters (rotary_emb.inv_freq,
// the abstractor's q_pos_embed / k_pos_embed) are recomputed, not walked.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/rope.h"
#include "model/abstractor.h"
#include "model/walk.h"

static void walk_llm_layer(Walk *k, const TextConfig *t, int l) {
    LlamaLayerWeights *L = k->base ? &k->w->tl[l] : NULL;
    float *dummy;
    char n[160];
    size_t H = (size_t)t->hidden, HS = H / (size_t)t->heads, Q = (size_t)t->heads * HS, KV = (size_t)t->kv_heads * HS;
    size_t I = (size_t)t->intermediate;
#define AT(at, field, suffix, ndim, a, b)                                                      \
    snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                                    \
    reg_at(k, at, L ? &L->field : &dummy, MODULE_LLM, n, ndim, a, b, 0, 0, true)
#define AT_VIEW(at, suffix, ndim, a, b) /* reached through a fused view */                     \
    snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);                                    \
    reg_at(k, at, &dummy, MODULE_LLM, n, ndim, a, b, 0, 0, true)
    // [q; k0; v0] one product for every row, [k1; v1] one for the visual rows (llama.h)
    size_t a = k->offset, b = a + (Q + 2 * KV) * H;
    k->offset = b + 2 * KV * H;
    AT(a, q_w, "self_attn.q_proj.weight", 2, Q, H);
    AT(a + Q * H, k_w, "self_attn.k_proj.multiway.0.weight", 2, KV, H);
    AT(b, kv1_w, "self_attn.k_proj.multiway.1.weight", 2, KV, H);
    AT(a + (Q + KV) * H, v_w, "self_attn.v_proj.multiway.0.weight", 2, KV, H);
    AT_VIEW(b + KV * H, "self_attn.v_proj.multiway.1.weight", 2, KV, H);
    size_t o = k->offset;
    k->offset += H * Q + 2 * I * H + H * I + 4 * H;
    AT(o, o_w, "self_attn.o_proj.weight", 2, H, Q);
    AT(o + H * Q, gate_w, "mlp.gate_proj.weight", 2, I, H);
    AT(o + H * Q + I * H, up_w, "mlp.up_proj.weight", 2, I, H);
    AT(o + H * Q + 2 * I * H, down_w, "mlp.down_proj.weight", 2, H, I);
    size_t ln = o + H * Q + 3 * I * H;  // each norm's two modality rows adjacent: (2, H)
    AT(ln, ln1_w, "input_layernorm.multiway.0.weight", 1, H, 0);
    AT_VIEW(ln + H, "input_layernorm.multiway.1.weight", 1, H, 0);
    AT(ln + 2 * H, ln2_w, "post_attention_layernorm.multiway.0.weight", 1, H, 0);
    AT_VIEW(ln + 3 * H, "post_attention_layernorm.multiway.1.weight", 1, H, 0);
#undef AT
#undef AT_VIEW
}

static void walk_vit(Walk *k, const VisionConfig *v) {
    LlavaWeights *w = k->w;
    float *dummy;
    char n[160];
    int C = v->hidden, P = v->patch;
#define SLOT(field) (k->base ? &(field) : &dummy)
    const char *vp = "model.vision_model.";
    snprintf(n, sizeof n, "%sembeddings.cls_token", vp), reg(k, SLOT(w->cls), MODULE_VISION, n, 3, 1, 1, C, 0, true);
    snprintf(n, sizeof n, "%sembeddings.patch_embed.weight", vp);
    reg(k, SLOT(w->patch_w), MODULE_VISION, n, 4, C, 3, P, P, true);
    snprintf(n, sizeof n, "%sembeddings.position_embedding", vp);
    reg(k, SLOT(w->pos), MODULE_VISION, n, 3, 1, vision_patches(v) + 1, C, 0, true);
    snprintf(n, sizeof n, "%sembeddings.pre_layernorm.weight", vp), reg(k, SLOT(w->pre_ln_w), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    snprintf(n, sizeof n, "%sembeddings.pre_layernorm.bias", vp), reg(k, SLOT(w->pre_ln_b), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    size_t CC = (size_t)C * C;
    for (int l = 0; l < v->layers; l++) {
        ClipLayerWeights *L = k->base ? &w->vl[l] : NULL;
#define VL(field, suffix, ndim, a, b)                                                          \
    snprintf(n, sizeof n, "%sencoder.layers.%d.%s", vp, l, suffix);                            \
    reg(k, L ? &L->field : &dummy, MODULE_VISION, n, ndim, a, b, 0, 0, true)
        VL(qkv_w, "self_attn.query_key_value.weight", 2, 3 * C, C);
        ParamSpec *s = walk_last_spec(k);
        if (s) s->qkv_heads = v->heads;  // the file's rows per head interleaved (mplug_owl2.md §1)
        VL(qkv_b, "self_attn.query_key_value.bias", 1, 3 * C, 0);
        if ((s = walk_last_spec(k))) s->qkv_heads = v->heads;
        if (L) {  // q, k, v: views of the fused product ([q; k; v] in the buffer)
            L->q_w = L->qkv_w, L->k_w = L->qkv_w + CC, L->v_w = L->qkv_w + 2 * CC;
            L->q_b = L->qkv_b, L->k_b = L->qkv_b + C, L->v_b = L->qkv_b + 2 * C;
        }
        VL(o_w, "self_attn.dense.weight", 2, C, C);
        VL(o_b, "self_attn.dense.bias", 1, C, 0);
        VL(ln1_w, "input_layernorm.weight", 1, C, 0);
        VL(ln1_b, "input_layernorm.bias", 1, C, 0);
        VL(fc1_w, "mlp.fc1.weight", 2, v->intermediate, C);
        VL(fc1_b, "mlp.fc1.bias", 1, v->intermediate, 0);
        VL(fc2_w, "mlp.fc2.weight", 2, C, v->intermediate);
        VL(fc2_b, "mlp.fc2.bias", 1, C, 0);
        VL(ln2_w, "post_attention_layernorm.weight", 1, C, 0);
        VL(ln2_b, "post_attention_layernorm.bias", 1, C, 0);
#undef VL
    }
    snprintf(n, sizeof n, "%spost_layernorm.weight", vp), reg(k, SLOT(w->post_ln_w), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    snprintf(n, sizeof n, "%spost_layernorm.bias", vp), reg(k, SLOT(w->post_ln_b), MODULE_VISION, n, 1, C, 0, 0, 0, true);
#undef SLOT
}

static void walk_abstractor(Walk *k, const LlavaConfig *c) {
    const AbstractorConfig *a = &c->abstractor;
    LlavaWeights *w = k->w;
    float *dummy;
    char n[160];
    size_t D = (size_t)a->hidden, I = (size_t)a->intermediate, H = (size_t)c->text.hidden;
    const char *ap = "model.visual_abstractor.";
    for (int l = 0; l < a->layers; l++) {
        AbstractorLayerWeights *L = k->base ? &w->al[l] : NULL;
#define AL(field, suffix, ndim, d0, d1)                                                        \
    snprintf(n, sizeof n, "%sencoder.layers.%d.crossattention.%s", ap, l, suffix);             \
    reg(k, L ? &L->field : &dummy, MODULE_PROJECTOR, n, ndim, d0, d1, 0, 0, true)
#define AT(at, field, suffix, ndim, d0, d1)                                                    \
    snprintf(n, sizeof n, "%sencoder.layers.%d.crossattention.%s", ap, l, suffix);             \
    reg_at(k, at, L ? &L->field : &dummy, MODULE_PROJECTOR, n, ndim, d0, d1, 0, 0, true)
        AL(q_w, "attention.query.weight", 2, D, D);
        AL(q_b, "attention.query.bias", 1, D, 0);
        AL(k_w, "attention.key.weight", 2, D, D);
        AL(k_b, "attention.key.bias", 1, D, 0);
        AL(v_w, "attention.value.weight", 2, D, D);
        AL(v_b, "attention.value.bias", 1, D, 0);
        AL(o_w, "output.out_proj.weight", 2, D, D);
        AL(o_b, "output.out_proj.bias", 1, D, 0);
        AL(norm2_w, "output.norm2.weight", 1, D, 0);
        AL(norm2_b, "output.norm2.bias", 1, D, 0);
        // w1 | w3 one product: [w1; w3] then [b1; b3], w2 after them
        size_t m = k->offset;
        k->offset += 2 * I * D + 2 * I + D * I + D;
        AT(m, w1_w, "output.mlp.w1.weight", 2, I, D);
        AT(m + 2 * I * D, w1_b, "output.mlp.w1.bias", 1, I, 0);
        AT(m + 2 * I * D + 2 * I, w2_w, "output.mlp.w2.weight", 2, D, I);
        AT(m + 2 * I * D + 2 * I + D * I, w2_b, "output.mlp.w2.bias", 1, D, 0);
        AT(m + I * D, w3_w, "output.mlp.w3.weight", 2, I, D);
        AT(m + 2 * I * D + I, w3_b, "output.mlp.w3.bias", 1, I, 0);
        AL(ffn_ln_w, "output.mlp.ffn_ln.weight", 1, I, 0);
        AL(ffn_ln_b, "output.mlp.ffn_ln.bias", 1, I, 0);
        AL(norm1_w, "norm1.weight", 1, D, 0);
        AL(norm1_b, "norm1.bias", 1, D, 0);
        AL(normk_w, "normk.weight", 1, D, 0);
        AL(normk_b, "normk.bias", 1, D, 0);
        if (L) L->w13_w = L->w1_w, L->w13_b = L->w1_b;
#undef AL
#undef AT
    }
#define SLOT(field) (k->base ? &(field) : &dummy)
    snprintf(n, sizeof n, "%svisual_fc.weight", ap), reg(k, SLOT(w->visual_fc_w), MODULE_PROJECTOR, n, 2, H, D, 0, 0, true);
    snprintf(n, sizeof n, "%svisual_fc.bias", ap), reg(k, SLOT(w->visual_fc_b), MODULE_PROJECTOR, n, 1, H, 0, 0, 0, true);
    snprintf(n, sizeof n, "%squery_embeds", ap);
    reg(k, SLOT(w->query_embeds), MODULE_PROJECTOR, n, 3, 1, a->queries, D, 0, true);
    snprintf(n, sizeof n, "%svit_eos", ap), reg(k, SLOT(w->vit_eos), MODULE_PROJECTOR, n, 3, 1, 1, H, 0, true);
#undef SLOT
}

void owl2_walk(Walk *k, const LlavaConfig *c) {
    int first = k->count;
    const TextConfig *t = &c->text;
    LlavaWeights *w = k->w;
    float *dummy;
#define SLOT(field) (k->base ? &(field) : &dummy)
    reg(k, SLOT(w->embed), MODULE_LLM, "model.embed_tokens.weight", 2, t->vocab, t->hidden, 0, 0, true);
    for (int l = 0; l < t->layers; l++) walk_llm_layer(k, t, l);
    reg(k, SLOT(w->norm_w), MODULE_LLM, "model.norm.weight", 1, t->hidden, 0, 0, 0, true);
    walk_vit(k, &c->vision);
    walk_abstractor(k, c);
    reg(k, SLOT(w->lm_head), MODULE_LLM, "lm_head.weight", 2, t->vocab, t->hidden, 0, 0, true);
    if (k->base) w->p1_w = w->p1_b = w->p2_w = w->p2_b = NULL;
    for (int i = first; k->p->specs && !k->base && i < k->count; i++) {  // the modality branches
        ParamSpec *s = &k->p->specs[i];
        if (strstr(s->name, ".multiway.0.")) s->modality = 0;
        if (strstr(s->name, ".multiway.1.")) s->modality = 1;
    }
#undef SLOT
}

int owl2_check_buffers(Checkpoint *ck, const LlavaConfig *c, const char *dir, int *differ_out) {
    const AbstractorConfig *a = &c->abstractor;
    size_t D = (size_t)a->hidden, NQ = (size_t)a->queries, NK = 1 + (size_t)a->grid * a->grid;
    float *want = vlm_malloc(sizeof(float) * (NQ + NK) * D), *got = vlm_malloc(sizeof(float) * NK * D);
    int rc = want && got ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) abstractor_pos_tables(a, want, want + NQ * D);
    int differ = 0;
    for (int l = 0; rc == VLM_OK && l < a->layers; l++)
        for (int t = 0; rc == VLM_OK && t < 2; t++) {
            char n[200];
            snprintf(n, sizeof n, "model.visual_abstractor.encoder.layers.%d.crossattention.attention.%s", l,
                     t ? "k_pos_embed" : "q_pos_embed");
            int j = checkpoint_find(ck, n);
            if (j < 0) continue;  // the converter's layout: none
            const TensorInfo *info = ck->tensors[j].info;
            size_t rows = t ? NK : NQ;
            if (info->ndim != 2 || (size_t)info->shape[0] != rows || (size_t)info->shape[1] != D) {
                rc = vlm_fail(VLM_ERR_INPUT, dir, n, "expected [%zu, %zu] (the config's sin-cos table)", rows, D);
                break;
            }
            rc = checkpoint_read_f32(ck, j, got);
            const float *ref = want + (t ? NQ * D : 0);
            double worst = 0;
            for (size_t i = 0; rc == VLM_OK && i < rows * D; i++) {
                double d = fabs((double)got[i] - ref[i]);
                if (d > worst || d != d) worst = d != d ? INFINITY : d;
            }
            // float32 sin / cos of numpy and of libm may differ in the last bit; a real difference is far larger
            if (rc == VLM_OK && worst > 1e-5) {
                log_msg(LOG_WARN, "%s: %s differs from the recomputed sin-cos table by up to %g; using the recomputed one, "
                                  "as upstream's model builds it", dir, n, worst);
                differ++;
            }
        }
    if (rc == VLM_OK && !differ) log_msg(LOG_DEBUG, "%s: the abstractor's sin-cos buffers match the recomputed tables", dir);
    if (differ_out) *differ_out = differ;
    free(want), free(got);
    return rc;
}

int owl2_buffer_count(const LlavaConfig *c) { return 2 * c->abstractor.layers + c->text.layers; }

int owl2_buffers(const LlavaConfig *c, TensorInfo *infos, const void **datas, float **owned, char (*names)[200]) {
    const AbstractorConfig *a = &c->abstractor;
    int D = a->hidden, NQ = a->queries, NK = 1 + a->grid * a->grid, HS = c->text.hidden / c->text.heads, n = 0;
    float *tables = vlm_malloc(sizeof(float) * (size_t)(NQ + NK) * D), *inv = vlm_malloc(sizeof(float) * (size_t)HS / 2);
    if (!tables || !inv) {
        free(tables), free(inv);
        return VLM_ERR_FAIL;
    }
    abstractor_pos_tables(a, tables, tables + (size_t)NQ * D);
    rope_inv_freq(inv, HS, &c->text.rope);
    owned[0] = tables, owned[1] = inv;  // freed with the first two entries
    for (int l = 0; l < a->layers; l++)
        for (int t = 0; t < 2; t++, n++) {
            snprintf(names[n], sizeof names[n], "model.visual_abstractor.encoder.layers.%d.crossattention.attention.%s", l,
                     t ? "k_pos_embed" : "q_pos_embed");
            infos[n] = (TensorInfo){.name = names[n], .dtype = DT_F32, .ndim = 2, .shape = {t ? NK : NQ, D}};
            datas[n] = t ? tables + (size_t)NQ * D : tables;
            tensor_info_sizes(&infos[n]);
        }
    for (int l = 0; l < c->text.layers; l++, n++) {
        snprintf(names[n], sizeof names[n], "model.layers.%d.self_attn.rotary_emb.inv_freq", l);
        infos[n] = (TensorInfo){.name = names[n], .dtype = DT_F32, .ndim = 1, .shape = {HS / 2}};
        datas[n] = inv;
        tensor_info_sizes(&infos[n]);
    }
    return VLM_OK;
}
