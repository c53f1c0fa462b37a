// `vlm eval mcq | score`: Q-Bench A1 (multiple-choice accuracy) and A3
// (quality score SRCC / PLCC), the protocols in eval/qbench.h.
#include <jansson.h>  // --json and --out
#include <math.h>     // isnan
#include <stdio.h>
#include <stdlib.h>   // strtol, strtod
#include <string.h>   // strcmp

#include "cli/cli.h"
#include "core/error.h"
#include "core/file.h"     // AtomicFile
#include "eval/metrics.h"  // metric_accuracy
#include "eval/qbench.h"

#define FAILURES_SHOWN 20

typedef struct {
    ModelOptions m;
    const char *image_folder, *data, *out, *query;
    int max_new_tokens;
    double temperature;
    bool json;
} EvalArgs;

// one JSON value per line, written atomically
static int write_jsonl(const char *path, json_t *const *lines, size_t n) {
    AtomicFile af;
    int rc = atomic_open(&af, path);
    for (size_t i = 0; rc == VLM_OK && i < n; i++)
        if (json_dumpf(lines[i], af.fp, JSON_COMPACT | JSON_ENSURE_ASCII) != 0 || fputc('\n', af.fp) == EOF)
            rc = vlm_fail_errno(VLM_ERR_FAIL, path, NULL, "write failed");
    if (rc == VLM_OK) return atomic_commit(&af);
    if (af.fp) atomic_abort(&af);
    return rc;
}

static void print_json(json_t *j) {
    char *dump = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17));
    if (dump) puts(dump);
    free(dump);
}

// jansson's reals cannot hold NaN or inf (json_real returns NULL): those are null
static json_t *number_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *categories_json(const McqCategory *c, int n) {
    json_t *o = json_object();
    for (int i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "accuracy", number_or_null(metric_accuracy(c[i].correct, c[i].total)));
        json_object_set_new(e, "correct", json_integer((json_int_t)c[i].correct));
        json_object_set_new(e, "total", json_integer((json_int_t)c[i].total));
        json_object_set_new(o, c[i].name, e);
    }
    return o;
}

static void print_categories(const char *title, const McqCategory *c, int n) {
    printf("by %s:\n", title);
    for (int i = 0; i < n; i++)
        printf("  %-28s %.4f  (%zu/%zu)\n", c[i].name[0] ? c[i].name : "(none)",
               metric_accuracy(c[i].correct, c[i].total), c[i].correct, c[i].total);
}

static int report_mcq(const EvalArgs *a, const McqResults *r) {
    int rc = VLM_OK;
    if (a->out) {
        json_t **lines = calloc(r->n ? r->n : 1, sizeof *lines);
        if (!lines) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
        for (size_t i = 0; i < r->n; i++) {
            const McqItem *it = &r->items[i];
            json_t *c = json_array();
            for (int k = 0; k < it->n_candidates; k++) json_array_append_new(c, json_string(it->candidates[k]));
            char letter[2] = {(char)('A' + it->correct), '\0'};
            lines[i] = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:b}", "id", it->id, "img_path", it->image,
                                 "question", it->question, "candidates", c, "correct_ans", it->candidates[it->correct],
                                 "type", it->type, "concern", it->concern, "response", r->answers[i],
                                 "correct_choice", letter, "correct", r->ok[i]);
        }
        rc = write_jsonl(a->out, lines, r->n);
        for (size_t i = 0; i < r->n; i++) json_decref(lines[i]);
        free(lines);
    }
    if (a->json) {
        json_t *j = json_object(), *fails = json_array();
        for (size_t i = 0; i < r->n; i++)
            if (!r->ok[i]) json_array_append_new(fails, json_integer((json_int_t)i));
        json_object_set_new(j, "accuracy", number_or_null(metric_accuracy(r->correct, r->n)));
        json_object_set_new(j, "correct", json_integer((json_int_t)r->correct));
        json_object_set_new(j, "total", json_integer((json_int_t)r->n));
        json_object_set_new(j, "by_type", categories_json(r->by_type, r->n_type));
        json_object_set_new(j, "by_concern", categories_json(r->by_concern, r->n_concern));
        json_object_set_new(j, "failures", fails);
        print_json(j);
        json_decref(j);
        return rc;
    }
    printf("%zu questions: accuracy %.4f (%zu/%zu)\n", r->n, metric_accuracy(r->correct, r->n), r->correct, r->n);
    print_categories("type", r->by_type, r->n_type);
    print_categories("concern", r->by_concern, r->n_concern);
    size_t n_fail = r->n - r->correct, shown = 0;
    printf("failures: %zu\n", n_fail);
    for (size_t i = 0; i < r->n && shown < FAILURES_SHOWN; i++) {
        if (r->ok[i]) continue;
        const McqItem *it = &r->items[i];
        printf("  record %zu (id %s, %s): correct %c, answered \"%s\"\n", i, it->id, it->image, 'A' + it->correct,
               r->answers[i]);
        shown++;
    }
    if (n_fail > shown) printf("  ... and %zu more%s\n", n_fail - shown, a->out ? " (all in --out)" : "");
    return rc;
}

