// Q-Bench evaluation (recipes.md section 3), following the scripts the
// recipes' numbers come from (Q-Future/Q-Instruct eval_scripts/ and
// Q-Future/Q-Bench leaderboards/IQA_outputs/eval.ipynb):
//
// A1 multiple choice (LLVisionQA). Input: Q-Bench's llvisionqa json, a list of
//   {"img_path", "question", "candidates": [...], "correct_ans", "type", "concern"}.
//   The user message (eval_scripts/mplug_owl_2/eval_qbench_mcq.py at HEAD, since
//   de19120 "update to correct prompts"; template mplug_owl2):
//   <|image|>QUESTION + "\n" + "A. c0\n" "B. c1\n" ... + "Answer with the option's
//   letter from the given choices directly.\n" (its first version had no newline
//   after the question and one before the instruction);
//   other templates (eval_scripts/llava_v1.5/eval_qbench_mcq.py):
//   <image>\nQUESTION + "\nAnswer with ... directly.\n" + "A. c0\n" ...
//   then the template's prompt with an empty assistant turn, greedy decoding to
//   EOS / the stop string. Correct iff the correct option's letter occurs in the
//   stripped answer (upstream: `if correct_choice in outputs`, a case-sensitive
//   substring test; so "A" in "Answer: B" counts, as upstream counts it).
//
// A3 quality score (IQA). Input: a list of {"image" | "img_path", "score" | "gt_score"}.
//   Prompt: query "Rate the quality of the image." as the user message
//   (mplug_owl2: "<|image|>Rate the quality of the image.", giving
//   "USER: <|image|>Rate the quality of the image. ASSISTANT:"; LLaVA-1.5 v1:
//   "<image>\nRate ..." after the system prompt; eval_image_quality*.py), one
//   forward, the last position's logits of " good" and " poor" (LLaMA-2 1781 and
//   6460, upstream's hard-coded ids; here looked up with the tokenizer).
//   score = exp(lg/T) / (exp(lg/T) + exp(lp/T)); Q-Bench's eval.ipynb and
//   Q-Instruct's post_eval_iqa_boost.py use T = 100 (the default here); T = 1 is
//   the plain softmax. SRCC is the same for every T; PLCC is not.
//   SRCC / PLCC: scipy's spearmanr / pearsonr of (gt, score), metrics.h.
#ifndef VLM_EVAL_QBENCH_H
#define VLM_EVAL_QBENCH_H

#include <stdbool.h>
#include <stddef.h>

#include "eval/generate.h"
#include "eval/infer.h"
#include "text/template.h"
#include "text/tokenizer.h"

#define QBENCH_MCQ_INSTRUCTION "Answer with the option's letter from the given choices directly."
#define QBENCH_SCORE_QUERY "Rate the quality of the image."

// ---- A1: multiple choice

typedef struct {
    char *image, *question, **candidates;
    int n_candidates;
    int correct;            // index of correct_ans in candidates
    char *type, *concern;   // category labels as text ("" when absent)
    char *id;               // "id" when present, else the record index
} McqItem;

typedef struct {
    char *name;
    size_t correct, total;
} McqCategory;

typedef struct {
    McqItem *items;
    size_t n;
    char **answers;          // (n) the stripped answers
    bool *ok;                // (n)
    size_t correct;
    McqCategory *by_type, *by_concern;
    int n_type, n_concern;
} McqResults;

// Reads a llvisionqa json; every error names the file and the record.
int mcq_load(const char *path, McqItem **items, size_t *n);
void mcq_items_free(McqItem *items, size_t n);
// The user message for a template (with its image placeholder), see above.
int mcq_message(const Template *tpl, const McqItem *it, StrBuf *out);
// Upstream's rule: the letter occurs in the answer.
bool mcq_is_correct(const char *answer, char letter);
// Q-Bench's names for integer type / concern codes ("yes-or-no", ...); NULL if none.
const char *mcq_type_name(int code);
const char *mcq_concern_name(int code);

// Runs every item (images from image_folder, or as written when NULL). A
// missing or corrupt image stops the run with its file and record. Takes
// ownership of items.
int eval_mcq(Infer *s, const Tokenizer *tok, const Template *tpl, const char *image_folder, const char *where,
             McqItem *items, size_t n, int max_new_tokens, McqResults *out);
void mcq_results_free(McqResults *r);

// ---- A3: quality score

typedef struct {
    char *image;
    double gt;
} ScoreItem;

typedef struct {
    ScoreItem *items;
    size_t n;
    double *logit_good, *logit_poor, *score;  // (n)
    int32_t good_id, poor_id;
    double srcc, plcc;                        // NaN when undefined
    char srcc_note[256], plcc_note[256];      // why, when NaN
} ScoreResults;

int score_load(const char *path, ScoreItem **items, size_t *n);
void score_items_free(ScoreItem *items, size_t n);
// The id of word as it follows another word (" good": LLaMA-2 1781); an
// error when it is not one token.
int qbench_word_id(const Tokenizer *tok, const char *word, int32_t *id);
// The prompt text for the score: the template's chat prompt around query.
int score_prompt(const Template *tpl, const char *query, StrBuf *out);
// Takes ownership of items.
int eval_score(Infer *s, const Tokenizer *tok, const Template *tpl, const char *image_folder, const char *where,
               const char *query, double temperature, ScoreItem *items, size_t n, ScoreResults *out);
void score_results_free(ScoreResults *r);

// ---- shared

// Upstream's conv.get_prompt() after append_message(user, message) and
// append_message(assistant, None): TWO "[system sep]USER: message sep ASSISTANT:",
// MPT "system sep ROLE0 message sep ROLE1", plain "message sep".
int chat_prompt(const Template *tpl, const char *message, StrBuf *out);
// The image placeholder before text as upstream's eval scripts put it:
// mplug_owl2 "<|image|>" + text, the LLaVA templates "<image>\n" + text.
int image_message(const Template *tpl, const char *text, StrBuf *out);

#endif
