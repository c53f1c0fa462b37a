// Evaluation: SRCC / PLCC against scipy, Q-Bench's prompts and answer rule,
// and `vlm eval score | mcq` and `vlm generate` end to end on a tiny model,
// cross-checked against `vlm forward`.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "eval/metrics.h"
#include "eval/qbench.h"
#include "formats/safetensors.h"
#include "test_util.h"

#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define IMAGES VLM_SOURCE_DIR "/tests/fixtures/image"

static double *doubles(const json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    double *v = malloc(sizeof(double) * (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) v[i] = json_number_value(json_array_get(arr, i));
    return v;
}

static void assert_close(double got, double want, const char *what, const char *name) {
    double tol = 1e-12 * fmax(1.0, fabs(want));
    ck_assert_msg(fabs(got - want) <= tol, "%s %s: got %.17g, scipy %.17g", name, what, got, want);
}

// every case of tests/fixtures/eval/metrics.json (tools/make_eval_fixtures.py, scipy)
START_TEST(metrics_match_scipy) {
    json_t *root = fixture_json("eval/metrics.json");
    ck_assert_ptr_nonnull(root);
    const json_t *cases = json_object_get(root, "cases");
    ck_assert_int_ge(json_array_size(cases), 10);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *k = json_array_get(cases, c);
        const char *name = json_string_value(json_object_get(k, "name"));
        size_t n, m, nr;
        double *x = doubles(json_object_get(k, "x"), &n), *y = doubles(json_object_get(k, "y"), &m);
        double *want_ranks = doubles(json_object_get(k, "ranks_x"), &nr), *ranks = malloc(sizeof(double) * n);
        ck_assert_int_eq(n, m);
        ck_assert_int_eq(metric_ranks(x, n, ranks), VLM_OK);
        for (size_t i = 0; i < n; i++) ck_assert_msg(ranks[i] == want_ranks[i], "%s rank %zu", name, i);
        const char *keys[2] = {"spearman", "pearson"};
        for (int f = 0; f < 2; f++) {
            double r;
            int rc = f == 0 ? metric_spearman(x, y, n, &r) : metric_pearson(x, y, n, &r);
            const json_t *want = json_object_get(k, keys[f]);
            if (json_is_null(want)) {  // scipy's nan: constant input
                ck_assert_msg(rc == VLM_ERR_INPUT && isnan(r), "%s %s: want NaN and an error", name, keys[f]);
                ck_assert_msg(strstr(vlm_last_error(), "constant") != NULL, "%s", vlm_last_error());
            } else {
                ck_assert_msg(rc == VLM_OK, "%s %s: %s", name, keys[f], vlm_last_error());
                assert_close(r, json_number_value(want), keys[f], name);
            }
        }
        free(x), free(y), free(ranks), free(want_ranks);
    }
    json_decref(root);
}
END_TEST

START_TEST(metrics_undefined_inputs) {
    double x[3] = {1, 2, 3}, y[3] = {2, 1, NAN}, r = 0;
    ck_assert_int_eq(metric_pearson(x, x, 1, &r), VLM_ERR_INPUT);
    ck_assert(isnan(r));
    ck_assert_msg(strstr(vlm_last_error(), "at least 2") != NULL, "%s", vlm_last_error());
    ck_assert_int_eq(metric_spearman(x, x, 0, &r), VLM_ERR_INPUT);
    ck_assert_int_eq(metric_spearman(x, y, 3, &r), VLM_ERR_INPUT);
    ck_assert(isnan(r));
    ck_assert_msg(strstr(vlm_last_error(), "value 2 is not finite") != NULL, "%s", vlm_last_error());
    ck_assert_int_eq(metric_pearson(x, x, 2, &r), VLM_OK);
    ck_assert(r == 1.0);
    ck_assert(isnan(metric_accuracy(0, 0)));
    ck_assert(metric_accuracy(3, 4) == 0.75);
}
END_TEST

