// OLA-VLM's embedding predictors, see ola.h. Per predictor, D is the LLM's
// width, d the resampler's, A = heads * dim_head, I the FeedForward's, O the
// output width, NQ the queries, n the sample's gathered input rows.
#include "model/ola.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/activation.h"
#include "kernels/cross_attention.h"
#include "kernels/embedding.h"
#include "kernels/gradients.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
#include "kernels/residual.h"

#define LN_EPS 1e-5f  // nn.LayerNorm's default

typedef struct {
    int D, d, A, NH, HS, I, O, NQ, P;
    bool mlp;  // depth's linear_1 after the resampler
} Dims;

static Dims dims_of(const LlavaConfig *cfg, OlaTask t) {
    const OlaConfig *o = &cfg->ola;
    const OlaTaskConfig *c = &o->task[t];
    Dims z = {.D = cfg->text.hidden, .d = ola_head_dim(o, t, cfg->text.hidden), .NH = c->heads, .HS = c->dim_head,
              .O = c->output_dim, .NQ = c->num_tokens};
    z.A = z.NH * z.HS, z.I = z.d * c->ff_mult, z.P = z.NQ * z.O;
    z.mlp = t == OLA_DEPTH && o->use_intermediate_depth;
    return z;
}

static int acts_carve(Extension *e, Carve *c, const LlavaConfig *cfg, int max_batch, int max_seq) {
    OlaActs *a = e->state;
    const OlaConfig *o = &cfg->ola;
    int d = 0, A = 0, I = 0, O = 0, NQ = 0, NH = 0, P = 0;
    for (int i = 0; i < o->n_order; i++) {
        Dims z = dims_of(cfg, o->order[i]);
        d = z.d > d ? z.d : d, A = z.A > A ? z.A : A, I = z.I > I ? z.I : I;
        O = z.O > O ? z.O : O, NQ = z.NQ > NQ ? z.NQ : NQ, NH = z.NH > NH ? z.NH : NH, P = z.P > P ? z.P : P;
    }
    size_t D = cfg->text.hidden, n = max_seq;
    size_t K = n + (size_t)NQ;  // keys: the inputs, then the queries
    a->X = carve(c, n * D), a->dX = carve(c, n * D), a->queries = carve(c, NQ * D), a->dqueries = carve(c, NQ * D);
    a->x_proj = carve(c, n * d), a->dx_proj = carve(c, n * d), a->kvin = carve(c, K * d), a->dkvin = carve(c, K * d);
    a->mean = carve(c, K), a->rstd = carve(c, K), a->latents = carve(c, NQ * d), a->dlat = carve(c, NQ * d);
    a->q = carve(c, NQ * A), a->dq = carve(c, NQ * A), a->kv = carve(c, K * 2 * A), a->dkv = carve(c, K * 2 * A);
    a->lse = carve(c, cross_attention_state_floats(NQ, NH)), a->ao = carve(c, NQ * A), a->dao = carve(c, NQ * A);
    a->scratch = carve(c, cross_attention_scratch_floats(NQ, (int)K));  // cross-attention's
    a->lat_attn = carve(c, NQ * d), a->ff_in = carve(c, NQ * d), a->dff_in = carve(c, NQ * d);
    a->ff_mean = carve(c, NQ), a->ff_rstd = carve(c, NQ), a->ff_up = carve(c, NQ * I), a->dff_up = carve(c, NQ * I);
    a->ff_act = carve(c, NQ * I), a->dff_act = carve(c, NQ * I), a->lat_ff = carve(c, NQ * d);
    a->head_out = carve(c, NQ * O), a->dhead_out = carve(c, NQ * O), a->pred = carve(c, NQ * O), a->dpred = carve(c, NQ * O);
    a->out_mean = carve(c, NQ), a->out_rstd = carve(c, NQ), a->mlp_up = carve(c, NQ * O), a->dmlp_up = carve(c, NQ * O);
    a->mlp_act = carve(c, NQ * O), a->dmlp_act = carve(c, NQ * O), a->out = carve(c, NQ * O), a->dout = carve(c, NQ * O);
    a->rows = (int32_t *)carve(c, n);
    a->preds = carve(c, (size_t)max_batch * P), a->targets = carve(c, (size_t)max_batch * P);
    a->loss_scratch = carve(c, (size_t)max_batch * max_batch + 2 * (size_t)max_batch);
    a->active = (int *)carve(c, max_batch);
    if (c->base && !a->dstates && !(a->dstates = calloc((size_t)cfg->text.layers + 1, sizeof(float *)))) return 0;
    int layers_read[OLA_MAX_LAYERS * OLA_TASKS], n_read = 0;
    for (int i = 0; i < o->n_order; i++) {
        OlaTask t = o->order[i];
        for (int l = 0; l < o->task[t].n_layers; l++) {
            float *dp = carve(c, (size_t)max_batch * ola_pred_size(o, t));
            if (c->base) a->dpreds[t][l] = dp;
            int h = o->task[t].layers[l], seen = 0;
            for (int j = 0; j < n_read; j++) seen |= layers_read[j] == h;
            if (!seen) layers_read[n_read++] = h;
        }
    }
    for (int j = 0; j < n_read; j++) {
        float *ds = carve(c, (size_t)max_batch * max_seq * D);
        if (c->base && a->dstates) a->dstates[layers_read[j]] = ds;
    }
    return 1;
}

