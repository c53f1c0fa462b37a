// The options shared by the commands that run a model, see cli.h.
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"

bool cli_model_option(ModelOptions *o, bool with_template, int argc, char **argv, int *i) {
    const char *s = argv[*i];
    const char **slot = strcmp(s, "--model") == 0          ? &o->model
                        : strcmp(s, "--vision-tower") == 0 ? &o->vision_tower
                        : strcmp(s, "--tokenizer") == 0    ? &o->tokenizer
                        : with_template && strcmp(s, "--template") == 0 ? &o->template_name
                                                                         : NULL;
    if (strcmp(s, "--pad") == 0) return o->pad = true;
    if (!slot || *i + 1 >= argc) return false;
    *slot = argv[++*i];
    return true;
}

long cli_count(const char *value) {
    char *end;
    long n = strtol(value, &end, 10);
    return *value && !*end && n >= 1 && n <= 1000000 ? n : -1;
}

int cli_open_model(const ModelOptions *o, Infer *s, Tokenizer *tok) {
    int rc = infer_open(s, o->model, o->vision_tower, o->pad);
    if (rc != VLM_OK) return rc;
    rc = tokenizer_load(tok, o->tokenizer ? o->tokenizer : o->model);
    if (rc != VLM_OK) infer_close(s);
    return rc;
}
