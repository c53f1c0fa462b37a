// Chat templates: a record becomes (input_ids, labels) exactly as the
// upstream preprocess functions make them (before image expansion):
//   plain       LLaVA preprocess_plain (pretraining captions)
//   v1          LLaVA preprocess_v1 with conv_vicuna_v1 (alias vicuna_v1)
//   mplug_owl2  mPLUG-Owl2 preprocess_v1 with conv_mplug_owl2 (no system prompt)
//   llava_llama_3  OLA-VLM preprocess_llama_3 with conv_llava_llama_3 (MPT style)
//   llava_phi_3    OLA-VLM preprocess_phi_3 with conv_llava_phi_3 (MPT style)
// One IMAGE_TOKEN_INDEX (-200) stands for each image placeholder; masked
// labels are IGNORE_INDEX (-100). Both placeholder dialects, <image> and
// <|image|>, are accepted and converted to the template's own.
//
// Labels. Upstream masks each round by counting tokens of its pieces
// (len(tokens(instruction)) - 2); when its count disagrees with the real
// length it declares a "tokenization mismatch" and masks the WHOLE sample.
// We always compute that arithmetic and report the mismatch; by default
// (MASK_SPANS) the labels come from where each token actually lies in the
// prompt (a token is learned when it overlaps an answer), which equals
// upstream wherever upstream does not mismatch. MASK_UPSTREAM reproduces
// upstream bit for bit, mismatches included.
#ifndef VLM_TEXT_TEMPLATE_H
#define VLM_TEXT_TEMPLATE_H

#include <stdbool.h>

#include "text/conversation.h"
#include "text/ids.h"
#include "text/tokenizer.h"

#define IMAGE_TOKEN_INDEX (-200)
#define IGNORE_INDEX (-100)

typedef enum { TPL_PLAIN, TPL_TWO, TPL_MPT } TemplateStyle;

typedef struct {
    const char *name;
    TemplateStyle style;
    const char *system;       // prepended with sep (TWO); NULL for none (TWO_NO_SYS)
    const char *roles[2];     // human, gpt
    const char *sep, *sep2;
    const char *placeholder;  // "<image>" or "<|image|>"
    // bytes at the end of the gpt role that upstream's "- 2" counts as answer
    // (TWO: the space of "ASSISTANT: "; llama-3: the "\n\n" after the header)
    int answer_lead;
    const char *pad_token;    // added by upstream's train() when the tokenizer has no pad (NULL: use unk)
    // tokens upstream subtracts from round_len and instruction_len for rounds
    // after the first: LLaVA's preprocess_v1 1 (only with a non-legacy
    // tokenizer), OLA-VLM's preprocess_phi_3 2 (always)
    int later_round_delta;
    bool delta_needs_nonlegacy;
} Template;

typedef enum { MASK_SPANS, MASK_UPSTREAM } MaskPolicy;

typedef struct {
    IdBuf input_ids, labels;
    bool mismatch;     // upstream's length arithmetic disagrees with the tokens
    size_t full_len;   // tokens before truncation
    size_t item_len;   // tokens of upstream's __getitem__ input_ids: the text-only path's tokenizer
                       // truncation applied, the collator's cut not (what HF's group_by_length measures)
    bool truncated;    // longer than max_len before truncation
    int n_images;      // IMAGE_TOKEN_INDEX entries
} Rendered;

const Template *template_find(const char *name);  // NULL if unknown
// A comma-separated list of the known names, for messages.
const char *template_names(void);

// Renders one record. max_len <= 0: no truncation. Errors name `where`.
int template_render(const Template *tpl, const Tokenizer *tok, const Conversation *conv, int max_len,
                    MaskPolicy policy, Rendered *out, const char *where);
void rendered_free(Rendered *r);

// LLaVA's tokenizer_image_token: text split at each placeholder, chunks
// tokenized (BOS kept on the first only), one IMAGE_TOKEN_INDEX between them.
// spans may be NULL.
int tokenize_image_prompt(const Tokenizer *tok, const char *text, size_t len, const char *placeholder, IdBuf *ids,
                          SpanBuf *spans);

// Gives the tokenizer the pad token upstream's train() adds for this template
// when it has none (OLA-VLM adds "<pad>" to Llama-3), as a new special token.
int template_prepare_tokenizer(const Template *tpl, Tokenizer *tok);

#endif
