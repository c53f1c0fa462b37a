// Training curves as a PNG, see plot.h.
#include "train/plot.h"

#include <math.h>
#include <png.h>     // libpng: the encoder
#include <setjmp.h>  // libpng's error path
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"  // atomic_open / atomic_commit

const unsigned char PLOT_LOSS_RGB[3] = {31, 119, 180}, PLOT_LR_RGB[3] = {230, 110, 10};
static const unsigned char INK[3] = {40, 40, 40}, GRID[3] = {228, 228, 228}, WHITE[3] = {255, 255, 255};

enum { LEFT = 104, RIGHT = 776, LOSS_TOP = 36, LOSS_BOTTOM = 290, LR_TOP = 326, LR_BOTTOM = 440, SCALE = 2 };

// ---- a 5x7 bitmap font: digits, '.', '-', '+' and the letters of the labels

typedef struct {
    char c;
    unsigned char rows[7];  // 5 bits each, bit 4 = leftmost column
} Glyph;

static const Glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}}, {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},
    {'s', {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E}}, {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}}, {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}}, {'g', {0x00, 0x00, 0x0F, 0x11, 0x0F, 0x01, 0x0E}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}}, {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
};

typedef struct {
    unsigned char *rgb;  // PLOT_HEIGHT rows of PLOT_WIDTH * 3
} Canvas;

static void put(Canvas *cv, int x, int y, const unsigned char c[3]) {
    if (x < 0 || y < 0 || x >= PLOT_WIDTH || y >= PLOT_HEIGHT) return;
    memcpy(cv->rgb + ((size_t)y * PLOT_WIDTH + x) * 3, c, 3);
}

static void rect(Canvas *cv, int x0, int y0, int x1, int y1, const unsigned char c[3]) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(cv, x, y, c);
}

static int text_width(const char *s) { return (int)strlen(s) * 6 * SCALE - SCALE; }

// Text with its top-left corner at (x, y); characters the font lacks are blanks.
static void text(Canvas *cv, int x, int y, const char *s, const unsigned char c[3]) {
    for (; *s; s++, x += 6 * SCALE) {
        const Glyph *g = NULL;
        for (size_t i = 0; i < sizeof FONT / sizeof *FONT; i++)
            if (FONT[i].c == *s) g = &FONT[i];
        for (int r = 0; g && r < 7; r++)
            for (int col = 0; col < 5; col++)
                if (g->rows[r] >> (4 - col) & 1) rect(cv, x + col * SCALE, y + r * SCALE, x + col * SCALE + SCALE - 1, y + r * SCALE + SCALE - 1, c);
    }
}

// ---- axes