// upstream: `if correct_choice in outputs` (case-sensitive substring)
START_TEST(mcq_answer_rule) {
    ck_assert(mcq_is_correct("A", 'A'));
    ck_assert(mcq_is_correct("A.", 'A'));
    ck_assert(mcq_is_correct("B. Poor", 'B'));
    ck_assert(mcq_is_correct("The answer is C", 'C'));
    ck_assert(mcq_is_correct("Answer: B", 'A'));  // upstream's rule counts this too
    ck_assert(!mcq_is_correct("b", 'B'));
    ck_assert(!mcq_is_correct("", 'A'));
    ck_assert(!mcq_is_correct("D", 'C'));
}
END_TEST

START_TEST(qbench_prompts) {
    StrBuf s = {0};
    const Template *owl = template_find("mplug_owl2"), *v1 = template_find("v1");
    ck_assert_int_eq(score_prompt(owl, QBENCH_SCORE_QUERY, &s), VLM_OK);
    ck_assert_str_eq(s.data, "USER: <|image|>Rate the quality of the image. ASSISTANT:");
    str_free(&s);
    ck_assert_int_eq(score_prompt(v1, QBENCH_SCORE_QUERY, &s), VLM_OK);
    ck_assert_str_eq(s.data, "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                             "helpful, detailed, and polite answers to the user's questions. USER: <image>\nRate the "
                             "quality of the image. ASSISTANT:");
    str_free(&s);
    char *cands[3] = {"Yes", "No", "Maybe"};
    McqItem it = {.question = "Is it blurry?", .candidates = cands, .n_candidates = 3, .correct = 1};
    ck_assert_int_eq(mcq_message(owl, &it, &s), VLM_OK);
    ck_assert_str_eq(s.data, "<|image|>Is it blurry?\nA. Yes\nB. No\nC. Maybe\nAnswer with the option's letter from "
                             "the given choices directly.\n");
    str_free(&s);
    ck_assert_int_eq(mcq_message(owl, &it, &s), VLM_OK);  // and the whole prompt, as upstream's conv.get_prompt()
    StrBuf full = {0};
    ck_assert_int_eq(chat_prompt(owl, s.data, &full), VLM_OK);
    ck_assert_str_eq(full.data, "USER: <|image|>Is it blurry?\nA. Yes\nB. No\nC. Maybe\nAnswer with the option's letter "
                                "from the given choices directly.\n ASSISTANT:");
    str_free(&full);
    str_free(&s);
    ck_assert_int_eq(mcq_message(v1, &it, &s), VLM_OK);
    ck_assert_str_eq(s.data, "<image>\nIs it blurry?\nAnswer with the option's letter from the given choices directly.\n"
                             "A. Yes\nB. No\nC. Maybe\n");
    str_free(&s);
    ck_assert_int_eq(chat_prompt(template_find("plain"), "<image>x", &s), VLM_OK);
    ck_assert_str_eq(s.data, "<image>x\n");
    str_free(&s);
    // LLaMA-2: " good" 1781 and " poor" 6460, the ids upstream hard-codes
    Tokenizer tok;
    ck_assert_int_eq(tokenizer_load(&tok, LLAMA2), VLM_OK);
    int32_t good, poor;
    ck_assert_int_eq(qbench_word_id(&tok, "good", &good), VLM_OK);
    ck_assert_int_eq(qbench_word_id(&tok, "poor", &poor), VLM_OK);
    ck_assert_int_eq(good, 1781);
    ck_assert_int_eq(poor, 6460);
    ck_assert_int_eq(qbench_word_id(&tok, "qwertyuiopzx", &good), VLM_ERR_INPUT);
    // upstream's tokenizer_image_token on the A3 prompt, as run under its pins (mplug_owl2.md 10.1): the
    // chunk "USER: " ends in a lone 29871, the next chunk has its own dummy prefix (▁R ate)
    static const int32_t a3[] = {1, 3148, 1001, 29901, 29871, -200, 390, 403, 278, 11029, 310, 278, 1967, 29889, 319,
                                 1799, 9047, 13566, 29901};
    const char *prompt = "USER: <|image|>Rate the quality of the image. ASSISTANT:";
    IdBuf ids = {0};
    ck_assert_int_eq(tokenize_image_prompt(&tok, prompt, strlen(prompt), "<|image|>", &ids, NULL), VLM_OK);
    ck_assert_int_eq((int)ids.len, (int)(sizeof a3 / sizeof *a3));
    for (size_t i = 0; i < ids.len; i++) ck_assert_msg(ids.data[i] == a3[i], "token %zu: %d, upstream %d", i, ids.data[i], a3[i]);
    ids_free(&ids);
    tokenizer_free(&tok);
}
END_TEST

