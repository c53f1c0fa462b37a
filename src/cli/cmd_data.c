// `vlm data`: dataset tools. `render` shows what training sees for each
// record: input_ids and labels before image expansion, one JSON line each.
#include <jansson.h>  // the dataset and the output lines
#include <stdlib.h>   // strtol
#include <string.h>   // strcmp

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/json.h"
#include "data/check.h"
#include "data/mix.h"
#include "text/template.h"

static void print_ids(FILE *out, const char *key, const IdBuf *ids) {
    fprintf(out, "\"%s\":[", key);
    for (size_t i = 0; i < ids->len; i++) fprintf(out, i ? ",%d" : "%d", ids->data[i]);
    fputc(']', out);
}

static int render_all(const Template *tpl, const Tokenizer *tok, const char *path, int max_len, MaskPolicy policy) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, 0, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
    if (!json_is_array(root)) {
        json_decref(root);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "expected a JSON array of records");
    }
    size_t i, mismatches = 0, truncated = 0;
    json_t *record;
    int rc = VLM_OK;
    json_array_foreach(root, i, record) {
        char where[64];
        snprintf(where, sizeof where, "record %zu", i);
        Conversation conv;
        Rendered r;
        rc = conversation_parse(&conv, record, where);
        if (rc == VLM_OK) rc = template_render(tpl, tok, &conv, max_len, policy, &r, where);
        if (rc != VLM_OK) {
            conversation_free(&conv);
            vlm_fail_context(rc, "%s", path);
            break;
        }
        mismatches += r.mismatch;
        truncated += r.truncated;
        char *id = json_dumps(json_object_get(record, "id") ? json_object_get(record, "id") : json_null(), JSON_ENCODE_ANY);
        printf("{\"id\":%s,", id ? id : "null");
        free(id);
        print_ids(stdout, "input_ids", &r.input_ids);
        fputc(',', stdout);
        print_ids(stdout, "labels", &r.labels);
        fputs("}\n", stdout);
        rendered_free(&r);
        conversation_free(&conv);
    }
    if (rc == VLM_OK)
        fprintf(stderr, "rendered %zu records with template %s: %zu tokenization mismatches (%s), %zu truncated to %d\n",
                json_array_size(root), tpl->name, mismatches,
                policy == MASK_SPANS ? "labelled by spans" : "masked wholly, as upstream", truncated, max_len);
    json_decref(root);
    return rc;
}

static int data_render(int argc, char **argv) {
    const char *tpl_name = NULL, *tok_path = NULL, *data = NULL;
    long max_len = 2048;
    MaskPolicy policy = MASK_SPANS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--template") == 0 && has_value) tpl_name = argv[++i];
        else if (strcmp(a, "--tokenizer") == 0 && has_value) tok_path = argv[++i];
        else if (strcmp(a, "--max-len") == 0 && has_value) {
            char *end;
            max_len = strtol(argv[++i], &end, 10);
            if (*end || max_len < 0) return cli_usage_error("data", "--max-len needs a non-negative integer");
        } else if (strcmp(a, "--mask-policy") == 0 && has_value) {
            const char *v = argv[++i];
            if (strcmp(v, "spans") == 0) policy = MASK_SPANS;
            else if (strcmp(v, "upstream") == 0) policy = MASK_UPSTREAM;
            else return cli_usage_error("data", "--mask-policy is spans or upstream, not '%s'", v);
        } else if (a[0] == '-') return cli_usage_error("data", "unknown option '%s'", a);
        else if (data) return cli_usage_error("data", "one DATA.json only");
        else data = a;
    }
    if (!tpl_name || !tok_path || !data) return cli_usage_error("data", "render needs --template, --tokenizer and DATA.json");
    const Template *tpl = template_find(tpl_name);
    if (!tpl) return cli_usage_error("data", "unknown template '%s' (known: %s)", tpl_name, template_names());
    Tokenizer tok;
    int rc = tokenizer_load(&tok, tok_path);
    if (rc == VLM_OK) rc = template_prepare_tokenizer(tpl, &tok);
    if (rc == VLM_OK) {
        rc = render_all(tpl, &tok, data, (int)max_len, policy);
        tokenizer_free(&tok);
    }
    return cli_report(rc);
}

