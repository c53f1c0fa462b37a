// Training plots (src/train/plot.c): the PNG decodes (our decoder) to
// 800 x 500, the curves' pixels lie where the layout maps the data, NaN
// values leave gaps, and n = 0 / 1 still give a picture.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "image/image.h"
#include "test_util.h"
#include "train/plot.h"

static const unsigned char *pixel(const Image *im, int x, int y) { return im->rgb + ((size_t)y * im->width + x) * 3; }
static int is(const Image *im, int x, int y, const unsigned char rgb[3]) { return memcmp(pixel(im, x, y), rgb, 3) == 0; }

static void render(const double *step, const double *loss, const double *lr, int n, Image *im) {
    const char *path = temp_file("");
    ck_assert_msg(plot_training_png(path, step, loss, lr, n) == VLM_OK, "%s", vlm_last_error());
    ck_assert_msg(image_decode_file(path, im) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(im->width, PLOT_WIDTH);
    ck_assert_int_eq(im->height, PLOT_HEIGHT);
}

// pixels of colour rgb inside panel p
static int count_in(const Image *im, const PlotPanel *p, const unsigned char rgb[3]) {
    int n = 0;
    for (int y = p->y0; y <= p->y1; y++)
        for (int x = p->x0; x <= p->x1; x++) n += is(im, x, y, rgb);
    return n;
}

START_TEST(plot_straight_lines) {
    enum { N = 101 };
    double step[N], loss[N], lr[N];
    for (int i = 0; i < N; i++) step[i] = 10 * i, loss[i] = 8 - 0.05 * i, lr[i] = 3e-4 * i / (N - 1);
    Image im;
    render(step, loss, lr, N, &im);
    PlotPanel p[2];
    plot_layout(step, loss, lr, N, p);
    ck_assert(p[0].ymin <= 3 && p[0].ymax >= 8 && p[1].ymin <= 0 && p[1].ymax >= 3e-4);
    ck_assert_double_eq(p[0].xmin, 0);
    ck_assert_double_eq(p[0].xmax, 1000);
    // every data point's pixel has the curve's colour; each column between holds it once, near the line
    for (int i = 0; i < N; i++) {
        int x = p[0].x0 + (int)lround(step[i] / 1000 * (p[0].x1 - p[0].x0));
        int y = p[0].y1 - (int)lround((loss[i] - p[0].ymin) / (p[0].ymax - p[0].ymin) * (p[0].y1 - p[0].y0));
        ck_assert_msg(is(&im, x, y, PLOT_LOSS_RGB), "loss point %d at (%d, %d)", i, x, y);
        int ylr = p[1].y1 - (int)lround((lr[i] - p[1].ymin) / (p[1].ymax - p[1].ymin) * (p[1].y1 - p[1].y0));
        ck_assert_msg(is(&im, x, ylr, PLOT_LR_RGB), "lr point %d at (%d, %d)", i, x, ylr);
    }
    for (int x = p[0].x0 + 1; x < p[0].x1; x++) {
        double t = (double)(x - p[0].x0) / (p[0].x1 - p[0].x0), want = 8 - 5 * t;
        double yline = p[0].y1 - (want - p[0].ymin) / (p[0].ymax - p[0].ymin) * (p[0].y1 - p[0].y0);
        for (int y = p[0].y0; y <= p[0].y1; y++)
            if (is(&im, x, y, PLOT_LOSS_RGB)) ck_assert_msg(fabs(y - yline) <= 2.5, "column %d: pixel at %d, line at %.1f", x, y, yline);
    }
    // the curves stay in their panels
    ck_assert_int_eq(count_in(&im, &p[1], PLOT_LOSS_RGB), 0);
    ck_assert_int_eq(count_in(&im, &p[0], PLOT_LR_RGB), 0);
    image_free(&im);
}
END_TEST

START_TEST(plot_skips_nan) {
    enum { N = 101 };
    double step[N], loss[N];
    for (int i = 0; i < N; i++) step[i] = i, loss[i] = 2;
    loss[50] = NAN, loss[51] = INFINITY, loss[0] = 3, loss[N - 1] = 1;
    Image im;
    render(step, loss, NULL, N, &im);
    PlotPanel p[2];
    plot_layout(step, loss, NULL, N, p);
    ck_assert(isfinite(p[0].ymin) && isfinite(p[0].ymax) && p[0].ymin <= 1 && p[0].ymax >= 3 && p[0].ymax < 10);
    // no curve at steps 50 and 51 (between the neighbours 49 and 52), curve at 48 and 53
    int y = p[0].y1 - (int)lround((2 - p[0].ymin) / (p[0].ymax - p[0].ymin) * (p[0].y1 - p[0].y0));
    for (int s = 50; s <= 51; s++) {
        int x = p[0].x0 + (int)lround(s / 100.0 * (p[0].x1 - p[0].x0));
        for (int yy = p[0].y0; yy <= p[0].y1; yy++) ck_assert_msg(!is(&im, x, yy, PLOT_LOSS_RGB), "step %d drawn", s);
    }
    for (int s = 48; s <= 53; s += 5) ck_assert(is(&im, p[0].x0 + (int)lround(s / 100.0 * (p[0].x1 - p[0].x0)), y, PLOT_LOSS_RGB));
    ck_assert_int_eq(count_in(&im, &p[1], PLOT_LR_RGB), 0);  // no lr series
    image_free(&im);
}
END_TEST

START_TEST(plot_zero_and_one_point) {
    Image im;
    PlotPanel p[2];
    render(NULL, NULL, NULL, 0, &im);
    plot_layout(NULL, NULL, NULL, 0, p);
    ck_assert_int_eq(count_in(&im, &p[0], PLOT_LOSS_RGB), 0);
    int ink = 0;  // the axes and labels are drawn
    for (int i = 0; i < PLOT_WIDTH * PLOT_HEIGHT; i++) ink += im.rgb[3 * i] < 100;
    ck_assert_int_gt(ink, 500);
    image_free(&im);
    double step = 7, loss = 2.5, lr = 1e-3;
    render(&step, &loss, &lr, 1, &im);
    plot_layout(&step, &loss, &lr, 1, p);
    int x = (p[0].x0 + p[0].x1) / 2, y = p[0].y1 - (int)lround((2.5 - p[0].ymin) / (p[0].ymax - p[0].ymin) * (p[0].y1 - p[0].y0));
    ck_assert_msg(is(&im, x, y, PLOT_LOSS_RGB) && is(&im, x + 1, y + 1, PLOT_LOSS_RGB), "no point at (%d, %d)", x, y);
    ck_assert_int_gt(count_in(&im, &p[1], PLOT_LR_RGB), 4);
    image_free(&im);
    // an unwritable destination is an error naming it
    vlm_clear_error();
    ck_assert_int_ne(plot_training_png("/nonexistent-dir/plot.png", &step, &loss, &lr, 1), VLM_OK);
    ck_assert_ptr_nonnull(strstr(vlm_last_error(), "/nonexistent-dir"));
}
END_TEST

Suite *plot_suite(void) { return SUITE("plot", "", 30, plot_straight_lines, plot_skips_nan, plot_zero_and_one_point); }
