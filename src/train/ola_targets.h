// `vlm ola targets`: the frozen teachers' embeddings of every image a dataset
// names, written where `--teacher_embeddings DIR` reads them
// (data/teacher_targets.h), before an OLA-VLM PT run. Upstream computes them
// on the fly in each step; precomputing makes PT's steps cost the student
// alone and lets the teachers run once per image, not once per epoch.
//
// Each distinct image (a record's "image", under its file's image folder) is
// decoded once, prepared for every teacher given, run in batches, and its
// targets written in one file, atomically. A file that already holds every
// requested target with its shape is left alone, so an interrupted run
// started again continues where it stopped and a finished one does nothing.
// A missing or corrupt image stops the run with a message naming the data
// file, record and reason (BAD_RECORD_STOP), or with skip_bad is counted,
// named in a warning, and left without a target file (training then stops
// on that record unless it skips bad records too).
#ifndef VLM_TRAIN_OLA_TARGETS_H
#define VLM_TRAIN_OLA_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/dtype.h"
#include "model/config.h"
#include "model/teacher.h"

typedef struct {
    const char *const *data_paths;         // LLaVA-format JSON files (--data_path, repeatable)
    int n_data;
    const char *image_folder;              // --image_folder, for every data file
    const char *out_dir;                   // --teacher_embeddings
    int batch;                             // images per teacher forward
    DType dtype;                           // of the written targets: DT_F32, DT_BF16, DT_F16
    bool skip_bad;                         // --skip_bad_records
    bool quiet;                            // no progress line
} OlaTargetsOptions;

typedef struct {
    size_t records, images;                // records read, distinct images among them
    size_t computed, present, bad;         // written now, already complete, skipped as bad
    double seconds, teacher_seconds[OLA_TASKS];  // wall time; each teacher's forwards
} OlaTargetsReport;

// teachers[t]: task t's teacher, opened (teacher_open) with max_batch >= o->batch;
// ops NULL: task t is not made. The teachers stay open (the caller closes them).
int ola_targets_run(const OlaTargetsOptions *o, Teacher teachers[OLA_TASKS], OlaTargetsReport *r);

#endif
