// A training run's curves as a PNG: loss against step in the upper panel,
// learning rate against step in the lower one, with grids and tick labels
// (a built-in 5x7 bitmap font), 800 x 500. Non-finite values are gaps in
// the line. Written atomically (temporary file + rename).
#ifndef VLM_TRAIN_PLOT_H
#define VLM_TRAIN_PLOT_H

#include <stdbool.h>

#define PLOT_WIDTH 800
#define PLOT_HEIGHT 500

// One panel: its pixel rectangle [x0, x1] x [y0, y1] (y down) and the data
// range it shows; data (x, y) lands at column x0 + (x - xmin) / (xmax - xmin)
// * (x1 - x0), row y1 - (y - ymin) / (ymax - ymin) * (y1 - y0), rounded.
typedef struct {
    int x0, y0, x1, y1;
    double xmin, xmax, ymin, ymax;
} PlotPanel;

// The curves' colours (RGB).
extern const unsigned char PLOT_LOSS_RGB[3], PLOT_LR_RGB[3];

// The two panels plot_training_png draws for these series: [0] loss, [1] lr.
void plot_layout(const double *step, const double *loss, const double *lr, int n, PlotPanel panels[2]);

// n points (step[i], loss[i], lr[i]); lr may be NULL (the lower panel stays
// empty). n = 0 gives the empty axes.
int plot_training_png(const char *path, const double *step, const double *loss, const double *lr, int n);

#endif
