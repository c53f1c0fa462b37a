// Embeddings, the image splice and the row movers on the GPU, see
// embedding.h: one thread per element moved. The sums (the embedding's
// gradient, the images' sums into a shared table) run in embedding.c's order,
// so they give its bits.
//
// The embedding's gradient, deterministic without sorting: the ids present
// are flagged, then one block per (vocabulary row, 1024 columns) scans the ids
// in order and sums the rows of dout that hold its id, in row order (as
// embedding.c's stable sort does), adding the sum to its row once. Rows of
// absent ids return at once; a present id scans the N ids (N / 256 steps).
#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/embedding.h"
}

__global__ static void embedding_fwd(float *out, const int32_t *ids, const float *table, int N, int C) {
    GRID_STRIDE(e, (size_t)N * C) {
        int id = ids[e / C];
        out[e] = id < 0 ? 0.0f : table[(size_t)id * C + e % C];
    }
}

void embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C) {
    LAUNCH(embedding_fwd, (size_t)N * C, out, ids, table, N, C);
}

__global__ static void flag_ids(uint8_t *present, const int32_t *ids, int N, int V) {
    GRID_STRIDE(n, (size_t)N) {
        int id = ids[n];
        if (id >= 0 && id < V) present[id] = 1;  // every writer writes 1: no order to depend on
    }
}

#define EMB_THREADS 256
#define EMB_PER_THREAD 4  // columns per thread: a block covers 1024 columns

__global__ static void embedding_bwd(float *dtable, const float *dout, const int32_t *ids, const uint8_t *present, int N,
                                     int C) {
    int v = blockIdx.x;
    if (!present[v]) return;
    __shared__ unsigned int hits[EMB_THREADS / 32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    size_t c0 = (size_t)blockIdx.y * EMB_THREADS * EMB_PER_THREAD + threadIdx.x;
    float acc[EMB_PER_THREAD];
    for (int k = 0; k < EMB_PER_THREAD; k++) acc[k] = 0.0f;
    for (int base = 0; base < N; base += EMB_THREADS) {
        int n = base + (int)threadIdx.x;
        unsigned int mask = __ballot_sync(0xffffffffu, n < N && ids[n] == v);
        if (lane == 0) hits[warp] = mask;
        __syncthreads();
        // the chunk's matching rows in row order: the warps' masks in warp order, each in bit order
        for (int w = 0; w < EMB_THREADS / 32; w++)
            for (unsigned int m = hits[w]; m; m &= m - 1) {
                const float *d = dout + (size_t)(base + w * 32 + __ffs(m) - 1) * C;
                for (int k = 0; k < EMB_PER_THREAD; k++) {
                    size_t c = c0 + (size_t)k * EMB_THREADS;
                    if (c < (size_t)C) acc[k] += d[c];
                }
            }
        __syncthreads();  // hits is rewritten by the next chunk
    }
    float *row = dtable + (size_t)v * C;
    for (int k = 0; k < EMB_PER_THREAD; k++) {
        size_t c = c0 + (size_t)k * EMB_THREADS;
        if (c < (size_t)C) row[c] += acc[k];
    }
}

void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V, int C) {
    if (N <= 0 || V <= 0 || C <= 0) return;
    uint8_t *present = (uint8_t *)cuda_scratch(SCRATCH_EMB, (size_t)V);
    CUDA_CHECK(cudaMemset(present, 0, (size_t)V));
    LAUNCH(flag_ids, (size_t)N, present, ids, N, V);
    dim3 grid((unsigned int)V, (unsigned int)((C + EMB_THREADS * EMB_PER_THREAD - 1) / (EMB_THREADS * EMB_PER_THREAD)));
    embedding_bwd<<<grid, EMB_THREADS>>>(dtable, dout, ids, present, N, C);
    CUDA_LAUNCHED("embedding_bwd");
}

// ---- the splice
__global__ static void splice_fwd(float *out, const int32_t *src, const float *text, const float *image, int N, int C) {
    GRID_STRIDE(e, (size_t)N * C) {
        int s = src[e / C];
        size_t c = e % C;
        out[e] = s == SPLICE_ZERO ? 0.0f : s >= 0 ? text[(size_t)s * C + c] : image[(size_t)(-1 - s) * C + c];
    }
}

void splice_forward(float *out, const int32_t *src, const float *text, const float *image, int N, int C) {
    LAUNCH(splice_fwd, (size_t)N * C, out, src, text, image, N, C);
}

