// Backend suite: the embedding, the splice and the row movers of
// embedding.h. All of them move or sum in a fixed order (the embedding's
// gradient: each id's rows in row order, as embedding.c's stable sort), so
// every result is compared bit for bit, with plain loops in float.
#include <string.h>

#include "backend_util.h"
#include "kernels/device.h"
#include "kernels/embedding.h"

START_TEST(embedding) {
    bt_seed(41);
    int V = 50, C = 1100, N = 300;  // columns past one block's 1024
    float *table = bt_randn((size_t)V * C, 1.0f), *dout = bt_randn((size_t)N * C, 1.0f), *g0 = bt_randn((size_t)V * C, 1.0f);
    int32_t *ids = bt_ints(N, -3, V);  // some negative: skipped
    ids[0] = ids[N - 1] = V - 1;
    float *out = bt_host(sizeof(float) * N * C), *dtable = bt_host(sizeof(float) * V * C);
    memcpy(dtable, g0, sizeof(float) * V * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = ids[n] < 0 ? 0.0f : table[(size_t)ids[n] * C + c];
    for (int v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            int any = 0;
            for (int n = 0; n < N; n++)
                if (ids[n] == v) s += dout[(size_t)n * C + c], any = 1;
            if (any) dtable[(size_t)v * C + c] += s;
        }
    int32_t *d_ids = bt_up_bytes(ids, sizeof(int32_t) * N);
    float *d_out = bt_dev_zeros((size_t)N * C), *d_dt = bt_up(g0, (size_t)V * C);
    embedding_forward(d_out, d_ids, bt_up(table, (size_t)V * C), N, C);
    bt_exact("embedding_forward", d_out, out, (size_t)N * C);
    embedding_backward(d_dt, bt_up(dout, (size_t)N * C), d_ids, N, V, C);
    bt_exact("embedding_backward (accumulated)", d_dt, dtable, (size_t)V * C);
    bt_free_all();
}
END_TEST

START_TEST(splice) {
    bt_seed(42);
    int C = 13, N_text = 20, N_image = 9, N = 25;
    float *text = bt_randn((size_t)N_text * C, 1.0f), *image = bt_randn((size_t)N_image * C, 1.0f);
    float *dout = bt_randn((size_t)N * C, 1.0f);
    int32_t src[25];
    for (int n = 0; n < N; n++) src[n] = n < 6 ? n : n < 15 ? -1 - (n - 6) : n < 22 ? n - 9 : SPLICE_ZERO;  // text rows 13..19 unused
    float *out = bt_host(sizeof(float) * N * C), *dtext = bt_host(sizeof(float) * N_text * C);
    float *dimage = bt_host(sizeof(float) * N_image * C);
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        if (src[n] == SPLICE_ZERO) memset(o, 0, sizeof(float) * C);
        else if (src[n] >= 0) memcpy(o, text + (size_t)src[n] * C, sizeof(float) * C);
        else memcpy(o, image + (size_t)(-1 - src[n]) * C, sizeof(float) * C);
        if (src[n] != SPLICE_ZERO)
            memcpy(src[n] >= 0 ? dtext + (size_t)src[n] * C : dimage + (size_t)(-1 - src[n]) * C, dout + (size_t)n * C,
                   sizeof(float) * C);
    }
    int32_t *d_src = bt_up_bytes(src, sizeof src);
    float *d_out = bt_dev_zeros((size_t)N * C), *d_dout = bt_up(dout, (size_t)N * C);
    splice_forward(d_out, d_src, bt_up(text, (size_t)N_text * C), bt_up(image, (size_t)N_image * C), N, C);
    bt_exact("splice_forward", d_out, out, (size_t)N * C);
    // written: garbage before, the unused rows 0 after
    float *d_dt = bt_up(bt_randn((size_t)N_text * C, 1.0f), (size_t)N_text * C);
    float *d_di = bt_up(bt_randn((size_t)N_image * C, 1.0f), (size_t)N_image * C);
    splice_backward(d_dt, d_di, d_dout, d_src, N, C, N_text, N_image);
    bt_exact("splice_backward dtext", d_dt, dtext, (size_t)N_text * C);
    bt_exact("splice_backward dimage", d_di, dimage, (size_t)N_image * C);
    device_upload(d_dt, text, sizeof(float) * N_text * C);
    splice_backward(d_dt, NULL, d_dout, d_src, N, C, N_text, N_image);
    bt_exact("splice_backward dtext alone", d_dt, dtext, (size_t)N_text * C);
    bt_free_all();
}
END_TEST

