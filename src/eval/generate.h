// Greedy decoding with a LLaVA model, as upstream's model.generate(do_sample
// False, num_beams 1) with its KeywordsStoppingCriteria: each step appends
// the argmax of the next-token logits (the first one on ties, like
// torch.argmax), until EOS, the stop string, or max_new_tokens. No KV cache:
// each step runs the whole sequence again.
#ifndef VLM_EVAL_GENERATE_H
#define VLM_EVAL_GENERATE_H

#include <stdbool.h>

#include "eval/infer.h"
#include "text/template.h"
#include "text/tokenizer.h"

typedef struct {
    int max_new_tokens;
    const char *stop;  // stop string (upstream's stop_str, e.g. "</s>"), NULL for none
} GenerateOptions;

typedef struct {
    IdBuf ids;       // the new tokens, EOS excluded
    StrBuf raw;      // their decoded text
    char *answer;    // raw stripped, a trailing stop string removed, stripped again (upstream's `outputs`)
    bool eos, stopped;  // ended by EOS / by the stop string (else by max_new_tokens)
} Generation;

// prompt: n ids with n_images image placeholders (s->pixels holds the image).
int generate_greedy(Infer *s, const Tokenizer *tok, const int32_t *prompt, int n, int n_images,
                    const GenerateOptions *o, Generation *out);
void generation_free(Generation *g);

// The stop string upstream's eval scripts use for a template: conv.sep2 for
// the TWO styles, conv.sep otherwise.
const char *template_stop_string(const Template *tpl);

#endif