START_TEST(qbench_inputs_checked) {
    McqItem *items;
    size_t n;
    const char *bad = temp_file("[{\"img_path\": \"a.jpg\", \"question\": \"q\", \"candidates\": [\"x\", \"y\"], \"correct_ans\": \"x\"},"
                                " {\"img_path\": \"b.jpg\", \"question\": \"q\", \"candidates\": [\"x\", \"y\"], \"correct_ans\": \"z\"}]");
    ck_assert_int_eq(mcq_load(bad, &items, &n), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "record 1: \"correct_ans\" 'z' is none of the candidates") != NULL, "%s",
                  vlm_last_error());
    ck_assert_msg(strstr(vlm_last_error(), bad) != NULL, "%s", vlm_last_error());
    const char *good = temp_file("[{\"img_path\": \"a.jpg\", \"question\": \"q\", \"candidates\": [\"x\", \"y\"], "
                                 "\"correct_ans\": \"y\", \"type\": 0, \"concern\": \"blur\", \"id\": 7}]");
    ck_assert_int_eq(mcq_load(good, &items, &n), VLM_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(items[0].correct, 1);
    ck_assert_str_eq(items[0].type, "0 (yes-or-no)");
    ck_assert_str_eq(items[0].concern, "blur");
    ck_assert_str_eq(items[0].id, "7");
    mcq_items_free(items, n);
    ScoreItem *s;
    ck_assert_int_eq(score_load(temp_file("[{\"img_path\": \"a.jpg\", \"gt_score\": \"3.5\"}, {\"image\": \"b\", \"score\": 2}]"),
                                &s, &n), VLM_OK);
    ck_assert(n == 2 && s[0].gt == 3.5 && s[1].gt == 2 && strcmp(s[1].image, "b") == 0);
    score_items_free(s, n);
    ck_assert_int_eq(score_load(temp_file("[{\"image\": \"a.jpg\"}]"), &s, &n), VLM_ERR_INPUT);
    ck_assert_msg(strstr(vlm_last_error(), "record 0") != NULL, "%s", vlm_last_error());
}
END_TEST

// ---------------------------------------------------------------------------
// end to end on tiny_gqa widened to LLaMA-2's 32000 ids. Embedding row r is
// tiny_gqa's row r % 101. The LM head keeps rows 0..100, gives " good" (1781)
// and " poor" (6460) 1.01 x rows 90 and 27 (whose logits are positive for
// every prompt and image here), and zeros elsewhere: logit 0 exactly, so the
// two are among `vlm forward --top 110`'s lines with their logits.

#define WIDE_V 32000

