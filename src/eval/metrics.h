// Evaluation metrics as Q-Bench computes them with scipy: Spearman's rank
// correlation (SRCC, scipy.stats.spearmanr: Pearson of average ranks, ties
// sharing the mean of their positions), Pearson's linear correlation (PLCC,
// scipy.stats.pearsonr of the raw scores: Q-Bench's A3 notebook and
// Q-Instruct's post_eval_iqa_boost.py fit no logistic curve first), accuracy.
#ifndef VLM_EVAL_METRICS_H
#define VLM_EVAL_METRICS_H

#include <stddef.h>

// Pearson's r of x and y (n values each), computed like scipy: centred
// vectors scaled to unit norm, their dot product clipped to [-1, 1].
// Undefined cases set *r = NaN and return VLM_ERR_INPUT with the reason
// recorded: n < 2, a non-finite value, a constant input (scipy warns
// ConstantInputWarning and returns nan).
int metric_pearson(const double *x, const double *y, size_t n, double *r);
// Spearman's rho: Pearson of the average ranks; the same undefined cases.
int metric_spearman(const double *x, const double *y, size_t n, double *rho);
// scipy.stats.rankdata(x, method="average"): 1-based ranks, ties averaged.
// Returns VLM_ERR_FAIL when out of memory.
int metric_ranks(const double *x, size_t n, double *ranks);
// correct / total; NaN when total is 0.
double metric_accuracy(size_t correct, size_t total);

#endif