// vlm data mix -o OUT.json [--shuffle SEED] [--seed N] [--placeholder P]
//              [--ratio R] [--prefix DIR/] IN.json ... (--ratio / --prefix apply to the inputs after them)
static int data_mix_cmd(int argc, char **argv) {
    MixInput inputs[256];
    int n = 0;
    MixOptions opt = {0};
    const char *out = NULL, *prefix = NULL;
    double ratio = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        char *end;
        if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_value) out = argv[++i];
        else if ((strcmp(a, "--shuffle") == 0 || strcmp(a, "--seed") == 0) && has_value) {
            opt.seed = strtoull(argv[++i], &end, 10);
            if (*end) return cli_usage_error("data", "%s needs a non-negative integer", a);
            if (strcmp(a, "--shuffle") == 0) opt.shuffle = true;
        } else if (strcmp(a, "--placeholder") == 0 && has_value) {
            opt.placeholder = argv[++i];
            if (strcmp(opt.placeholder, "<image>") != 0 && strcmp(opt.placeholder, "<|image|>") != 0)
                return cli_usage_error("data", "--placeholder is <image> or <|image|>");
        } else if (strcmp(a, "--ratio") == 0 && has_value) {
            ratio = strtod(argv[++i], &end);
            if (*end || !(ratio >= 0)) return cli_usage_error("data", "--ratio needs a number >= 0");
        } else if (strcmp(a, "--prefix") == 0 && has_value) prefix = argv[++i];
        else if (a[0] == '-') return cli_usage_error("data", "unknown option '%s'", a);
        else if (n == 256) return cli_usage_error("data", "at most 256 inputs");
        else inputs[n++] = (MixInput){a, ratio, prefix};
    }
    if (!out || n == 0) return cli_usage_error("data", "mix needs -o OUT.json and at least one input");
    MixReport report;
    int rc = data_mix(inputs, n, &opt, out, &report);
    if (rc == VLM_OK) {
        for (int i = 0; i < n && i < 64; i++)
            fprintf(stderr, "%s: %zu records read, %zu written\n", inputs[i].path, report.read[i], report.written[i]);
        fprintf(stderr, "wrote %s: %zu records%s", out, report.total, opt.shuffle ? ", shuffled" : "");
        if (opt.placeholder) fprintf(stderr, ", %zu messages converted to %s", report.placeholders_converted, opt.placeholder);
        fputc('\n', stderr);
    }
    return cli_report(rc);
}

static void print_check_text(const CheckReport *r, const char *files, const CheckOptions *opt) {
    printf("%s: %zu records (%zu with an image, %zu text-only", files, r->records, r->with_image, r->text_only);
    if (r->gif_images) printf(", %zu GIF images", r->gif_images);
    printf(")\n");
    if (r->images_decoded)
        printf("images: %zu decoded, width %d..%d, height %d..%d\n", r->images_decoded, r->width_min, r->width_max,
               r->height_min, r->height_max);
    else if (opt->quick && r->with_image)
        printf("images: not decoded (--quick: existence and format only)\n");
    for (int pass = 0; pass < 2; pass++) {
        bool errors = pass == 0, header = false;
        for (int p = 0; p < PROBLEM_COUNT; p++) {
            if (problem_is_error((Problem)p) != errors || !r->counts[p]) continue;
            if (!header) printf("%s:\n", errors ? "errors" : "warnings");
            header = true;
            printf("  %s: %zu\n", problem_name((Problem)p), r->counts[p]);
            for (size_t k = 0; k < r->counts[p] && k < CHECK_EXAMPLES; k++)
                printf("    %s record %zu%s%s: %s\n", r->examples[p][k].file, r->examples[p][k].record,
                       r->examples[p][k].id[0] ? ", id " : "", r->examples[p][k].id, r->examples[p][k].reason);
        }
    }
    if (opt->tpl && r->tokens_records)
        printf("tokens (%s, %zu records): max %zu, mean %.1f\n", opt->tpl->name, r->tokens_records, r->tokens_max,
               r->tokens_sum / (double)r->tokens_records);
}