static void ext_free(Extension *e) {
    OlaActs *a = e->state;
    free(a->dstates);
    free(a);
    free(e);
}

// ---- one sample through one predictor

// The hidden state a predictor reads: HF's hidden_states[h], the last one after the final norm.
static const float *state_of(const LlamaActs *llm, const LlavaConfig *cfg, int h) {
    return h == cfg->text.layers ? llm->norm : llm->x[h];
}

// The rows sample b shows the predictor of the task at order position k (see ola.h); returns n.
static int gather_rows(OlaActs *a, const LlavaConfig *cfg, int k, int b, int T, int image_pos, int seq_len) {
    int ntt = cfg->ola.num_task_tokens, end = image_pos + llava_image_tokens(cfg), n = 0;
    int after = end + ola_task_rows(&cfg->ola);
    for (int p = 0; p < end; p++) a->rows[n++] = b * T + p;
    for (int p = end + k * ntt; p < end + (k + 1) * ntt; p++) a->rows[n++] = b * T + p;
    for (int p = after; p < seq_len; p++) a->rows[n++] = b * T + p;
    return n;
}

// Query i's source among the task-token rows of gen (TaskTokenResampler): the row itself when there
// are as many queries as rows, tiled when a multiple, else (-1) the mean of the rows.
static int gen_query_source(int NQ, int ntt, int i) {
    if (NQ == ntt) return i;
    if (NQ > 1 && NQ % ntt == 0) return i % ntt;
    return -1;
}

// X (n, D) and the queries a->q_in (NQ, D) -> out (NQ, O), every activation kept in a.
static void head_forward(OlaActs *a, const Dims *z, const OlaHeadWeights *h, int n, float *out) {
    int d = z->d, NQ = z->NQ, K = n + NQ;
    linear_forward(a->x_proj, a->X, h->proj_in_w, h->proj_in_b, n, z->D, d);
    linear_forward(a->latents, a->q_in, h->proj_in_w, h->proj_in_b, NQ, z->D, d);
    // keys and values come from [norm1(inputs); norm2(queries)], the queries from norm2(queries)
    layernorm_forward(a->kvin, a->mean, a->rstd, a->x_proj, h->norm1_w, h->norm1_b, n, d, LN_EPS);
    float *qn = a->kvin + (size_t)n * d;
    layernorm_forward(qn, a->mean + n, a->rstd + n, a->latents, h->norm2_w, h->norm2_b, NQ, d, LN_EPS);
    linear_forward(a->q, qn, h->to_q, NULL, NQ, d, z->A);
    linear_forward(a->kv, a->kvin, h->to_kv, NULL, K, d, 2 * z->A);  // each row k, then v (torch's chunk(2))
    // upstream scales q and k by dim_head^-1/4 each: dim_head^-1/2 on the product
    cross_attention_forward(a->ao, a->lse, a->q, z->A, a->kv, a->kv + z->A, 2 * z->A, NQ, K, z->NH, z->HS,
                            1.0f / sqrtf((float)z->HS), a->scratch);
    linear_forward(a->lat_attn, a->ao, h->to_out, NULL, NQ, z->A, d);
    residual_forward(a->lat_attn, a->lat_attn, a->latents, (size_t)NQ * d);
    // FeedForward: LayerNorm, Linear, GELU, Linear, residual
    layernorm_forward(a->ff_in, a->ff_mean, a->ff_rstd, a->lat_attn, h->ff_ln_w, h->ff_ln_b, NQ, d, LN_EPS);
    linear_forward(a->ff_up, a->ff_in, h->ff1_w, NULL, NQ, d, z->I);
    gelu_forward(a->ff_act, a->ff_up, (size_t)NQ * z->I);
    linear_forward(a->lat_ff, a->ff_act, h->ff2_w, NULL, NQ, z->I, d);
    residual_forward(a->lat_ff, a->lat_ff, a->lat_attn, (size_t)NQ * d);
    linear_forward(a->head_out, a->lat_ff, h->proj_out_w, h->proj_out_b, NQ, d, z->O);
    // without the MLP the norm's output is the prediction (the MLP's input otherwise)
    float *pred = z->mlp ? a->pred : out;
    layernorm_forward(pred, a->out_mean, a->out_rstd, a->head_out, h->norm_out_w, h->norm_out_b, NQ, z->O, LN_EPS);
    if (!z->mlp) return;
    linear_forward(a->mlp_up, pred, h->mlp1_w, h->mlp1_b, NQ, z->O, z->O);
    relu_forward(a->mlp_act, a->mlp_up, (size_t)NQ * z->O);
    linear_forward(out, a->mlp_act, h->mlp2_w, h->mlp2_b, NQ, z->O, z->O);
}

