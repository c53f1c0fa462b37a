// Training checkpoints: OUTPUT_DIR/checkpoint-STEP, laid out like HF
// Trainer's, so users find what they expect:
//   config.json + model.safetensors   the model in llava-hf layout (loads in
//                                     transformers and in `vlm`)
//   optimizer.safetensors             AdamW's moments of every trained tensor
//                                     (exp_avg.NAME, exp_avg_sq.NAME); or,
//                                     sharded (ZeRO-1 over W ranks), one
//   optimizer.rank-R-of-W.safetensors per rank: its slice of the packed
//                                     moments (exp_avg, exp_avg_sq), the slices
//                                     and the packed order in trainer_state.json
//   trainer_state.json                step, data position, seed, the resolved
//                                     arguments
//   tokenizer and preprocessor files  copied, so the folder is a usable model
// A checkpoint is written into a hidden temporary folder, every file fsync'ed,
// and then renamed into place: a run killed at any moment leaves either the
// whole checkpoint or none, and never damages an earlier one.
#ifndef VLM_TRAIN_TRAIN_CHECKPOINT_H
#define VLM_TRAIN_TRAIN_CHECKPOINT_H

#include <jansson.h>
#include <stdint.h>

#include "model/llava.h"
#include "train/optimizer.h"

typedef struct {
    long step;              // optimizer steps done
    long total_steps;
    uint64_t epoch, index;  // the loader position of the next micro-batch
    uint64_t seed;
    int world;              // the ranks that trained it (1 when the file has no world_size)
} TrainState;

// Writes OUTPUT_DIR/checkpoint-STEP with the optimizer's moments and step
// count; several ranks: every rank calls it (collective). args: the arguments that identify the run (stored in
// trainer_state.json; may be NULL).
// tokenizer: a tokenizer file or folder whose files are copied (may be NULL).
// path receives the checkpoint's folder.
int train_checkpoint_save(const char *output_dir, const LlavaModel *model, const Optimizer *o, const TrainState *st,
                          const json_t *args, const char *tokenizer, char *path, size_t size);
// The files that make a model folder usable beside its weights: a
// tokenizer file (copied as tokenizer.model, the name loaders look for), or a
// folder's tokenizer files and preprocessor_config.json, copied into dir.
int train_copy_model_files(const char *tokenizer, const char *dir);
// Reads trainer_state.json of a checkpoint folder.
int train_checkpoint_read_state(const char *dir, TrainState *st);
// Restores the optimizer's moments (its own slice, from either layout, saved
// by any world size) and step count; a trained tensor missing from the file
// is an error naming it.
int train_checkpoint_read_optimizer(const char *dir, const LlavaModel *model, Optimizer *o);
// The complete checkpoint with the highest step in output_dir, or NULL when
// there is none (a fresh string).
char *train_checkpoint_latest(const char *output_dir);
// Keeps the newest `keep` checkpoints (save_total_limit; 0 keeps all).
int train_checkpoint_rotate(const char *output_dir, int keep);

#endif