START_TEST(image_span_and_rows) {
    bt_seed(43);
    int n_img = 3, n_feat = 4, n_extra = 2, C = 7, span = n_feat + n_extra;
    float *feat = bt_randn((size_t)n_img * n_feat * C, 1.0f), *extra = bt_randn((size_t)n_extra * C, 1.0f);
    float *dimg = bt_randn((size_t)n_img * span * C, 1.0f);
    float *img = bt_host(sizeof(float) * n_img * span * C), *dfeat = bt_host(sizeof(float) * n_img * n_feat * C);
    float *dextra = bt_host(sizeof(float) * n_extra * C);
    for (int i = 0; i < n_img; i++) {
        memcpy(img + (size_t)i * span * C, feat + (size_t)i * n_feat * C, sizeof(float) * n_feat * C);
        memcpy(img + ((size_t)i * span + n_feat) * C, extra, sizeof(float) * n_extra * C);
        memcpy(dfeat + (size_t)i * n_feat * C, dimg + (size_t)i * span * C, sizeof(float) * n_feat * C);
    }
    for (int e = 0; e < n_extra * C; e++) {
        float s = 0.0f;
        for (int i = 0; i < n_img; i++) s += dimg[((size_t)i * span + n_feat) * C + e];
        dextra[e] = s;
    }
    float *d_img = bt_dev_zeros((size_t)n_img * span * C), *d_dfeat = bt_dev_zeros((size_t)n_img * n_feat * C);
    float *d_dextra = bt_up(extra, (size_t)n_extra * C);  // written, whatever it held
    image_span_forward(d_img, bt_up(feat, (size_t)n_img * n_feat * C), bt_up(extra, (size_t)n_extra * C), n_img, n_feat,
                       n_extra, C);
    bt_exact("image_span_forward", d_img, img, (size_t)n_img * span * C);
    image_span_backward(d_dfeat, d_dextra, bt_up(dimg, (size_t)n_img * span * C), n_img, n_feat, n_extra, C);
    bt_exact("image_span_backward dfeat", d_dfeat, dfeat, (size_t)n_img * n_feat * C);
    bt_exact("image_span_backward dextra", d_dextra, dextra, (size_t)n_extra * C);

    // row selection: out = inp[rows]; backward writes dinp, zero in the other rows
    int N = 11, nsel = 4;
    int32_t rows[4] = {9, 0, 4, 10};
    float *inp = bt_randn((size_t)N * C, 1.0f), *dsel = bt_randn((size_t)nsel * C, 1.0f);
    float *sel = bt_host(sizeof(float) * nsel * C), *dinp = bt_host(sizeof(float) * N * C);
    for (int r = 0; r < nsel; r++) {
        memcpy(sel + (size_t)r * C, inp + (size_t)rows[r] * C, sizeof(float) * C);
        memcpy(dinp + (size_t)rows[r] * C, dsel + (size_t)r * C, sizeof(float) * C);
    }
    int32_t *d_rows = bt_up_bytes(rows, sizeof rows);
    float *d_sel = bt_dev_zeros((size_t)nsel * C), *d_dinp = bt_up(inp, (size_t)N * C);
    row_select_forward(d_sel, bt_up(inp, (size_t)N * C), d_rows, nsel, C);
    bt_exact("row_select_forward", d_sel, sel, (size_t)nsel * C);
    row_select_backward(d_dinp, bt_up(dsel, (size_t)nsel * C), d_rows, nsel, N, C);
    bt_exact("row_select_backward", d_dinp, dinp, (size_t)N * C);

    // a slice of each sequence; the backward writes zeros outside it
    int B = 3, T = 9, first = 2, count = 5;
    float *seq = bt_randn((size_t)B * T * C, 1.0f), *dsl = bt_randn((size_t)B * count * C, 1.0f);
    float *sl = bt_host(sizeof(float) * B * count * C), *dseq = bt_host(sizeof(float) * B * T * C);
    for (int b = 0; b < B; b++) {
        memcpy(sl + (size_t)b * count * C, seq + ((size_t)b * T + first) * C, sizeof(float) * count * C);
        memcpy(dseq + ((size_t)b * T + first) * C, dsl + (size_t)b * count * C, sizeof(float) * count * C);
    }
    float *d_sl = bt_dev_zeros((size_t)B * count * C), *d_dseq = bt_up(seq, (size_t)B * T * C);
    token_slice_forward(d_sl, bt_up(seq, (size_t)B * T * C), B, T, first, count, C);
    bt_exact("token_slice_forward", d_sl, sl, (size_t)B * count * C);
    token_slice_backward(d_dseq, bt_up(dsl, (size_t)B * count * C), B, T, first, count, C);
    bt_exact("token_slice_backward", d_dseq, dseq, (size_t)B * T * C);
    bt_free_all();
}
END_TEST

