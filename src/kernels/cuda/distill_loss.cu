// OLA-VLM's embedding-distillation loss on the GPU, see distill_loss.h, in
// distill_loss.c's arithmetic (double accumulations, the cosines and norms
// kept in float): the smooth L1 term block by block, the norms and cosines a
// block each, the B rows of the InfoNCE one thread each, then one thread sums
// the rows in order. The three scalars come back to the host at the end.
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/distill_loss.h"
}

#define DL_THREADS 256
#define DL_BLOCKS_MAX 1024

// partial[block] = the block's sum of smooth L1; dpred = its gradient (written)
__global__ static void smooth_l1(double *partial, float *dpred, const float *pred, const float *target, size_t n,
                                 double weight) {
    __shared__ double shared[32];
    double s = 0.0;
    GRID_STRIDE(i, n) {
        double x = (double)pred[i] - target[i], ax = fabs(x);
        s += ax < 1.0 ? 0.5 * x * x : ax - 0.5;
        dpred[i] = (float)(weight * (x < -1.0 ? -1.0 : x > 1.0 ? 1.0 : x) / (double)n);
    }
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// blockIdx.x < B: |pred_i| into pn, else |target_(i - B)| into tn (F.normalize's eps)
__global__ static void row_norms(float *pn, float *tn, const float *pred, const float *target, int B, int D) {
    __shared__ double shared[32];
    int i = blockIdx.x;
    const float *x = i < B ? pred + (size_t)i * D : target + (size_t)(i - B) * D;
    double s = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s += (double)x[d] * x[d];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) (i < B ? pn[i] : tn[i - B]) = (float)fmax(sqrt(s), 1e-12);
}

// cos (B, B): block (i, j) the cosine of pred_i and target_j
__global__ static void cosines(float *cos, const float *pred, const float *target, const float *pn, const float *tn,
                               int B, int D) {
    __shared__ double shared[32];
    int i = blockIdx.x / B, j = blockIdx.x % B;
    double dot = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) dot += (double)pred[(size_t)i * D + d] * target[(size_t)j * D + d];
    dot = block_sum(dot, shared);
    if (threadIdx.x == 0) cos[blockIdx.x] = (float)(dot / ((double)pn[i] * tn[j]));
}

// thread i: row i's InfoNCE term, sum_j g_ij cos_ij, sum_j dcos_ij cos_ij into rows (3, B); the row of
// cosines replaced by d loss / d cos
__global__ static void infonce_rows(double *rows, float *cos, int B, double s, double cw) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B) return;
    float *row = cos + (size_t)i * B;
    double max = -INFINITY, sum = 0.0;
    for (int j = 0; j < B; j++) max = fmax(max, s * row[j]);
    for (int j = 0; j < B; j++) sum += exp(s * row[j] - max);
    double lse = max + log(sum), dsum = 0.0, acc_cos = 0.0;
    double con = lse - s * row[i];
    for (int j = 0; j < B; j++) {
        double g = exp(s * row[j] - lse) - (i == j), dcos = cw * s * g;
        dsum += g * row[j];
        acc_cos += dcos * row[j];
        row[j] = (float)dcos;
    }
    rows[i] = con, rows[B + i] = dsum, rows[2 * B + i] = acc_cos;
}

// dpred[i, d] += the cosines' part: sum_j dcos_ij t_jd / (|p_i| |t_j|) - acc_cos_i p_id / |p_i|^2
__global__ static void cosine_grad(float *dpred, const float *pred, const float *target, const float *dcos,
                                   const float *pn, const float *tn, const double *rows, int B, int D) {
    GRID_STRIDE(e, (size_t)B * D) {
        int i = (int)(e / D), d = (int)(e % D);
        double g = 0.0;
        for (int j = 0; j < B; j++) g += dcos[(size_t)i * B + j] * (double)target[(size_t)j * D + d] / ((double)pn[i] * tn[j]);
        dpred[e] += (float)(g - rows[2 * B + i] * pred[e] / ((double)pn[i] * pn[i]));
    }
}

// out = (sum of the smooth L1 partials, sum of the rows' InfoNCE terms, sum of their dsum), in order
__global__ static void distill_totals(double *out, const double *partial, int n_partial, const double *rows, int B) {
    double a = 0.0, b = 0.0, c = 0.0;
    for (int k = 0; k < n_partial; k++) a += partial[k];
    for (int i = 0; i < B; i++) b += rows[i], c += rows[B + i];
    out[0] = a, out[1] = b, out[2] = c;
}

DistillLoss distill_loss(const float *pred, const float *target, int B, int D, float logit_scale,
                         float contrastive_weight, float weight, float *dpred, float *dscale, float *scratch) {
    DistillLoss r = {0, 0, 0};
    *dscale = 0.0f;
    if (B <= 0 || D <= 0) return r;
    size_t n = (size_t)B * D;
    unsigned int blocks = (unsigned int)((n + DL_THREADS - 1) / DL_THREADS < DL_BLOCKS_MAX ? (n + DL_THREADS - 1) / DL_THREADS
                                                                                          : DL_BLOCKS_MAX);
    double *partial = (double *)cuda_scratch(SCRATCH_DISTILL, sizeof(double) * (blocks + 3 * (size_t)B + 3));
    double *rows = partial + blocks, *totals = rows + 3 * (size_t)B;
    float *cos = scratch, *pn = scratch + (size_t)B * B, *tn = pn + B;
    double e = exp((double)logit_scale), s = fmin(e, 100.0);
    double cw = weight * contrastive_weight / B;  // in float, then widened, as distill_loss.c
    smooth_l1<<<blocks, DL_THREADS>>>(partial, dpred, pred, target, n, (double)weight);
    CUDA_LAUNCHED("smooth_l1");
    row_norms<<<2 * B, DL_THREADS>>>(pn, tn, pred, target, B, D);
    CUDA_LAUNCHED("row_norms");
    cosines<<<B * B, DL_THREADS>>>(cos, pred, target, pn, tn, B, D);
    CUDA_LAUNCHED("cosines");
    infonce_rows<<<(B + 127) / 128, 128>>>(rows, cos, B, s, cw);
    CUDA_LAUNCHED("infonce_rows");
    LAUNCH(cosine_grad, n, dpred, pred, target, cos, pn, tn, rows, B, D);
    distill_totals<<<1, 1>>>(totals, partial, (int)blocks, rows, B);
    CUDA_LAUNCHED("distill_totals");
    double host[3];
    CUDA_CHECK(cudaMemcpy(host, totals, sizeof host, cudaMemcpyDeviceToHost));
    r.smooth_l1 = host[0] / (double)n;
    r.infonce = host[1] / B;
    r.loss = weight * (r.smooth_l1 + contrastive_weight * r.infonce);
    // d/d logit_scale: through s = exp(logit_scale) while below the clamp (torch.clamp passes at most 100)
    *dscale = e <= 100.0 ? (float)(weight * contrastive_weight / B * host[2] * e) : 0.0f;
    return r;
}