#define G(field) (g ? g->field : NULL)

// a->dout (NQ, O) -> weight gradients (g NULL: none), a->dX (n, D) and a->dqueries (NQ, D).
static void head_backward(OlaActs *a, const Dims *z, const OlaHeadWeights *h, OlaHeadWeights *g, int n) {
    int d = z->d, NQ = z->NQ, K = n + NQ, O = z->O;
    const float *dpred = a->dout;
    if (z->mlp) {
        linear_backward(a->dmlp_act, G(mlp2_w), G(mlp2_b), a->dout, a->mlp_act, h->mlp2_w, NQ, O, O);
        relu_backward(a->dmlp_up, a->dmlp_act, a->mlp_up, (size_t)NQ * O);
        linear_backward(a->dpred, G(mlp1_w), G(mlp1_b), a->dmlp_up, a->pred, h->mlp1_w, NQ, O, O);
        dpred = a->dpred;
    }
    vlm_zero(a->dhead_out, (size_t)NQ * O);  // norms accumulate (kernels/gradients.h)
    layernorm_backward(a->dhead_out, G(norm_out_w), G(norm_out_b), dpred, a->head_out, h->norm_out_w, a->out_mean, a->out_rstd, NQ, O);
    // dlat: the latents' residual stream gradient, d lat_ff, then d lat_attn, then d latents (the norms add into it)
    float *dlat = a->dlat;
    linear_backward(dlat, G(proj_out_w), G(proj_out_b), a->dhead_out, a->lat_ff, h->proj_out_w, NQ, d, O);
    // FeedForward: lat_ff = lat_attn + ff2(gelu(ff1(ln(lat_attn))))
    linear_backward(a->dff_act, G(ff2_w), NULL, dlat, a->ff_act, h->ff2_w, NQ, z->I, d);
    gelu_backward(a->dff_up, a->dff_act, a->ff_up, (size_t)NQ * z->I);
    linear_backward(a->dff_in, G(ff1_w), NULL, a->dff_up, a->ff_in, h->ff1_w, NQ, d, z->I);
    layernorm_backward(dlat, G(ff_ln_w), G(ff_ln_b), a->dff_in, a->lat_attn, h->ff_ln_w, a->ff_mean, a->ff_rstd, NQ, d);
    // attention: lat_attn = latents + to_out(attn(q, k, v))
    linear_backward(a->dao, G(to_out), NULL, dlat, a->ao, h->to_out, NQ, z->A, d);
    cross_attention_backward(a->dq, a->dkv, a->dkv + z->A, a->dao, a->ao, a->lse, a->q, z->A, a->kv, a->kv + z->A,
                             2 * z->A, NQ, K, z->NH, z->HS, 1.0f / sqrtf((float)z->HS), a->scratch);
    // the normed queries feed both to_kv (as keys, rows n..K) and to_q
    const float *qn = a->kvin + (size_t)n * d;
    linear_backward(a->dkvin, G(to_kv), NULL, a->dkv, a->kvin, h->to_kv, K, d, 2 * z->A);
    linear_backward_acc(a->dkvin + (size_t)n * d, G(to_q), NULL, a->dq, qn, h->to_q, NQ, d, z->A);
    vlm_zero(a->dx_proj, (size_t)n * d);
    layernorm_backward(a->dx_proj, G(norm1_w), G(norm1_b), a->dkvin, a->x_proj, h->norm1_w, a->mean, a->rstd, n, d);
    layernorm_backward(dlat, G(norm2_w), G(norm2_b), a->dkvin + (size_t)n * d, a->latents, h->norm2_w, a->mean + n,
                       a->rstd + n, NQ, d);
    // proj_in serves the inputs and the queries
    linear_backward(a->dqueries, G(proj_in_w), G(proj_in_b), dlat, a->q_in, h->proj_in_w, NQ, z->D, d);
    linear_backward(a->dX, G(proj_in_w), G(proj_in_b), a->dx_proj, a->X, h->proj_in_w, n, z->D, d);
}