// every source row feeds at most one output row: no two writes collide
__global__ static void splice_bwd(float *dtext, float *dimage, const float *dout, const int32_t *src, int N, int C) {
    GRID_STRIDE(e, (size_t)N * C) {
        int s = src[e / C];
        size_t c = e % C;
        if (s == SPLICE_ZERO) continue;
        float *dst = s >= 0 ? (dtext ? dtext + (size_t)s * C : NULL) : (dimage ? dimage + (size_t)(-1 - s) * C : NULL);
        if (dst) dst[c] = dout[e];
    }
}

void splice_backward(float *dtext, float *dimage, const float *dout, const int32_t *src, int N, int C, int N_text,
                     int N_image) {
    // written: rows that fed nothing (truncated, padding) get 0
    if (dtext && N_text > 0) CUDA_CHECK(cudaMemset(dtext, 0, sizeof(float) * (size_t)N_text * C));
    if (dimage && N_image > 0) CUDA_CHECK(cudaMemset(dimage, 0, sizeof(float) * (size_t)N_image * C));
    if (dtext || dimage) LAUNCH(splice_bwd, (size_t)N * C, dtext, dimage, dout, src, N, C);
}

// ---- image spans
__global__ static void image_span_fwd(float *img, const float *feat, const float *extra, int n_images, int n_feat,
                                      int n_extra, int C) {
    size_t span = (size_t)(n_feat + n_extra) * C;
    GRID_STRIDE(e, (size_t)n_images * span) {
        size_t i = e / span, r = e % span;
        img[e] = r < (size_t)n_feat * C ? feat[i * n_feat * C + r] : extra[r - (size_t)n_feat * C];
    }
}

void image_span_forward(float *img, const float *feat, const float *extra, int n_images, int n_feat, int n_extra, int C) {
    LAUNCH(image_span_fwd, (size_t)n_images * (n_feat + n_extra) * C, img, feat, extra, n_images, n_feat, n_extra, C);
}

__global__ static void image_span_bwd_feat(float *dfeat, const float *dimg, int n_images, int n_feat, int n_extra, int C) {
    size_t F = (size_t)n_feat * C, span = (size_t)(n_feat + n_extra) * C;
    GRID_STRIDE(e, (size_t)n_images * F) dfeat[e] = dimg[(e / F) * span + e % F];
}
// each element sums the images in order (embedding.c's order)
__global__ static void image_span_bwd_extra(float *dextra, const float *dimg, int n_images, int n_feat, int n_extra,
                                            int C) {
    size_t span = (size_t)(n_feat + n_extra) * C, F = (size_t)n_feat * C;
    GRID_STRIDE(e, (size_t)n_extra * C) {
        float s = 0.0f;
        for (int i = 0; i < n_images; i++) s += dimg[i * span + F + e];
        dextra[e] = s;
    }
}

void image_span_backward(float *dfeat, float *dextra, const float *dimg, int n_images, int n_feat, int n_extra, int C) {
    if (dfeat) LAUNCH(image_span_bwd_feat, (size_t)n_images * n_feat * C, dfeat, dimg, n_images, n_feat, n_extra, C);
    if (dextra) LAUNCH(image_span_bwd_extra, (size_t)n_extra * C, dextra, dimg, n_images, n_feat, n_extra, C);
}

// ---- row selection, slices, concatenation, repetition
__global__ static void row_select_fwd(float *out, const float *inp, const int32_t *rows, int n, int C) {
    GRID_STRIDE(e, (size_t)n * C) out[e] = inp[(size_t)rows[e / C] * C + e % C];
}
__global__ static void row_select_bwd(float *dinp, const float *dout, const int32_t *rows, int n, int C) {
    GRID_STRIDE(e, (size_t)n * C) dinp[(size_t)rows[e / C] * C + e % C] = dout[e];
}

void row_select_forward(float *out, const float *inp, const int32_t *rows, int n, int C) {
    LAUNCH(row_select_fwd, (size_t)n * C, out, inp, rows, n, C);
}
void row_select_backward(float *dinp, const float *dout, const int32_t *rows, int n, int N, int C) {
    if (N > 0) CUDA_CHECK(cudaMemset(dinp, 0, sizeof(float) * (size_t)N * C));
    LAUNCH(row_select_bwd, (size_t)n * C, dinp, dout, rows, n, C);
}