static int run_mcq(const EvalArgs *a, const Template *tpl) {
    McqItem *items;
    size_t n;
    int rc = mcq_load(a->data, &items, &n);
    if (rc != VLM_OK) return rc;
    Infer s;
    Tokenizer tok;
    rc = cli_open_model(&a->m, &s, &tok);
    if (rc != VLM_OK) {
        mcq_items_free(items, n);
        return rc;
    }
    McqResults r;
    rc = eval_mcq(&s, &tok, tpl, a->image_folder, a->data, items, n, a->max_new_tokens, &r);
    if (rc == VLM_OK) {
        rc = report_mcq(a, &r);
        mcq_results_free(&r);
    }
    tokenizer_free(&tok);
    infer_close(&s);
    return rc;
}

static int report_score(const EvalArgs *a, const ScoreResults *r) {
    int rc = VLM_OK;
    if (a->out) {
        json_t **lines = calloc(r->n ? r->n : 1, sizeof *lines);
        if (!lines) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory");
        for (size_t i = 0; i < r->n; i++)
            lines[i] = json_pack("{s:s, s:o, s:o, s:o, s:o}", "image", r->items[i].image, "gt_score",
                                 number_or_null(r->items[i].gt), "logit_good", number_or_null(r->logit_good[i]),
                                 "logit_poor", number_or_null(r->logit_poor[i]), "score", number_or_null(r->score[i]));
        rc = write_jsonl(a->out, lines, r->n);
        for (size_t i = 0; i < r->n; i++) json_decref(lines[i]);
        free(lines);
    }
    if (a->json) {
        json_t *j = json_pack("{s:I, s:o, s:o, s:I, s:I, s:f}", "images", (json_int_t)r->n, "srcc",
                              number_or_null(r->srcc), "plcc", number_or_null(r->plcc), "good_id", (json_int_t)r->good_id,
                              "poor_id", (json_int_t)r->poor_id, "temperature", a->temperature);
        if (r->srcc_note[0]) json_object_set_new(j, "srcc_note", json_string(r->srcc_note));
        if (r->plcc_note[0]) json_object_set_new(j, "plcc_note", json_string(r->plcc_note));
        print_json(j);
        json_decref(j);
    } else {
        printf("%zu images: SRCC %.4f  PLCC %.4f  (score = p(good) at temperature %g; ' good' %d, ' poor' %d)\n", r->n,
               r->srcc, r->plcc, a->temperature, r->good_id, r->poor_id);
    }
    if (r->srcc_note[0]) fprintf(stderr, "vlm: warning: %s\n", r->srcc_note);
    if (r->plcc_note[0]) fprintf(stderr, "vlm: warning: %s\n", r->plcc_note);
    return rc;
}

static int run_score(const EvalArgs *a, const Template *tpl) {
    ScoreItem *items;
    size_t n;
    int rc = score_load(a->data, &items, &n);
    if (rc != VLM_OK) return rc;
    Infer s;
    Tokenizer tok;
    rc = cli_open_model(&a->m, &s, &tok);
    if (rc != VLM_OK) {
        score_items_free(items, n);
        return rc;
    }
    ScoreResults r;
    rc = eval_score(&s, &tok, tpl, a->image_folder, a->data, a->query, a->temperature, items, n, &r);
    if (rc == VLM_OK) {
        rc = report_score(a, &r);
        score_results_free(&r);
    }
    tokenizer_free(&tok);
    infer_close(&s);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "mcq") != 0 && strcmp(argv[1], "score") != 0))
        return cli_usage_error("eval", "expected `eval mcq` or `eval score`");
    bool mcq = strcmp(argv[1], "mcq") == 0;
    EvalArgs a = {.max_new_tokens = 512, .temperature = 100, .query = QBENCH_SCORE_QUERY};
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        bool v = i + 1 < argc;
        if (cli_model_option(&a.m, true, argc, argv, &i)) continue;
        if (strcmp(s, "--image-folder") == 0 && v) a.image_folder = argv[++i];
        else if (strcmp(s, "--out") == 0 && v) a.out = argv[++i];
        else if (strcmp(s, "--json") == 0) a.json = true;
        else if (!mcq && strcmp(s, "--prompt") == 0 && v) a.query = argv[++i];
        else if (!mcq && strcmp(s, "--temperature") == 0 && v) {
            char *end;
            a.temperature = strtod(argv[++i], &end);
            if (*end || !(a.temperature > 0)) return cli_usage_error("eval", "--temperature needs a positive number");
        } else if (mcq && strcmp(s, "--max-new-tokens") == 0 && v) {
            long n = cli_count(argv[++i]);
            if (n < 0) return cli_usage_error("eval", "--max-new-tokens needs a positive number");
            a.max_new_tokens = (int)n;
        } else if (s[0] == '-') return cli_usage_error("eval", "unknown option '%s' for eval %s", s, argv[1]);
        else if (!a.data) a.data = s;
        else return cli_usage_error("eval", "one DATA.json only");
    }
    if (!a.m.model) return cli_usage_error("eval", "--model DIR is required");
    if (!a.data) return cli_usage_error("eval", "DATA.json is required");
    if (mcq && !a.m.template_name) return cli_usage_error("eval", "--template NAME is required for eval mcq");
    const char *name = a.m.template_name ? a.m.template_name : "mplug_owl2";
    const Template *tpl = template_find(name);
    if (!tpl) return cli_usage_error("eval", "unknown template '%s' (known: %s)", name, template_names());
    return cli_report(mcq ? run_mcq(&a, tpl) : run_score(&a, tpl));
}