// Gathers sample b's inputs into a->X and points a->q_in at its queries (the
// task's tokens, or gen's rows assembled in a->queries); returns n.
static int prepare(OlaActs *a, const LlavaConfig *cfg, const OlaWeights *w, OlaTask t, int k, const Dims *z,
                   const float *state, int b, int T, int image_pos, int seq_len) {
    int n = gather_rows(a, cfg, k, b, T, image_pos, seq_len), D = z->D;
    row_select_forward(a->X, state, a->rows, n, D);
    if (t != OLA_GEN) {
        a->q_in = w->tokens[t];
        return n;
    }
    a->q_in = a->queries;
    int ntt = cfg->ola.num_task_tokens;
    const float *task = a->X + (size_t)(image_pos + llava_image_tokens(cfg)) * D;  // the gen rows within X
    for (int i = 0; i < z->NQ; i++) {
        int src = gen_query_source(z->NQ, ntt, i);
        float *q = a->queries + (size_t)i * D;
        if (src >= 0) row_select_forward(q, task, &(int32_t){src}, 1, D);
        else group_mean_forward(q, task, 1, ntt, D);  // the mean of the rows
    }
    return n;
}

static bool takes_part(const LlavaConfig *cfg, int image_pos, int seq_len) {
    return image_pos >= 0 && image_pos + llava_image_span(cfg) <= seq_len;
}

static void loss_forward(Extension *e, const LlavaConfig *cfg, const LlavaWeights *lw, const LlamaActs *llm,
                         const SpliceInfo *s) {
    OlaActs *a = e->state;
    const OlaWeights *w = &lw->ola;
    const OlaInputs *in = e->inputs;
    const OlaConfig *o = &cfg->ola;
    const int *image_pos = s->image_pos, *seq_len = s->seq_len;
    int B = s->B, T = s->T;
    a->n_active = 0;
    // host-side scalars: the per-predictor losses and their logit-scale gradients (e's: reset by the caller)
    memset(a->part, 0, sizeof a->part), memset(a->dscale, 0, sizeof a->dscale);
    for (int b = 0; b < B; b++)
        if (in->has_target && in->has_target[b] && takes_part(cfg, image_pos[b], seq_len[b])) a->active[a->n_active++] = b;
    if (a->n_active == 0) return;
    e->samples = a->n_active;
    for (int k = 0; k < o->n_order; k++) {
        OlaTask t = o->order[k];
        Dims z = dims_of(cfg, t);
        row_select_forward(a->targets, in->targets[t], a->active, a->n_active, z.P);  // the active samples' targets
        for (int l = 0; l < o->task[t].n_layers; l++) {
            const float *state = state_of(llm, cfg, o->task[t].layers[l]);
            for (int i = 0; i < a->n_active; i++) {
                int b = a->active[i];
                int n = prepare(a, cfg, w, t, k, &z, state, b, T, image_pos[b], seq_len[b]);
                head_forward(a, &z, &w->head[t][l], n, a->preds + (size_t)i * z.P);
            }
            float dscale;
            a->part[t][l] = distill_loss(a->preds, a->targets, a->n_active, z.P, *w->logit_scale[t],
                                         o->contrastive_loss_weight, o->task[t].loss_weight, a->dpreds[t][l], &dscale,
                                         a->loss_scratch);
            a->dscale[t] += dscale;
            e->part[t] += a->part[t][l].loss;
            e->loss += a->part[t][l].loss;
        }
    }
}

