// What a training run will hold, printed before the first step and checked
// against the machine: a run that cannot fit stops there, with the numbers
// and what would make it fit.
#ifndef VLM_TRAIN_MEMORY_PLAN_H
#define VLM_TRAIN_MEMORY_PLAN_H

#include <stddef.h>

#include "model/weights.h"
#include "train/args.h"

typedef struct {
    size_t resident;     // already resident: the program, the loaded parameters, tokenizer, dataset index
    size_t params;       // of which the parameters (float32)
    size_t grads;        // one gradient per parameter
    size_t moments;      // AdamW's two moments per trained parameter
    size_t activations;  // one micro-batch at per_device_train_batch_size x model_max_length
    size_t workspace;    // the matrix products' (OpenBLAS's packing)
    size_t batches;      // the loader's micro-batch buffers (gradient_accumulation_steps + 1 of them)
    size_t total;        // resident + everything still to allocate
    size_t machine;      // the memory this process may use: RAM, the cgroup's memory.max, RLIMIT_AS
} TrainMemory;

// The plan for a run of a over params (loaded, not yet planned into a model).
TrainMemory train_memory_plan(const TrainArgs *a, const LlavaParams *params);
// Prints the plan to stderr; when the total exceeds the machine's memory,
// fails (VLM_ERR_INPUT) with the numbers and the settings that would fit.
int train_memory_check(const TrainArgs *a, const LlavaParams *params);

#endif