START_TEST(concat_repeat_put) {
    bt_seed(44);
    int n = 3, na = 2, nb = 5, C = 6, W = na + nb;
    float *a = bt_randn((size_t)n * na * C, 1.0f), *b = bt_randn((size_t)n * nb * C, 1.0f), *dout = bt_randn((size_t)n * W * C, 1.0f);
    float *cat = bt_host(sizeof(float) * n * W * C), *da = bt_host(sizeof(float) * n * na * C), *db = bt_host(sizeof(float) * n * nb * C);
    for (int i = 0; i < n; i++) {
        memcpy(cat + (size_t)i * W * C, a + (size_t)i * na * C, sizeof(float) * na * C);
        memcpy(cat + ((size_t)i * W + na) * C, b + (size_t)i * nb * C, sizeof(float) * nb * C);
        memcpy(da + (size_t)i * na * C, dout + (size_t)i * W * C, sizeof(float) * na * C);
        memcpy(db + (size_t)i * nb * C, dout + ((size_t)i * W + na) * C, sizeof(float) * nb * C);
    }
    float *d_cat = bt_dev_zeros((size_t)n * W * C), *d_da = bt_dev_zeros((size_t)n * na * C), *d_db = bt_dev_zeros((size_t)n * nb * C);
    float *d_dout = bt_up(dout, (size_t)n * W * C);
    concat_rows_forward(d_cat, bt_up(a, (size_t)n * na * C), na, bt_up(b, (size_t)n * nb * C), nb, n, C);
    bt_exact("concat_rows_forward", d_cat, cat, (size_t)n * W * C);
    concat_rows_backward(d_da, d_db, d_dout, na, nb, n, C);
    bt_exact("concat_rows_backward da", d_da, da, (size_t)n * na * C);
    bt_exact("concat_rows_backward db", d_db, db, (size_t)n * nb * C);
    device_zero(d_da, sizeof(float) * n * na * C);
    concat_rows_backward(NULL, d_db, d_dout, na, nb, n, C);
    bt_exact("concat_rows_backward without da", d_da, bt_host(sizeof(float) * n * na * C), (size_t)n * na * C);

    // repeat (the learnt queries) and its gradient summed in image order into a parameter (accumulates)
    int R = 4;
    size_t E = (size_t)R * C;
    float *table = bt_randn(E, 1.0f), *drep = bt_randn(n * E, 1.0f), *g0 = bt_randn(E, 1.0f), *x = bt_randn(n * E, 1.0f);
    float *rep = bt_host(sizeof(float) * n * E), *dtable = bt_host(sizeof(float) * E), *added = bt_host(sizeof(float) * n * E);
    for (int i = 0; i < n; i++)
        for (size_t e = 0; e < E; e++) rep[i * E + e] = table[e], added[i * E + e] = x[i * E + e] + table[e];
    for (size_t e = 0; e < E; e++) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += drep[i * E + e];
        dtable[e] = g0[e] + s;
    }
    float *d_table = bt_up(table, E), *d_rep = bt_dev_zeros(n * E), *d_dtable = bt_up(g0, E), *d_x = bt_up(x, n * E);
    repeat_rows_forward(d_rep, d_table, n, R, C);
    bt_exact("repeat_rows_forward", d_rep, rep, n * E);
    repeat_rows_backward(d_dtable, bt_up(drep, n * E), n, R, C);
    bt_exact("repeat_rows_backward", d_dtable, dtable, E);
    add_rows_forward(d_x, d_x, d_table, n, R, C);  // in place
    bt_exact("add_rows_forward", d_x, added, n * E);

    // writing columns of some rows; the backward takes them out and zeroes them in place
    int N = 8, ld = 20, col = 3, width = 9, nr = 3;
    int32_t rows[3] = {6, 1, 3};
    float *outm = bt_randn((size_t)N * ld, 1.0f), *in = bt_randn((size_t)nr * width, 1.0f), *dm = bt_randn((size_t)N * ld, 1.0f);
    float *put = bt_host(sizeof(float) * N * ld), *din = bt_host(sizeof(float) * nr * width), *dleft = bt_host(sizeof(float) * N * ld);
    memcpy(put, outm, sizeof(float) * N * ld);
    memcpy(dleft, dm, sizeof(float) * N * ld);
    for (int r = 0; r < nr; r++) {
        memcpy(put + (size_t)rows[r] * ld + col, in + (size_t)r * width, sizeof(float) * width);
        memcpy(din + (size_t)r * width, dm + (size_t)rows[r] * ld + col, sizeof(float) * width);
        memset(dleft + (size_t)rows[r] * ld + col, 0, sizeof(float) * width);
    }
    int32_t *d_rows = bt_up_bytes(rows, sizeof rows);
    float *d_outm = bt_up(outm, (size_t)N * ld), *d_dm = bt_up(dm, (size_t)N * ld), *d_din = bt_dev_zeros((size_t)nr * width);
    row_put_cols_forward(d_outm, ld, col, bt_up(in, (size_t)nr * width), d_rows, nr, width);
    bt_exact("row_put_cols_forward", d_outm, put, (size_t)N * ld);
    row_put_cols_backward(d_din, d_dm, ld, col, d_rows, nr, width);
    bt_exact("row_put_cols_backward din", d_din, din, (size_t)nr * width);
    bt_exact("row_put_cols_backward dout zeroed", d_dm, dleft, (size_t)N * ld);
    bt_free_all();
}
END_TEST

Suite *backend_movers_suite(void) {
    Suite *s = suite_create("backend_movers");
    TCase *tc = tcase_create("backend_movers");
    tcase_add_test(tc, embedding);
    tcase_add_test(tc, splice);
    tcase_add_test(tc, image_span_and_rows);
    tcase_add_test(tc, concat_repeat_put);
    suite_add_tcase(s, tc);
    return s;
}
