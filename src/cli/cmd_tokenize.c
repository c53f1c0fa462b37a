// `vlm tokenize`: JSON strings in, JSON arrays of ids out (one per line), or
// the reverse with --decode. For checking tokenization by hand and in scripts.
#include <jansson.h>  // JSON lines
#include <stdlib.h>   // free
#include <string.h>   // strcmp

#include "cli/cli.h"
#include "core/error.h"
#include "core/json.h"
#include "text/tokenizer.h"

static int encode_line(const Tokenizer *t, json_t *value, int flags, long line_no, FILE *out) {
    if (!json_is_string(value)) return vlm_fail(VLM_ERR_INPUT, "<stdin>", NULL, "line %ld: expected a JSON string", line_no);
    IdBuf ids = {0};
    int rc = tokenizer_encode(t, json_string_value(value), json_string_length(value), flags, &ids);
    if (rc != VLM_OK) {
        ids_free(&ids);
        return vlm_fail_context(rc, "<stdin>: line %ld", line_no);
    }
    fputc('[', out);
    for (size_t i = 0; i < ids.len; i++) fprintf(out, i ? ",%d" : "%d", ids.data[i]);
    fputs("]\n", out);
    ids_free(&ids);
    return VLM_OK;
}

static int decode_line(const Tokenizer *t, json_t *value, long line_no, FILE *out) {
    if (!json_is_array(value)) return vlm_fail(VLM_ERR_INPUT, "<stdin>", NULL, "line %ld: expected a JSON array of ids", line_no);
    IdBuf ids = {0};
    size_t i;
    json_t *v;
    int rc = VLM_OK;
    json_array_foreach(value, i, v) {
        if (!json_is_integer(v)) rc = vlm_fail(VLM_ERR_INPUT, "<stdin>", NULL, "line %ld: item %zu is not an integer", line_no, i);
        else rc = ids_push(&ids, (int32_t)json_integer_value(v));
        if (rc != VLM_OK) break;
    }
    StrBuf text = {0};
    if (rc == VLM_OK) rc = tokenizer_decode(t, ids.data, ids.len, &text);
    if (rc == VLM_OK) {
        json_t *s = json_stringn(text.data ? text.data : "", text.len);
        // decoded byte pieces can form invalid UTF-8: say so rather than print garbage
        char *dump = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        if (!dump) rc = vlm_fail(VLM_ERR_INPUT, "<stdin>", NULL, "line %ld: decoded text is not valid UTF-8", line_no);
        else fprintf(out, "%s\n", dump);
        free(dump);
        json_decref(s);
    } else if (rc != VLM_OK) {
        vlm_fail_context(rc, "<stdin>: line %ld", line_no);
    }
    str_free(&text);
    ids_free(&ids);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    int flags = TOK_ADD_BOS | TOK_SPLIT_SPECIAL, decode = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) path = argv[++i];
        else if (strcmp(argv[i], "--no-bos") == 0) flags &= ~TOK_ADD_BOS;
        else if (strcmp(argv[i], "--no-special") == 0) flags &= ~TOK_SPLIT_SPECIAL;
        else if (strcmp(argv[i], "--decode") == 0) decode = 1;
        else return cli_usage_error("tokenize", "unknown argument '%s'", argv[i]);
    }
    if (!path) return cli_usage_error("tokenize", "missing --tokenizer PATH");
    Tokenizer t;
    int rc = tokenizer_load(&t, path);
    if (rc != VLM_OK) return cli_report(rc);
    char *line = NULL;
    size_t cap = 0;
    long line_no = 0;
    ssize_t n;
    while (rc == VLM_OK && (n = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        json_error_t jerr;
        json_t *value = vlm_json_loadb(line, (size_t)n, JSON_DECODE_ANY, &jerr);
        if (!value) rc = vlm_fail(VLM_ERR_INPUT, "<stdin>", NULL, "line %ld: invalid JSON: %s", line_no, jerr.text);
        else rc = decode ? decode_line(&t, value, line_no, stdout) : encode_line(&t, value, flags, line_no, stdout);
        json_decref(value);
    }
    free(line);
    tokenizer_free(&t);
    return cli_report(rc);
}