static void make_wide_model(char *dir) {
    ck_assert_ptr_nonnull(mkdtemp(dir));
    json_error_t e;
    json_t *cfg = json_load_file(VLM_SOURCE_DIR "/tests/fixtures/model/tiny_gqa/config.json", 0, &e);
    ck_assert_ptr_nonnull(cfg);
    json_object_set_new(json_object_get(cfg, "text_config"), "vocab_size", json_integer(WIDE_V));
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ck_assert_int_eq(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);
    SafetensorsFile f;
    ck_assert_int_eq(safetensors_open(&f, VLM_SOURCE_DIR "/tests/fixtures/model/tiny_gqa/model.safetensors"), VLM_OK);
    TensorInfo *infos = calloc((size_t)f.count, sizeof *infos);
    const void **datas = calloc((size_t)f.count, sizeof *datas);
    float *wide[2] = {NULL, NULL};
    int n_wide = 0;
    for (int i = 0; i < f.count; i++) {
        infos[i] = f.tensors[i];
        datas[i] = safetensors_tensor_data(&f, i);
        bool embed = strstr(infos[i].name, "embed_tokens") != NULL, head = strstr(infos[i].name, "lm_head") != NULL;
        if (embed || head) {
            int64_t rows = infos[i].shape[0], H = infos[i].shape[1];
            const float *src = datas[i];
            float *w = calloc((size_t)WIDE_V * H, sizeof(float));
            for (int64_t r = 0; r < WIDE_V; r++) {
                float *row = w + r * H;
                if (embed || r < rows) memcpy(row, src + (r % rows) * H, sizeof(float) * H);
                for (int64_t c = 0; head && (r == 1781 || r == 6460) && c < H; c++)
                    row[c] = 1.01f * src[(r == 1781 ? 90 : 27) * H + c];
            }
            infos[i].shape[0] = WIDE_V;
            tensor_info_sizes(&infos[i]);
            datas[i] = wide[n_wide++] = w;
        }
    }
    ck_assert_int_eq(n_wide, 2);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(safetensors_write(path, infos, (const void *const *)datas, f.count, NULL), VLM_OK);
    safetensors_close(&f);
    free(wide[0]), free(wide[1]), free(infos), free(datas);
}

static char out[1 << 16], err[1 << 16];

// the logit `vlm forward` prints for id, NAN if absent
static double forward_logit(const char *text, int id) {
    char want[32];
    snprintf(want, sizeof want, "\n  %6d  p=", id);
    const char *at = strstr(text, want);
    if (!at) return NAN;
    const char *l = strstr(at, "logit=");
    return l ? strtod(l + 6, NULL) : NAN;
}

static int forward_top1(const char *text) {
    const char *at = strstr(text, "next token:\n");
    return at ? atoi(at + 12) : -1;
}