__global__ static void token_slice_fwd(float *out, const float *inp, int B, int T, int first, int count, int C) {
    size_t S = (size_t)count * C;
    GRID_STRIDE(e, (size_t)B * S) out[e] = inp[((e / S) * T + first) * C + e % S];
}
__global__ static void token_slice_bwd(float *dinp, const float *dout, int B, int T, int first, int count, int C) {
    size_t R = (size_t)T * C;
    GRID_STRIDE(e, (size_t)B * R) {
        size_t b = e / R, t = e % R / C;
        dinp[e] = t >= (size_t)first && t < (size_t)(first + count) ? dout[(b * count + t - first) * C + e % C] : 0.0f;
    }
}

void token_slice_forward(float *out, const float *inp, int B, int T, int first, int count, int C) {
    LAUNCH(token_slice_fwd, (size_t)B * count * C, out, inp, B, T, first, count, C);
}
void token_slice_backward(float *dinp, const float *dout, int B, int T, int first, int count, int C) {
    LAUNCH(token_slice_bwd, (size_t)B * T * C, dinp, dout, B, T, first, count, C);
}

__global__ static void concat_rows_fwd(float *out, const float *a, int na, const float *b, int nb, int n, int C) {
    size_t A = (size_t)na * C, Bn = (size_t)nb * C;
    GRID_STRIDE(e, (size_t)n * (A + Bn)) {
        size_t i = e / (A + Bn), r = e % (A + Bn);
        out[e] = r < A ? a[i * A + r] : b[i * Bn + r - A];
    }
}
__global__ static void concat_rows_bwd(float *da, float *db, const float *dout, int na, int nb, int n, int C) {
    size_t A = (size_t)na * C, Bn = (size_t)nb * C;
    GRID_STRIDE(e, (size_t)n * (A + Bn)) {
        size_t i = e / (A + Bn), r = e % (A + Bn);
        if (r < A) {
            if (da) da[i * A + r] = dout[e];
        } else if (db) {
            db[i * Bn + r - A] = dout[e];
        }
    }
}

void concat_rows_forward(float *out, const float *a, int na, const float *b, int nb, int n, int C) {
    LAUNCH(concat_rows_fwd, (size_t)n * (na + nb) * C, out, a, na, b, nb, n, C);
}
void concat_rows_backward(float *da, float *db, const float *dout, int na, int nb, int n, int C) {
    if (da || db) LAUNCH(concat_rows_bwd, (size_t)n * (na + nb) * C, da, db, dout, na, nb, n, C);
}

__global__ static void repeat_rows_fwd(float *out, const float *table, int n, size_t E) {
    GRID_STRIDE(e, (size_t)n * E) out[e] = table[e % E];
}
// each element sums the images in order, then adds the sum once (embedding.c's order)
__global__ static void repeat_rows_bwd(float *dtable, const float *dout, int n, size_t E) {
    GRID_STRIDE(e, E) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += dout[i * E + e];
        dtable[e] += s;
    }
}
__global__ static void add_rows_fwd(float *out, const float *x, const float *table, int n, size_t E) {
    GRID_STRIDE(e, (size_t)n * E) out[e] = x[e] + table[e % E];
}

void repeat_rows_forward(float *out, const float *table, int n, int R, int C) {
    LAUNCH(repeat_rows_fwd, (size_t)n * R * C, out, table, n, (size_t)R * C);
}
void repeat_rows_backward(float *dtable, const float *dout, int n, int R, int C) {
    LAUNCH(repeat_rows_bwd, (size_t)R * C, dtable, dout, n, (size_t)R * C);
}
void add_rows_forward(float *out, const float *x, const float *table, int n, int R, int C) {
    LAUNCH(add_rows_fwd, (size_t)n * R * C, out, x, table, n, (size_t)R * C);
}

__global__ static void row_put_cols_fwd(float *out, int ld, int col, const float *in, const int32_t *rows, int n,
                                        int width) {
    GRID_STRIDE(e, (size_t)n * width) out[(size_t)rows[e / width] * ld + col + e % width] = in[e];
}
__global__ static void row_put_cols_bwd(float *din, float *dout, int ld, int col, const int32_t *rows, int n, int width) {
    GRID_STRIDE(e, (size_t)n * width) {
        float *d = dout + (size_t)rows[e / width] * ld + col + e % width;
        din[e] = *d;
        *d = 0.0f;
    }
}

void row_put_cols_forward(float *out, int ld, int col, const float *in, const int32_t *rows, int n, int width) {
    LAUNCH(row_put_cols_fwd, (size_t)n * width, out, ld, col, in, rows, n, width);
}
void row_put_cols_backward(float *din, float *dout, int ld, int col, const int32_t *rows, int n, int width) {
    LAUNCH(row_put_cols_bwd, (size_t)n * width, din, dout, ld, col, rows, n, width);
}