static float *const *loss_backward(Extension *e, const LlavaConfig *cfg, const LlavaWeights *lw, LlavaWeights *lg,
                                   const LlamaActs *llm, const SpliceInfo *s, float scale) {
    OlaActs *a = e->state;
    const OlaWeights *w = &lw->ola;
    OlaWeights *g = lg ? &lg->ola : NULL;
    const OlaConfig *o = &cfg->ola;
    const int *image_pos = s->image_pos, *seq_len = s->seq_len;
    int B = s->B, T = s->T;
    int D = cfg->text.hidden, ntt = o->num_task_tokens;
    for (int h = 0; h <= cfg->text.layers; h++)
        if (a->dstates[h]) vlm_zero(a->dstates[h], (size_t)B * T * D);  // several predictors add into one state
    if (a->n_active == 0) return a->dstates;
    for (int k = 0; k < o->n_order; k++) {
        OlaTask t = o->order[k];
        Dims z = dims_of(cfg, t);
        if (g) *g->logit_scale[t] += scale * a->dscale[t];
        for (int l = 0; l < o->task[t].n_layers; l++) {
            int layer = o->task[t].layers[l];
            const float *state = state_of(llm, cfg, layer);
            float *dstate = a->dstates[layer];
            for (int i = 0; i < a->n_active; i++) {
                int b = a->active[i];
                int n = prepare(a, cfg, w, t, k, &z, state, b, T, image_pos[b], seq_len[b]);
                head_forward(a, &z, &w->head[t][l], n, a->out);  // the activations again (see ola.h)
                const float *dp = a->dpreds[t][l] + (size_t)i * z.P;
                scale_forward(a->dout, dp, scale, (size_t)z.P);
                head_backward(a, &z, &w->head[t][l], g ? &g->head[t][l] : NULL, n);
                embedding_backward(dstate, a->dX, a->rows, n, B * T, D);  // dstate[rows[r]] += dX[r]
                if (t != OLA_GEN) {  // the queries are the task's tokens
                    if (g) residual_forward(g->tokens[t], g->tokens[t], a->dqueries, (size_t)z.NQ * D);
                    continue;
                }
                // gen's queries came from its task-token rows
                float *dtask = dstate + ((size_t)b * T + image_pos[b] + llava_image_tokens(cfg) + (size_t)k * ntt) * D;
                for (int q = 0; q < z.NQ; q++) {
                    int src = gen_query_source(z.NQ, ntt, q);
                    const float *dq = a->dqueries + (size_t)q * D;
                    if (src >= 0) embedding_backward(dtask, dq, &(int32_t){src}, 1, ntt, D);  // its row
                    else group_mean_backward(dtask, dq, 1, ntt, D);                         // the mean of the rows
                }
            }
        }
    }
    return a->dstates;
}

static void rows_forward(const Extension *e, const LlavaConfig *cfg, const LlavaWeights *lw, float *rows) {
    (void)e;
    const OlaWeights *w = &lw->ola;
    const OlaConfig *o = &cfg->ola;
    int D = cfg->text.hidden, ntt = o->num_task_tokens;
    for (int k = 0; k < o->n_order; k++) {
        OlaTask t = o->order[k];
        group_mean_forward(rows + (size_t)k * ntt * D, w->tokens[t], ntt, ola_learnt_tokens(o, t) / ntt, D);
    }
}

static void rows_backward(const Extension *e, const LlavaConfig *cfg, LlavaWeights *lg, const float *drows) {
    (void)e;
    OlaWeights *g = &lg->ola;
    const OlaConfig *o = &cfg->ola;
    int D = cfg->text.hidden, ntt = o->num_task_tokens;
    for (int k = 0; k < o->n_order; k++) {
        OlaTask t = o->order[k];
        group_mean_backward(g->tokens[t], drows + (size_t)k * ntt * D, ntt, ola_learnt_tokens(o, t) / ntt, D);
    }
}

// ---- the extension

static const ExtensionOps OPS = {.carve = acts_carve, .rows_forward = rows_forward, .rows_backward = rows_backward,
                                 .loss_forward = loss_forward, .loss_backward = loss_backward, .free = ext_free};

Extension *ola_extension_new(const LlavaConfig *cfg) {
    Extension *e = calloc(1, sizeof *e);
    OlaActs *a = calloc(1, sizeof *a);
    if (!e || !a) {
        free(e), free(a);
        return NULL;
    }
    *e = (Extension){.ops = &OPS, .name = OLA_EXTENSION, .module = MODULE_OLA, .span_rows = ola_task_rows(&cfg->ola),
                     .has_loss = true, .n_parts = OLA_TASKS, .state = a};
    for (int t = 0; t < OLA_TASKS; t++) e->part_names[t] = ola_task_name((OlaTask)t);
    return e;
}

const OlaActs *ola_acts(const Extension *e) { return e->state; }
