// Mean pooling of consecutive groups of rows (OLA-VLM's task tokens pooled
// down to num_task_tokens).
#ifndef VLM_KERNELS_POOL_H
#define VLM_KERNELS_POOL_H

// out (R, C): row r the mean of inp's rows r*group .. r*group+group-1 (inp (R*group, C)),
// summed in row order then divided, as torch's mean
void group_mean_forward(float *out, const float *inp, int R, int group, int C);
// dinp (R*group, C) += dout[r] / group (a parameter's gradient: it accumulates)
void group_mean_backward(float *dinp, const float *dout, int R, int group, int C);

#endif
