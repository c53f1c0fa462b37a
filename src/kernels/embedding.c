// Embeddings and the image splice, see embedding.h.
#include "kernels/embedding.h"

#include <stdlib.h>  // qsort, realloc
#include <string.h>  // memcpy, memset

void embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        if (ids[n] < 0) memset(out + (long)n * C, 0, sizeof(float) * C);
        else memcpy(out + (long)n * C, table + (long)ids[n] * C, sizeof(float) * C);
    }
}

// Row indices ordered by id, then by position (stable): each id's rows in order.
static const int32_t *ids_of;
static int by_id(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (ids_of[x] != ids_of[y]) return ids_of[x] < ids_of[y] ? -1 : 1;
    return (x > y) - (x < y);
}

// The rows' order buffer: grown at the first calls, kept (the backward runs on one thread).
static int *order_for(int N) {
    static int *order, cap;
    if (N > cap) {
        int *grown = realloc(order, sizeof(int) * (size_t)N);
        if (!grown) return NULL;
        order = grown, cap = N;
    }
    return order;
}

enum { EMB_COLS = 256 };  // columns summed at a time per thread (on the stack)

void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V, int C) {
    (void)V;  // the table's rows, for the reader: ids index them
    // each id's rows are summed in order first and added to its row once (gradients.h: so
    // micro-batches accumulate as ranks sum); threads own blocks of columns (no two writers)
    int *order = order_for(N);
    if (!order) {  // no memory for the order: row by row into the table (the same sum, rounded otherwise)
#pragma omp parallel for
        for (int c0 = 0; c0 < C; c0 += EMB_COLS)
            for (int n = 0; n < N; n++)
                for (int c = c0; ids[n] >= 0 && c < C && c < c0 + EMB_COLS; c++) dtable[(long)ids[n] * C + c] += dout[(long)n * C + c];
        return;
    }
    for (int n = 0; n < N; n++) order[n] = n;
    ids_of = ids;
    qsort(order, (size_t)N, sizeof *order, by_id);
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += EMB_COLS) {
        int w = C - c0 < EMB_COLS ? C - c0 : EMB_COLS;
        float s[EMB_COLS];
        for (int i = 0; i < N;) {
            int id = ids[order[i]], j = i;
            for (int c = 0; c < w; c++) s[c] = 0.0f;
            for (; j < N && ids[order[j]] == id; j++) {
                const float *d = dout + (long)order[j] * C + c0;
                for (int c = 0; c < w; c++) s[c] += d[c];
            }
            if (id >= 0) {
                float *row = dtable + (long)id * C + c0;
                for (int c = 0; c < w; c++) row[c] += s[c];
            }
            i = j;
        }
    }
}

void splice_forward(float *out, const int32_t *src, const float *text, const float *image, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *o = out + (long)n * C;
        if (src[n] == SPLICE_ZERO) memset(o, 0, sizeof(float) * C);
        else if (src[n] >= 0) memcpy(o, text + (long)src[n] * C, sizeof(float) * C);
        else memcpy(o, image + (long)(-1 - src[n]) * C, sizeof(float) * C);
    }
}

void splice_backward(float *dtext, float *dimage, const float *dout, const int32_t *src, int N, int C, int N_text,
                     int N_image) {
    // written: rows that fed nothing (truncated, padding) get 0
    if (dtext) memset(dtext, 0, sizeof(float) * (size_t)N_text * C);
    if (dimage) memset(dimage, 0, sizeof(float) * (size_t)N_image * C);
    // every source row feeds at most one output row: no two writes collide
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (long)n * C;
        float *dst = NULL;
        if (src[n] == SPLICE_ZERO) continue;
        if (src[n] >= 0) dst = dtext ? dtext + (long)src[n] * C : NULL;
        else dst = dimage ? dimage + (long)(-1 - src[n]) * C : NULL;
        if (dst) memcpy(dst, d, sizeof(float) * C);
    }
}

void row_select_forward(float *out, const float *inp, const int32_t *rows, int n, int C) {
#pragma omp parallel for
    for (int r = 0; r < n; r++) memcpy(out + (long)r * C, inp + (long)rows[r] * C, sizeof(float) * C);
}

void row_select_backward(float *dinp, const float *dout, const int32_t *rows, int n, int N, int C) {
    memset(dinp, 0, sizeof(float) * (size_t)N * C);
#pragma omp parallel for
    for (int r = 0; r < n; r++) memcpy(dinp + (long)rows[r] * C, dout + (long)r * C, sizeof(float) * C);
}