START_TEST(cli_score_matches_forward) {
    char dir[] = "/tmp/vlm-eval-XXXXXX", args[4096];
    make_wide_model(dir);
    const char *data = temp_file("[{\"image\": \"odd_333x97.jpg\", \"score\": 3.1},"
                                 " {\"img_path\": \"palette_150x100.png\", \"gt_score\": 1.5},"
                                 " {\"image\": \"gray_250x190.jpg\", \"score\": 4.2}]");
    char preds[64];
    snprintf(preds, sizeof preds, "%s/preds.jsonl", dir);
    snprintf(args, sizeof args, "eval score --model %s --tokenizer %s --template v1 --image-folder %s --temperature 1 "
             "--json --out %s %s", dir, LLAMA2, IMAGES, preds, data);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    json_error_t e;
    json_t *summary = json_loads(out, 0, &e);
    ck_assert_msg(summary != NULL, "%s", out);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "good_id")), 1781);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "poor_id")), 6460);
    // per image: the two logits and p(good) from `vlm forward` on the same prompt and image
    char *lines;
    size_t size;
    ck_assert_int_eq(file_read_all(preds, 1 << 20, &lines, &size), VLM_OK);
    const char *images[3] = {"odd_333x97.jpg", "palette_150x100.png", "gray_250x190.jpg"};
    double gt[3] = {3.1, 1.5, 4.2}, score[3];
    char *line = lines;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        json_t *p = json_loads(line, 0, &e);
        ck_assert_msg(p != NULL, "%s", line);
        double lg = json_real_value(json_object_get(p, "logit_good")), lp = json_real_value(json_object_get(p, "logit_poor"));
        score[i] = json_real_value(json_object_get(p, "score"));
        snprintf(args, sizeof args, "forward --model %s --tokenizer %s --image %s/%s --top 110 --prompt "
                 "'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
                 "detailed, and polite answers to the user'\\''s questions. USER: <image>\nRate the quality of the image. "
                 "ASSISTANT:'", dir, LLAMA2, IMAGES, images[i]);
        ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
        double fg = forward_logit(out, 1781), fp = forward_logit(out, 6460);
        ck_assert_msg(lg > 0 && lp > 0, "the widened model needs positive logits for rows 90 and 27 (tiny_gqa changed?)");
        ck_assert_msg(fabs(fg - lg) < 2e-6 && fabs(fp - lp) < 2e-6, "eval %f %f, forward %f %f", lg, lp, fg, fp);
        double want = 1 / (1 + exp(fp - fg));  // softmax over the two, from forward's printed logits
        ck_assert_msg(fabs(score[i] - want) < 1e-5, "image %d: eval %.8f, forward's softmax %.8f", i, score[i], want);
        ck_assert(fabs(score[i] - 1 / (1 + exp(lp - lg))) < 1e-12);
        json_decref(p);
        line = nl + 1;
    }
    free(lines);
    // the summary's SRCC / PLCC are the metrics of (gt, score)
    double srcc, plcc;
    ck_assert_int_eq(metric_spearman(gt, score, 3, &srcc), VLM_OK);
    ck_assert_int_eq(metric_pearson(gt, score, 3, &plcc), VLM_OK);
    ck_assert(fabs(json_real_value(json_object_get(summary, "srcc")) - srcc) < 1e-12);
    ck_assert(fabs(json_real_value(json_object_get(summary, "plcc")) - plcc) < 1e-12);
    json_decref(summary);
    // one image: the correlations are undefined, said so, exit 0
    snprintf(args, sizeof args, "eval score --model %s --tokenizer %s --image-folder %s %s", dir, LLAMA2, IMAGES,
             temp_file("[{\"image\": \"odd_333x97.jpg\", \"score\": 3.1}]"));
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(strstr(out, "SRCC nan") && strstr(err, "at least 2"), "%s\n%s", out, err);
    // a missing image and a corrupt one: errors naming the data file, the record and the image
    const char *missing = temp_file("[{\"image\": \"odd_333x97.jpg\", \"score\": 1}, {\"image\": \"nope.jpg\", \"score\": 2}]");
    snprintf(args, sizeof args, "eval score --model %s --tokenizer %s --image-folder %s %s", dir, LLAMA2, IMAGES, missing);
    ck_assert_int_ne(run_vlm(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_msg(strstr(err, missing) && strstr(err, "record 1") && strstr(err, "nope.jpg"), "%s", err);
    const char *corrupt = temp_file("[{\"image\": \"truncated.jpg\", \"score\": 1}]");
    snprintf(args, sizeof args, "eval score --model %s --tokenizer %s --image-folder %s %s", dir, LLAMA2, IMAGES, corrupt);
    ck_assert_int_eq(run_vlm(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "record 0") && strstr(err, "truncated.jpg"), "%s", err);
    remove_tree(dir);
}
END_TEST

START_TEST(cli_generate_and_mcq) {
    char dir[] = "/tmp/vlm-eval-XXXXXX", args[4096];
    make_wide_model(dir);
    // generate's first token is forward's argmax
    snprintf(args, sizeof args, "generate --model %s --tokenizer %s --template v1 --image %s/odd_333x97.jpg "
             "--prompt 'What is shown?' --max-new-tokens 3 --json", dir, LLAMA2, IMAGES);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    json_error_t e;
    json_t *g = json_loads(out, 0, &e);
    ck_assert_msg(g != NULL, "%s", out);
    const json_t *ids = json_object_get(g, "ids");
    const char *end = json_string_value(json_object_get(g, "end"));
    snprintf(args, sizeof args, "forward --model %s --tokenizer %s --image %s/odd_333x97.jpg --top 1 --prompt "
             "'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
             "detailed, and polite answers to the user'\\''s questions. USER: <image>\nWhat is shown? ASSISTANT:'",
             dir, LLAMA2, IMAGES);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    int top1 = forward_top1(out);
    if (json_array_size(ids) == 0) ck_assert_msg(top1 == 2 && strcmp(end, "eos") == 0, "top1 %d end %s", top1, end);
    else ck_assert_int_eq(json_integer_value(json_array_get(ids, 0)), top1);
    ck_assert(json_array_size(ids) == 3 || strcmp(end, "length") != 0);
    json_decref(g);
    // mcq: each answer is `vlm generate`'s for the same message; correct = upstream's letter rule
    const char *data = temp_file(
        "[{\"img_path\": \"odd_333x97.jpg\", \"question\": \"Is the image blurry?\", \"candidates\": [\"Yes\", \"No\"],"
        "  \"correct_ans\": \"No\", \"type\": 0, \"concern\": 0},"
        " {\"img_path\": \"gray_250x190.jpg\", \"question\": \"How is the lighting?\", \"candidates\": [\"Dim\", \"Bright\", \"Moderate\"],"
        "  \"correct_ans\": \"Dim\", \"type\": 2, \"concern\": 1}]");
    char preds[64];
    snprintf(preds, sizeof preds, "%s/mcq.jsonl", dir);
    snprintf(args, sizeof args, "eval mcq --model %s --tokenizer %s --template v1 --image-folder %s --max-new-tokens 3 "
             "--json --out %s %s", dir, LLAMA2, IMAGES, preds, data);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
    json_t *sum = json_loads(out, 0, &e);
    ck_assert_msg(sum != NULL, "%s", out);
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "total")), 2);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(sum, "by_type"), "2 (how)"));
    ck_assert_ptr_nonnull(json_object_get(json_object_get(sum, "by_concern"), "0 (distortion)"));
    char *lines;
    size_t size;
    ck_assert_int_eq(file_read_all(preds, 1 << 20, &lines, &size), VLM_OK);
    const char *messages[2] = {"Is the image blurry?\nAnswer with the option'\\''s letter from the given choices directly.\nA. Yes\nB. No\n",
                               "How is the lighting?\nAnswer with the option'\\''s letter from the given choices directly.\nA. Dim\nB. Bright\nC. Moderate\n"};
    const char *images[2] = {"odd_333x97.jpg", "gray_250x190.jpg"};
    long n_correct = 0;
    char *line = lines;
    for (int i = 0; i < 2; i++) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        json_t *p = json_loads(line, 0, &e);
        ck_assert_msg(p != NULL, "%s", line);
        const char *response = json_string_value(json_object_get(p, "response"));
        const char *letter = json_string_value(json_object_get(p, "correct_choice"));
        ck_assert_str_eq(letter, i == 0 ? "B" : "A");
        bool ok = json_is_true(json_object_get(p, "correct"));
        ck_assert_int_eq(ok, mcq_is_correct(response, letter[0]));
        n_correct += ok;
        snprintf(args, sizeof args, "generate --model %s --tokenizer %s --template v1 --image %s/%s --max-new-tokens 3 "
                 "--json --prompt '%s'", dir, LLAMA2, IMAGES, images[i], messages[i]);
        ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
        json_t *gen = json_loads(out, 0, &e);
        ck_assert_msg(gen != NULL, "%s", out);
        ck_assert_str_eq(json_string_value(json_object_get(gen, "answer")), response);
        json_decref(gen);
        json_decref(p);
        line = nl + 1;
    }
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "correct")), n_correct);
    ck_assert_int_eq(json_array_size(json_object_get(sum, "failures")), 2 - n_correct);
    free(lines);
    json_decref(sum);
    // a record whose image is missing stops the run, naming the file and the record
    const char *missing = temp_file("[{\"img_path\": \"gone.png\", \"question\": \"q\", \"candidates\": [\"a\", \"b\"], \"correct_ans\": \"a\"}]");
    snprintf(args, sizeof args, "eval mcq --model %s --tokenizer %s --template v1 --image-folder %s %s", dir, LLAMA2, IMAGES, missing);
    ck_assert_int_ne(run_vlm(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_msg(strstr(err, missing) && strstr(err, "record 0") && strstr(err, "gone.png"), "%s", err);
    // usage
    ck_assert_int_eq(run_vlm("eval mcq --model x data.json", out, sizeof out, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "--template NAME is required"), "%s", err);
    ck_assert_int_eq(run_vlm("eval nope", out, sizeof out, err, sizeof err), 2);
    remove_tree(dir);
}
END_TEST

Suite *eval_suite(void) {
    return SUITE("eval", "", 300,
                 metrics_match_scipy,
                 metrics_undefined_inputs,
                 mcq_answer_rule,
                 qbench_prompts,
                 qbench_inputs_checked,
                 cli_score_matches_forward,
                 cli_generate_and_mcq);
}
