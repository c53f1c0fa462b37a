// `vlm forward`: one prompt (and image) through a model (LLaVA, mPLUG-Owl2); prints the
// next-token top-k, for checking a checkpoint by hand.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/error.h"
#include "eval/infer.h"
#include "formats/safetensors.h"
#include "text/template.h"

typedef struct {
    ModelOptions m;
    const char *image, *pixels, *prompt, *ids;
    int top;
} ForwardArgs;

static int parse_ids(const char *list, IdBuf *out) {
    for (const char *p = list; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return vlm_fail(VLM_ERR_INPUT, NULL, "--ids", "expected comma-separated integers");
        if (ids_push(out, (int32_t)v) != VLM_OK) return VLM_ERR_FAIL;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return vlm_fail(VLM_ERR_INPUT, NULL, "--ids", "expected comma-separated integers");
    }
    return VLM_OK;
}

// pixel_values (3, S, S) from --pixels into s->pixels, or from --image
static int load_pixels(const ForwardArgs *a, Infer *s) {
    if (!a->pixels) return infer_load_image(s, a->image);
    int S = s->cfg.vision.image_size;
    SafetensorsFile f;
    int rc = safetensors_open(&f, a->pixels);
    if (rc != VLM_OK) return rc;
    int i = safetensors_find(&f, "pixel_values");
    const TensorInfo *t = i >= 0 ? &f.tensors[i] : NULL;
    if (!t || t->dtype != DT_F32 || t->numel != (uint64_t)3 * S * S)
        rc = vlm_fail(VLM_ERR_INPUT, a->pixels, "pixel_values", "expected F32 with 3 x %d x %d values", S, S);
    else
        memcpy(s->pixels, safetensors_tensor_data(&f, i), sizeof(float) * 3 * S * S);
    safetensors_close(&f);
    return rc;
}

static int run_forward(const ForwardArgs *a) {
    Infer s;
    int rc = infer_open(&s, a->m.model, a->m.vision_tower, a->m.pad);
    if (rc != VLM_OK) return rc;
    Tokenizer tok;
    bool have_tok = false;
    IdBuf ids = {0};
    if (a->ids) {
        rc = parse_ids(a->ids, &ids);
    } else {
        rc = tokenizer_load(&tok, a->m.tokenizer ? a->m.tokenizer : a->m.model);
        have_tok = rc == VLM_OK;
        if (rc == VLM_OK) {
            // either dialect marks the image (mPLUG-Owl2's <|image|>, LLaVA's <image>)
            const char *placeholder = strstr(a->prompt, "<|image|>") ? "<|image|>" : "<image>";
            bool has_placeholder = strstr(a->prompt, placeholder) != NULL;
            size_t n = strlen(a->prompt) + 12;
            char *text = vlm_malloc(n);
            // an image without a placeholder goes first, as LLaVA's preprocess puts it
            if (text) snprintf(text, n, "%s%s", (a->image || a->pixels) && !has_placeholder ? "<image>\n" : "", a->prompt);
            rc = text ? tokenize_image_prompt(&tok, text, strlen(text), placeholder, &ids, NULL) : VLM_ERR_FAIL;
            free(text);
        }
    }
    int n_images = 0;
    if (rc == VLM_OK) rc = infer_check_ids(&s, ids.data, ids.len, &n_images);
    if (rc == VLM_OK && n_images && !a->image && !a->pixels)
        rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "the prompt has an image placeholder: give --image or --pixels");
    if (rc == VLM_OK && n_images) rc = load_pixels(a, &s);
    const float *logits = NULL;
    int seq_len = 0;
    if (rc == VLM_OK) rc = infer_next_logits(&s, ids.data, (int)ids.len, n_images, &logits, &seq_len);
    if (rc == VLM_OK) {
        // softmax of the last position, top k
        int V = s.cfg.text.vocab, k = a->top < V ? a->top : V, F = llava_image_tokens(&s.cfg);
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[v]);
        for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
        int K = ola_task_rows(&s.cfg.ola);
        if (K) printf("%d tokens (%d image features, %d OLA-VLM task tokens); next token:\n", seq_len, n_images * F, n_images * K);
        else printf("%d tokens (%d image features); next token:\n", seq_len, n_images * F);
        unsigned char *taken = vlm_calloc((size_t)V, 1);
        for (int r = 0; taken && r < k; r++) {
            int best = -1;
            for (int v = 0; v < V; v++)
                if (!taken[v] && (best < 0 || logits[v] > logits[best])) best = v;
            taken[best] = 1;
            printf("  %6d  p=%.6f  logit=%.6f", best, exp(logits[best] - mx) / sum, logits[best]);
            if (have_tok) {
                StrBuf str = {0};
                if (tokenizer_decode(&tok, &best, 1, &str) == VLM_OK && str.data) printf("  %s", str.data);
                str_free(&str);
            }
            putchar('\n');
        }
        free(taken);
    }
    infer_close(&s);
    if (have_tok) tokenizer_free(&tok);
    ids_free(&ids);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    ForwardArgs a = {.top = 5};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool v = i + 1 < argc;
        if (cli_model_option(&a.m, false, argc, argv, &i)) continue;
        if (strcmp(s, "--image") == 0 && v) a.image = argv[++i];
        else if (strcmp(s, "--pixels") == 0 && v) a.pixels = argv[++i];
        else if (strcmp(s, "--prompt") == 0 && v) a.prompt = argv[++i];
        else if (strcmp(s, "--ids") == 0 && v) a.ids = argv[++i];
        else if (strcmp(s, "--top") == 0 && v) {
            a.top = atoi(argv[++i]);
            if (a.top <= 0) return cli_usage_error("forward", "--top needs a positive number");
        } else return cli_usage_error("forward", "unknown option '%s'", s);
    }
    if (!a.m.model) return cli_usage_error("forward", "--model DIR is required");
    if (!a.prompt == !a.ids) return cli_usage_error("forward", "give exactly one of --prompt and --ids");
    if (a.image && a.pixels) return cli_usage_error("forward", "give --image or --pixels, not both");
    return cli_report(run_forward(&a));
}
