// The demo's records and evaluation items (conversations.c), used by write.c
// and the tests.
#ifndef VLM_DEMO_CONVERSATIONS_H
#define VLM_DEMO_CONVERSATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/rng.h"
#include "demo/demo.h"

// "Answer with the option's letter from the given choices directly."
extern const char *const DEMO_MCQ_SUFFIX;
// A3's question "Rate the quality of the image.", answered with the single
// word "good" or "poor" (the pathway descriptions end in the sentence form,
// "Thus the quality of the image is good.").
extern const char *const DEMO_RATE_QUESTION;

// Deals 0..k-1 (k = 2, 3 or 4) once each per block of k, in a seeded order;
// also the random source for the wording choices of one file.
typedef struct {
    Rng rng;
    int deck[3][4];
    int used[3];
} DemoBalance;

void demo_balance_init(DemoBalance *b, uint64_t seed, uint64_t stream);
int demo_balance_next(DemoBalance *b, int k);

// A multiple-choice question (options borrowed from static tables or the caller).
typedef struct {
    const char *question;
    const char *options[4];
    int n, correct;
    const char *type;     // "yes-or-no", "what", "how"
    const char *concern;  // "distortion", "other" (exposure, contrast), "content"
} DemoMcq;

// "QUESTION\nAnswer with the option's letter from the given choices directly.\nA. ...\nB. ...\n"
void demo_mcq_prompt(const DemoMcq *m, char *buf, size_t size);

// Training records ({"id", "image", "conversations"}); image NULL for text-only.
json_t *demo_caption_record(const DemoScene *s, const char *id, const char *image);
json_t *demo_high_record(const DemoScene *s, const char *id, const char *image, DemoBalance *b);
json_t *demo_text_only_record(const char *id, DemoBalance *b);
// Appends one image's Q-Instruct-style records to out: a conversation of the
// pathway, a what/how and a yes/no question (the last two open or multiple
// choice) in a seeded order, then the rating alone; returns how many (2).
int demo_qinstruct_records(const DemoScene *s, const char *id, const char *image, DemoBalance *b, json_t *out);

// Q-Bench items: A1 {"img_path", "question", "candidates", "correct_ans", "type", "concern"}
// (the low-level ones also carry "distortion" and "level"), A3 {"img_path", "gt_score"}
// (MOS 1-5, plus "distortion" and "level").
json_t *demo_eval_high_item(const DemoScene *s, const char *image, DemoBalance *b);
json_t *demo_eval_mcq_item(const DemoScene *s, const char *image, DemoBalance *b);
json_t *demo_eval_score_item(const DemoScene *s, const char *image);

#endif