void token_slice_forward(float *out, const float *inp, int B, int T, int first, int count, int C) {
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        memcpy(out + (long)b * count * C, inp + ((long)b * T + first) * C, sizeof(float) * (size_t)count * C);
}

void token_slice_backward(float *dinp, const float *dout, int B, int T, int first, int count, int C) {
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        float *d = dinp + (long)b * T * C;
        memset(d, 0, sizeof(float) * (size_t)first * C);
        memcpy(d + (long)first * C, dout + (long)b * count * C, sizeof(float) * (size_t)count * C);
        memset(d + (long)(first + count) * C, 0, sizeof(float) * (size_t)(T - first - count) * C);
    }
}

void image_span_forward(float *img, const float *feat, const float *extra, int n_images, int n_feat, int n_extra, int C) {
    size_t span = (size_t)(n_feat + n_extra) * C;
#pragma omp parallel for
    for (int i = 0; i < n_images; i++) {
        memcpy(img + i * span, feat + (size_t)i * n_feat * C, sizeof(float) * (size_t)n_feat * C);
        memcpy(img + i * span + (size_t)n_feat * C, extra, sizeof(float) * (size_t)n_extra * C);
    }
}

void image_span_backward(float *dfeat, float *dextra, const float *dimg, int n_images, int n_feat, int n_extra, int C) {
    size_t span = (size_t)(n_feat + n_extra) * C, E = (size_t)n_extra * C;
    if (dfeat)
#pragma omp parallel for
        for (int i = 0; i < n_images; i++)
            memcpy(dfeat + (size_t)i * n_feat * C, dimg + i * span, sizeof(float) * (size_t)n_feat * C);
    if (!dextra) return;
    // each element sums the images in order: the same for any thread count
#pragma omp parallel for
    for (size_t e = 0; e < E; e++) {
        float s = 0.0f;
        for (int i = 0; i < n_images; i++) s += dimg[i * span + (size_t)n_feat * C + e];
        dextra[e] = s;
    }
}

void concat_rows_forward(float *out, const float *a, int na, const float *b, int nb, int n, int C) {
    size_t A = (size_t)na * C, Bn = (size_t)nb * C;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        memcpy(out + i * (A + Bn), a + i * A, sizeof(float) * A);
        memcpy(out + i * (A + Bn) + A, b + i * Bn, sizeof(float) * Bn);
    }
}

void concat_rows_backward(float *da, float *db, const float *dout, int na, int nb, int n, int C) {
    size_t A = (size_t)na * C, Bn = (size_t)nb * C;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        if (da) memcpy(da + i * A, dout + i * (A + Bn), sizeof(float) * A);
        if (db) memcpy(db + i * Bn, dout + i * (A + Bn) + A, sizeof(float) * Bn);
    }
}

void repeat_rows_forward(float *out, const float *table, int n, int R, int C) {
    size_t E = (size_t)R * C;
#pragma omp parallel for
    for (int i = 0; i < n; i++) memcpy(out + i * E, table, sizeof(float) * E);
}

void repeat_rows_backward(float *dtable, const float *dout, int n, int R, int C) {
    size_t E = (size_t)R * C;
#pragma omp parallel for
    for (size_t e = 0; e < E; e++) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += dout[i * E + e];
        dtable[e] += s;
    }
}

void add_rows_forward(float *out, const float *x, const float *table, int n, int R, int C) {
    size_t E = (size_t)R * C;
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        for (size_t e = 0; e < E; e++) out[i * E + e] = x[i * E + e] + table[e];
}

void row_put_cols_forward(float *out, int ld, int col, const float *in, const int32_t *rows, int n, int width) {
#pragma omp parallel for
    for (int r = 0; r < n; r++)
        memcpy(out + (size_t)rows[r] * ld + col, in + (size_t)r * width, sizeof(float) * width);
}

void row_put_cols_backward(float *din, float *dout, int ld, int col, const int32_t *rows, int n, int width) {
#pragma omp parallel for
    for (int r = 0; r < n; r++) {
        float *d = dout + (size_t)rows[r] * ld + col;
        memcpy(din + (size_t)r * width, d, sizeof(float) * width);
        memset(d, 0, sizeof(float) * width);
    }
}
