// Helpers shared by the unit tests.
#ifndef VLM_TEST_UTIL_H
#define VLM_TEST_UTIL_H

#include <check.h>

#include "formats/safetensors.h"
#include "model/llava.h"
#include "train/step.h"

// Absolute path of a file under tests/fixtures (static buffer, one at a time).
const char *fixture(const char *relative);
// Runs build/vlm with ARGS (a shell-quoted string) and stdin from /dev/null;
// captures stdout and stderr (each up to 64 KB, NUL-terminated) and returns
// the exit code.
int run_vlm(const char *args, char *out, size_t out_size, char *err, size_t err_size);
// The same with stdin read from the file input.
int run_vlm_input(const char *args, const char *input, char *out, size_t out_size, char *err, size_t err_size);
int count_dir_entries(const char *dir);
// Writes text to path (the test fails when it cannot).
void write_text_file(const char *path, const char *text);
// DIR/NAME: `vlm init` of the LLaVA config JSON (written to DIR/NAME.json) from seed.
void init_model(const char *dir, const char *name, const char *config_json, int seed);
// Writes text to a fresh temporary file; the path stays valid for the next 8 calls.
const char *temp_file(const char *text);
// Parses a JSON file under tests/fixtures (jansson json_t *, the caller's).
void *fixture_json(const char *relative);
// Reads tests/fixtures/formats/expected.json once (jansson json_t *).
void *expected_json(void);

// A tensor of a reference file (fails the test when it is missing); info may be NULL.
const void *ref_tensor(const SafetensorsFile *f, const char *name, const TensorInfo **info);
// A fixture's batch as the model tools write it (batch.input_ids, .labels, .lengths, .pixel_values).
typedef struct {
    const int32_t *ids, *labels;
    int lengths[8], B, T, n_images;
    const float *pixels;
} RefBatch;
void read_ref_batch(const SafetensorsFile *ref, RefBatch *b);

// Every parameter's gradient in m->grad against the reference's "grad.NAME":
// within 1e-4 of its norm, + 1e-6 (a key projection's bias has gradient zero
// in exact arithmetic, so both sides hold rounding noise of ~1e-7 there).
void check_gradients(const LlavaModel *m, const SafetensorsFile *ref, const char *label);

// dir/to: a plain LLM folder (architecture's names and keys, e.g. LlamaForCausalLM or
// Phi3ForCausalLM) holding the LLM of the llava-hf model at dir/from, with the tokenizer file
// copied as tokenizer.model: the LLM a LLaVA-style pretraining starts from.
void write_llm_folder(const char *dir, const char *from, const char *to, const char *tokenizer, const char *architecture);
// `vlm train`'s inputs: DIR/base (a fresh tiny LLaVA + LLaMA-2's tokenizer) and DIR/data.json
// (36 records, image and text-only, over the shared photos; record 17 says `poison` when not NULL).
void make_run_inputs(const char *dir, const char *poison);
// The "loss" of each line of a metrics.jsonl as written (strings compare bit-exact values); their count.
int read_losses(const char *path, char losses[][32], int max);
// The fixture's samples, collated like LLaVA's DataCollatorForSupervisedDataset (right padding).
typedef struct {
    int32_t ids[8 * 16], labels[8 * 16];
    int lengths[8];
    float pixels[8 * 3 * 16 * 16];
    MicroBatch mb;
} Collated;
// Samples (indices of sample.N.input_ids / labels / pixel_values in ref) into c; -1 when one is
// missing or longer than 16 (collate_samples, for code outside a libcheck test: the worker).
int collate_samples(const SafetensorsFile *ref, const int *samples, int n, Collated *c);
void collate(const SafetensorsFile *ref, const int *samples, int n, Collated *c);

// One suite of one case holding the given tests; tags "" for none, timeout 0 for the default.
Suite *suite_of(const char *name, const char *tags, int timeout_s, const TTest *const *tests, size_t n);
#define SUITE(name, tags, timeout_s, ...)                                                  \
    suite_of(name, tags, timeout_s, (const TTest *const[]){__VA_ARGS__},                 \
             sizeof((const TTest *const[]){__VA_ARGS__}) / sizeof(const TTest *))

Suite *core_suite(void);
Suite *dtype_suite(void);
Suite *safetensors_suite(void);
Suite *pickle_suite(void);
Suite *torch_bin_suite(void);
Suite *torch_save_suite(void);
Suite *llava_recipe_suite(void);
Suite *qinstruct_recipe_suite(void);
Suite *checkpoint_suite(void);
Suite *cli_suite(void);
Suite *text_suite(void);
Suite *data_suite(void);
Suite *image_suite(void);
Suite *loader_suite(void);
Suite *kernels_suite(void);
Suite *model_suite(void);
Suite *plot_suite(void);
Suite *demo_suite(void);
Suite *train_suite(void);
Suite *eval_suite(void);
Suite *trainer_suite(void);
Suite *dist_suite(void);
Suite *dist_env_suite(void);
Suite *lora_suite(void);
Suite *lora_files_suite(void);
Suite *phi3_suite(void);
Suite *teachers_vit_suite(void);
Suite *teacher_seg_suite(void);
Suite *convnext_suite(void);
Suite *convnext_files_suite(void);
Suite *teachers_vit_files_suite(void);
Suite *teacher_seg_files_suite(void);
// One rank of the HF Trainer comparison (test_dist.c), run by mpirun from that test.
int dist_trainer_worker(const char *out_path);
Suite *ola_suite(void);
Suite *ola_targets_suite(void);
Suite *owl2_suite(void);
Suite *build_suite(void);
Suite *outputs_suite(void);
Suite *config_suite(void);
Suite *config_memory_suite(void);
Suite *json_suite(void);

#endif