// A "nice" tick spacing (1, 2 or 5 times a power of ten) for about `count` intervals over range.
static double nice_step(double range, int count) {
    double raw = range / count, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

// The range of the finite values, widened to whole ticks ([0, 1] when there are none).
static void data_range(const double *v, int n, double *lo, double *hi, bool snap) {
    double a = INFINITY, b = -INFINITY;
    for (int i = 0; v && i < n; i++)
        if (isfinite(v[i])) a = fmin(a, v[i]), b = fmax(b, v[i]);
    if (a > b) a = 0, b = 1;
    if (a == b) {
        double pad = a != 0 ? fabs(a) * 0.1 : 1;
        a -= pad, b += pad;
    }
    if (snap) {
        double step = nice_step(b - a, 5);
        a = floor(a / step + 1e-9) * step, b = ceil(b / step - 1e-9) * step;
    }
    *lo = a, *hi = b;
}

void plot_layout(const double *step, const double *loss, const double *lr, int n, PlotPanel panels[2]) {
    double xmin, xmax;
    data_range(step, n, &xmin, &xmax, false);
    panels[0] = (PlotPanel){LEFT, LOSS_TOP, RIGHT, LOSS_BOTTOM, xmin, xmax, 0, 1};
    panels[1] = (PlotPanel){LEFT, LR_TOP, RIGHT, LR_BOTTOM, xmin, xmax, 0, 1};
    data_range(loss, n, &panels[0].ymin, &panels[0].ymax, true);
    data_range(lr, n, &panels[1].ymin, &panels[1].ymax, true);
}

static int px(const PlotPanel *p, double x) { return p->x0 + (int)lround((x - p->xmin) / (p->xmax - p->xmin) * (p->x1 - p->x0)); }
static int py(const PlotPanel *p, double y) { return p->y1 - (int)lround((y - p->ymin) / (p->ymax - p->ymin) * (p->y1 - p->y0)); }

// A tick label: fixed point with as many decimals as the spacing needs, or
// d.de-N for very small or large values, with the digits the spacing needs
// next to the axis's largest magnitude (so 2.0e-5 and 5.0e-6 alike).
static void format_tick(double v, double step, double largest, char *buf, size_t size) {
    if (fabs(v) < step * 1e-6) {
        snprintf(buf, size, "0");
        return;
    }
    if (step < 1e-3 || largest >= 1e5) {
        int digits = (int)fmax(0, fmin(3, floor(log10(largest) + 1e-9) - floor(log10(step) + 1e-9)));
        char tmp[48];
        snprintf(tmp, sizeof tmp, "%.*e", digits, v);
        char *e = strchr(tmp, 'e');
        int exp = atoi(e + 1);  // e-05 -> e-5, e+06 -> e6
        snprintf(e, sizeof tmp - (size_t)(e - tmp), "e%d", exp);
        snprintf(buf, size, "%s", tmp);
    } else {
        snprintf(buf, size, "%.*f", (int)fmax(0, -floor(log10(step) + 1e-9)), v);
    }
}

static void clip_put(Canvas *cv, const PlotPanel *p, int x, int y, const unsigned char c[3]) {
    if (x >= p->x0 && x <= p->x1 && y >= p->y0 && y <= p->y1) put(cv, x, y, c);
}

// A 2-pixel line (Bresenham, each point a 2x2 block from its top-left), clipped to the panel.
static void line(Canvas *cv, const PlotPanel *p, int x0, int y0, int x1, int y1, const unsigned char c[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) clip_put(cv, p, x0 + a, y0 + b, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

static void curve(Canvas *cv, const PlotPanel *p, const double *x, const double *y, int n, const unsigned char c[3]) {
    int have = 0, lx = 0, ly = 0;
    for (int i = 0; y && i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {  // a gap
            have = 0;
            continue;
        }
        int cx = px(p, x[i]), cy = py(p, y[i]);
        bool next = i + 1 < n && isfinite(x[i + 1]) && isfinite(y[i + 1]);
        if (have) line(cv, p, lx, ly, cx, cy, c);
        else if (!next) rect(cv, cx - 2, cy - 2, cx + 2, cy + 2, c);  // an isolated point
        have = 1, lx = cx, ly = cy;
    }
}

static void panel(Canvas *cv, const PlotPanel *p, const char *title, const unsigned char title_rgb[3], bool x_labels) {
    char label[48];
    double ys = nice_step(p->ymax - p->ymin, 5), xs = nice_step(p->xmax - p->xmin, 8);
    for (double v = ceil(p->ymin / ys - 1e-9) * ys; v <= p->ymax + ys * 1e-9; v += ys) {
        int y = py(p, v);
        rect(cv, p->x0, y, p->x1, y, GRID);
        rect(cv, p->x0 - 5, y, p->x0 - 1, y, INK);
        format_tick(v, ys, fmax(fabs(p->ymin), fabs(p->ymax)), label, sizeof label);
        text(cv, p->x0 - 9 - text_width(label), y - 7, label, INK);
    }
    for (double v = ceil(p->xmin / xs - 1e-9) * xs; v <= p->xmax + xs * 1e-9; v += xs) {
        int x = px(p, v);
        rect(cv, x, p->y0, x, p->y1, GRID);
        rect(cv, x, p->y1 + 1, x, p->y1 + 5, INK);
        if (x_labels) {
            format_tick(v, xs, fmax(fabs(p->xmin), fabs(p->xmax)), label, sizeof label);
            text(cv, x - text_width(label) / 2, p->y1 + 10, label, INK);
        }
    }
    rect(cv, p->x0, p->y0, p->x1, p->y0, INK), rect(cv, p->x0, p->y1, p->x1, p->y1, INK);
    rect(cv, p->x0, p->y0, p->x0, p->y1, INK), rect(cv, p->x1, p->y0, p->x1, p->y1, INK);
    text(cv, p->x0, p->y0 - 20, title, title_rgb);
}

// ---- PNG

static int write_png(const char *path, const Canvas *cv) {
    AtomicFile af;
    int rc = atomic_open(&af, path);
    if (rc != VLM_OK) return rc;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        atomic_abort(&af);
        return vlm_fail(VLM_ERR_FAIL, path, NULL, "PNG encoding failed");
    }
    png_init_io(png, af.fp);
    png_set_IHDR(png, info, PLOT_WIDTH, PLOT_HEIGHT, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < PLOT_HEIGHT; y++) png_write_row(png, cv->rgb + (size_t)y * PLOT_WIDTH * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (ferror(af.fp)) {
        int rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "write failed");
        atomic_abort(&af);
        return rc;
    }
    return atomic_commit(&af);
}

int plot_training_png(const char *path, const double *step, const double *loss, const double *lr, int n) {
    if (n < 0 || (n > 0 && (!step || !loss))) return vlm_fail(VLM_ERR_INPUT, path, NULL, "no series to plot");
    Canvas cv = {malloc((size_t)PLOT_WIDTH * PLOT_HEIGHT * 3)};
    if (!cv.rgb) return vlm_fail(VLM_ERR_FAIL, path, NULL, "out of memory");
    rect(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1, WHITE);
    PlotPanel p[2];
    plot_layout(step, loss, lr, n, p);
    panel(&cv, &p[0], "loss", PLOT_LOSS_RGB, false);
    panel(&cv, &p[1], "learning rate", PLOT_LR_RGB, true);
    curve(&cv, &p[0], step, loss, n, PLOT_LOSS_RGB);
    curve(&cv, &p[1], step, lr, n, PLOT_LR_RGB);
    text(&cv, (LEFT + RIGHT - text_width("step")) / 2, LR_BOTTOM + 34, "step", INK);
    int rc = write_png(path, &cv);
    free(cv.rgb);
    return rc;
}