static void print_check_json(const CheckReport *r) {
    json_t *problems = json_object();
    for (int p = 0; p < PROBLEM_COUNT; p++) {
        json_t *examples = json_array();
        for (size_t k = 0; k < r->counts[p] && k < CHECK_EXAMPLES; k++)
            json_array_append_new(examples, json_pack("{s:s, s:I, s:s, s:s}", "file", r->examples[p][k].file, "record",
                                                      (json_int_t)r->examples[p][k].record,
                                                      "id", r->examples[p][k].id, "reason", r->examples[p][k].reason));
        json_object_set_new(problems, problem_name((Problem)p),
                            json_pack("{s:I, s:b, s:o}", "count", (json_int_t)r->counts[p], "error",
                                      problem_is_error((Problem)p), "examples", examples));
    }
    json_t *root = json_pack("{s:I, s:I, s:I, s:I, s:o}", "records", (json_int_t)r->records, "with_image",
                             (json_int_t)r->with_image, "text_only", (json_int_t)r->text_only, "gif_images",
                             (json_int_t)r->gif_images, "problems", problems);
    if (r->images_decoded)
        json_object_set_new(root, "images", json_pack("{s:I, s:[i,i], s:[i,i]}", "decoded", (json_int_t)r->images_decoded,
                                                      "width", r->width_min, r->width_max, "height", r->height_min,
                                                      r->height_max));
    if (r->tokens_records)
        json_object_set_new(root, "tokens", json_pack("{s:I, s:I, s:f}", "records", (json_int_t)r->tokens_records, "max",
                                                      (json_int_t)r->tokens_max, "mean",
                                                      r->tokens_sum / (double)r->tokens_records));
    json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

// vlm data check [--image-folder DIR] [--tokenizer T --template NAME [--max-len N]] [--quick] [--json] DATA.json...
static int data_check_cmd(int argc, char **argv) {
    const char *folder = NULL, *tok_path = NULL, *tpl_name = NULL;
    long max_len = 2048;
    bool as_json = false, quick = false;
    const char *paths[256], *folders[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        char *end;
        if (strcmp(a, "--image-folder") == 0 && has_value) folder = argv[++i];
        else if (strcmp(a, "--tokenizer") == 0 && has_value) tok_path = argv[++i];
        else if (strcmp(a, "--template") == 0 && has_value) tpl_name = argv[++i];
        else if (strcmp(a, "--max-len") == 0 && has_value) {
            max_len = strtol(argv[++i], &end, 10);
            if (*end || max_len < 0) return cli_usage_error("data", "--max-len needs a non-negative integer");
        } else if (strcmp(a, "--json") == 0) as_json = true;
        else if (strcmp(a, "--quick") == 0) quick = true;
        else if (a[0] == '-') return cli_usage_error("data", "unknown option '%s'", a);
        else if (n == 256) return cli_usage_error("data", "at most 256 files");
        else { paths[n] = a; folders[n++] = folder; }  // --image-folder applies to the files after it
    }
    if (n == 0) return cli_usage_error("data", "check needs DATA.json");
    if (!tok_path != !tpl_name) return cli_usage_error("data", "--tokenizer and --template go together");
    CheckOptions opt = {NULL, NULL, (int)max_len, quick};
    Tokenizer tok;
    int rc = VLM_OK;
    if (tpl_name) {
        opt.tpl = template_find(tpl_name);
        if (!opt.tpl) return cli_usage_error("data", "unknown template '%s' (known: %s)", tpl_name, template_names());
        rc = tokenizer_load(&tok, tok_path);
        if (rc == VLM_OK) rc = template_prepare_tokenizer(opt.tpl, &tok);
        if (rc != VLM_OK) return cli_report(rc);
        opt.tok = &tok;
    }
    CheckReport *report = vlm_calloc(1, sizeof *report);
    char names[1024] = "";
    for (int i = 0; report && i < n && rc == VLM_OK; i++) {
        DatasetFile f;
        rc = dataset_file_open(&f, paths[i], folders[i]);
        if (rc == VLM_OK) rc = data_check_file(&f, &opt, report);
        dataset_file_close(&f);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", paths[i]);
    }
    if (!report) rc = VLM_ERR_FAIL;
    if (rc == VLM_OK) {
        if (as_json) print_check_json(report);
        else print_check_text(report, names, &opt);
        size_t errors = 0;
        for (int p = 0; p < PROBLEM_COUNT; p++) errors += problem_is_error((Problem)p) ? report->counts[p] : 0;
        if (errors) rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "%zu records have errors (see the report)", errors);
    }
    free(report);
    if (opt.tok) tokenizer_free(&tok);
    return cli_report(rc);
}

int cmd_data(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("data", "missing subcommand");
    if (strcmp(argv[1], "render") == 0) return data_render(argc - 1, argv + 1);
    if (strcmp(argv[1], "mix") == 0) return data_mix_cmd(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0) return data_check_cmd(argc - 1, argv + 1);
    return cli_usage_error("data", "unknown subcommand '%s'", argv[1]);
}
