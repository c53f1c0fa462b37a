// Dataset validation, see check.h.
#include "data/check.h"

#include <errno.h>   // errno
#include <stdio.h>   // fopen
#include <stdlib.h>  // free
#include <string.h>  // strstr

#include "core/alloc.h"
#include "core/error.h"
#include "image/image.h"
#include "text/conversation.h"

static const char *const NAMES[PROBLEM_COUNT] = {
    "invalid_json", "schema", "placeholders", "image_missing", "image_format", "image_decode", "render", "truncated", "mismatch",
};

const char *problem_name(Problem p) { return NAMES[p]; }
bool problem_is_error(Problem p) { return p < PROBLEM_TRUNCATED; }

// The record being checked: what an example names.
typedef struct {
    const char *file;
    size_t record;
    const char *id;
} Where;

static void add(CheckReport *r, Problem p, const Where *w, const char *reason) {
    size_t k = r->counts[p]++;
    if (k >= CHECK_EXAMPLES) return;
    snprintf(r->examples[p][k].file, sizeof r->examples[p][k].file, "%s", w->file);
    r->examples[p][k].record = w->record;
    snprintf(r->examples[p][k].id, sizeof r->examples[p][k].id, "%s", w->id);
    snprintf(r->examples[p][k].reason, sizeof r->examples[p][k].reason, "%s", reason);
}

static size_t count_occurrences(const char *s, const char *needle) {
    size_t n = 0, len = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)); p += len) n++;
    return n;
}

// Exists, is JPEG/PNG/GIF by its first bytes and (unless quick) decodes.
static void check_image(const DatasetFile *f, const Conversation *c, const Where *w, bool quick, CheckReport *r) {
    char *path = dataset_image_path(f, c->image);
    if (!path) return;
    char why[512];
    unsigned char head[8] = {0};
    size_t n = 0;
    FILE *fp = fopen(path, "rb");
    int open_errno = fp ? 0 : errno;
    if (fp) {
        n = fread(head, 1, sizeof head, fp);
        fclose(fp);
    }
    ImageFormat format = image_sniff(head, n);
    if (!fp) {
        // "not found" only when it is not there (a folder without read permission is another problem)
        if (open_errno == ENOENT) snprintf(why, sizeof why, "%s: not found", path);
        else snprintf(why, sizeof why, "%s: cannot open: %s", path, strerror(open_errno));
        add(r, PROBLEM_IMAGE_MISSING, w, why);
    } else if (format == IMAGE_UNKNOWN) {
        snprintf(why, sizeof why, "%s: not a JPEG, PNG or GIF file", path);
        add(r, PROBLEM_IMAGE_FORMAT, w, why);
    } else {
        if (format == IMAGE_GIF) r->gif_images++;
        Image im;
        if (!quick && image_decode_file(path, &im) != VLM_OK) {
            add(r, PROBLEM_IMAGE_DECODE, w, vlm_last_error());
        } else if (!quick) {
            if (!r->images_decoded++) {
                r->width_min = r->width_max = im.width;
                r->height_min = r->height_max = im.height;
            }
            if (im.width < r->width_min) r->width_min = im.width;
            if (im.width > r->width_max) r->width_max = im.width;
            if (im.height < r->height_min) r->height_min = im.height;
            if (im.height > r->height_max) r->height_max = im.height;
            image_free(&im);
        }
    }
    free(path);
}

static void check_tokens(const CheckOptions *opt, const Conversation *c, const Where *w, CheckReport *r) {
    Rendered out;
    char where[32];
    snprintf(where, sizeof where, "record %zu", w->record);
    // one render with upstream's truncation: its mismatch depends on it, and full_len is the length before
    if (template_render(opt->tpl, opt->tok, c, opt->max_len, MASK_UPSTREAM, &out, where) != VLM_OK) {
        add(r, PROBLEM_RENDER, w, vlm_last_error());
        return;
    }
    size_t n = out.full_len;
    r->tokens_records++;
    r->tokens_sum += (double)n;
    if (n > r->tokens_max) r->tokens_max = n;
    if (opt->max_len > 0 && n > (size_t)opt->max_len) {
        char why[96];
        snprintf(why, sizeof why, "%zu tokens, truncated to %d", n, opt->max_len);
        add(r, PROBLEM_TRUNCATED, w, why);
    }
    if (out.mismatch) add(r, PROBLEM_MISMATCH, w, "upstream's length arithmetic disagrees with the tokens");
    rendered_free(&out);
}

Problem conversation_problem(const Conversation *c, char *why, size_t size) {
    // roles alternate human/gpt (a leading gpt turn is dropped by upstream) and no message is empty
    int first = c->turns[0].role == ROLE_GPT ? 1 : 0;
    if (first >= c->n_turns) return snprintf(why, size, "no human message"), PROBLEM_SCHEMA;
    for (int k = first; k < c->n_turns; k++) {
        if ((int)c->turns[k].role != (k - first) % 2)
            return snprintf(why, size, "roles do not alternate human, gpt, ..."), PROBLEM_SCHEMA;
        if (c->turns[k].text[0] == '\0') return snprintf(why, size, "an empty message"), PROBLEM_SCHEMA;
    }
    size_t placeholders = 0;
    for (int k = 0; k < c->n_turns; k++)
        placeholders += count_occurrences(c->turns[k].text, "<image>") + count_occurrences(c->turns[k].text, "<|image|>");
    if (c->image && placeholders != 1)
        return snprintf(why, size, "an image and %zu placeholders (one expected)", placeholders), PROBLEM_PLACEHOLDERS;
    if (!c->image && placeholders)
        return snprintf(why, size, "no image but %zu placeholders", placeholders), PROBLEM_PLACEHOLDERS;
    return PROBLEM_COUNT;
}

int data_check_file(const DatasetFile *f, const CheckOptions *opt, CheckReport *r) {
    for (size_t i = 0; i < f->count; i++) {
        r->records++;
        json_t *rec;
        char where[32];
        snprintf(where, sizeof where, "record %zu", i);
        if (dataset_file_record(f, i, &rec) != VLM_OK) {
            add(r, PROBLEM_INVALID_JSON, &(Where){f->path, i, ""}, vlm_last_error());
            continue;
        }
        Conversation c;
        int parsed = conversation_parse(&c, rec, where);
        Where w = {f->path, i, c.id};
        if (parsed != VLM_OK) {
            add(r, PROBLEM_SCHEMA, &w, vlm_last_error());
            conversation_free(&c);
            json_decref(rec);
            continue;
        }
        char why[128];
        Problem p = conversation_problem(&c, why, sizeof why);
        if (p != PROBLEM_COUNT) add(r, p, &w, why);
        if (c.image) {
            r->with_image++;
            check_image(f, &c, &w, opt->quick, r);
        } else {
            r->text_only++;
        }
        if (opt->tpl && p != PROBLEM_SCHEMA) check_tokens(opt, &c, &w, r);
        conversation_free(&c);
        json_decref(rec);
    }
    return VLM_OK;
}
