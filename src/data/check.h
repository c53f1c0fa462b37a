// Validation of LLaVA-format datasets: the checks `vlm data check` reports
// and training applies to every record before using it.
#ifndef VLM_DATA_CHECK_H
#define VLM_DATA_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "data/dataset.h"
#include "text/conversation.h"
#include "text/template.h"
#include "text/tokenizer.h"

typedef enum {
    // errors: the record cannot be trained on as it is
    PROBLEM_INVALID_JSON,
    PROBLEM_SCHEMA,            // not an object, roles, types, empty messages
    PROBLEM_PLACEHOLDERS,      // image placeholders vs the "image" field disagree
    PROBLEM_IMAGE_MISSING,
    PROBLEM_IMAGE_FORMAT,      // not JPEG, PNG or GIF by its first bytes
    PROBLEM_IMAGE_DECODE,      // truncated or corrupt: Pillow would refuse it too
    PROBLEM_RENDER,            // the template cannot render it
    // warnings: trainable, but not as written
    PROBLEM_TRUNCATED,         // longer than max_len
    PROBLEM_MISMATCH,          // upstream's arithmetic would mask the whole sample
    PROBLEM_COUNT
} Problem;

const char *problem_name(Problem p);
bool problem_is_error(Problem p);

#define CHECK_EXAMPLES 5

typedef struct {
    char file[256];
    size_t record;
    char id[128];         // as long as a record's id
    char reason[2048];    // as long as an error message
} CheckExample;

typedef struct {
    size_t records, text_only, with_image, gif_images;
    size_t counts[PROBLEM_COUNT];
    CheckExample examples[PROBLEM_COUNT][CHECK_EXAMPLES];
    size_t images_decoded;
    int width_min, width_max, height_min, height_max;  // over the decoded images
    size_t tokens_max, tokens_records;  // over the records that were rendered
    double tokens_sum;
} CheckReport;

typedef struct {
    const Template *tpl;    // NULL: no token checks
    const Tokenizer *tok;
    int max_len;
    bool quick;             // images: only existence and format by the first bytes, no decoding
} CheckOptions;

// The checks of one parsed record's content (roles, empty messages,
// placeholders vs "image"): PROBLEM_SCHEMA or PROBLEM_PLACEHOLDERS with the
// reason in why, or PROBLEM_COUNT when it is fine.
Problem conversation_problem(const Conversation *c, char *why, size_t size);

// Checks every record of f (images under f->image_folder) into report.
int data_check_file(const DatasetFile *f, const CheckOptions *opt, CheckReport *report);

#endif
