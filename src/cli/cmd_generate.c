// `vlm generate`: greedy decoding from a prompt (and image) with a LLaVA model.
#include <jansson.h>  // --json output
#include <stdlib.h>   // atoi, free
#include <string.h>   // strcmp, strstr, strlen

#include "cli/cli.h"
#include "core/error.h"
#include "eval/generate.h"
#include "eval/qbench.h"  // chat_prompt, image_message

typedef struct {
    ModelOptions m;
    const char *prompt, *image;
    int max_new_tokens;
    bool json;
} GenerateArgs;

// the prompt text: the template's chat prompt around the message (the image
// placeholder put before it as upstream's eval scripts do, unless written),
// or without a template the text itself (an image without placeholder first)
static int build_text(const GenerateArgs *a, const Template *tpl, StrBuf *out) {
    const char *placeholder = tpl ? tpl->placeholder : "<image>";
    bool has_placeholder = strstr(a->prompt, "<image>") || strstr(a->prompt, "<|image|>");
    StrBuf msg = {0};
    int rc;
    if (a->image && !has_placeholder && tpl) rc = image_message(tpl, a->prompt, &msg);
    else if (a->image && !has_placeholder) rc = str_append(&msg, "<image>\n", 8);
    else rc = VLM_OK;
    if (rc == VLM_OK && !(a->image && !has_placeholder && tpl)) rc = str_append(&msg, a->prompt, strlen(a->prompt));
    // the other placeholder dialect is converted to the template's
    if (rc == VLM_OK) {
        const char *other = strcmp(placeholder, "<image>") == 0 ? "<|image|>" : "<image>";
        char *fixed = str_replace_all(msg.data, other, placeholder);
        if (!fixed) rc = VLM_ERR_FAIL;
        else {
            rc = tpl ? chat_prompt(tpl, fixed, out) : str_append(out, fixed, strlen(fixed));
            free(fixed);
        }
    }
    str_free(&msg);
    return rc;
}

static int run_generate(const GenerateArgs *a, const Template *tpl) {
    Infer s;
    Tokenizer tok;
    int rc = cli_open_model(&a->m, &s, &tok);
    if (rc != VLM_OK) return rc;
    StrBuf text = {0};
    IdBuf ids = {0};
    int n_images = 0;
    rc = build_text(a, tpl, &text);
    if (rc == VLM_OK) rc = tokenize_image_prompt(&tok, text.data, text.len, tpl ? tpl->placeholder : "<image>", &ids, NULL);
    if (rc == VLM_OK) rc = infer_check_ids(&s, ids.data, ids.len, &n_images);
    if (rc == VLM_OK && n_images && !a->image)
        rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "the prompt has an image placeholder: give --image");
    if (rc == VLM_OK && n_images) rc = infer_load_image(&s, a->image);
    Generation g = {0};
    GenerateOptions o = {a->max_new_tokens, tpl ? template_stop_string(tpl) : NULL};
    if (rc == VLM_OK) rc = generate_greedy(&s, &tok, ids.data, (int)ids.len, n_images, &o, &g);
    if (rc == VLM_OK) {
        const char *end = g.eos ? "eos" : g.stopped ? "stop" : "length";
        if (a->json) {
            json_t *j = json_object(), *arr = json_array();
            for (size_t i = 0; i < g.ids.len; i++) json_array_append_new(arr, json_integer(g.ids.data[i]));
            json_object_set_new(j, "prompt_tokens", json_integer((json_int_t)ids.len));
            json_object_set_new(j, "ids", arr);
            json_object_set_new(j, "text", json_string(g.raw.data ? g.raw.data : ""));
            json_object_set_new(j, "answer", json_string(g.answer));
            json_object_set_new(j, "end", json_string(end));
            char *dump = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
            if (dump) puts(dump);
            free(dump);
            json_decref(j);
        } else {
            printf("%s\n", g.answer);
            fprintf(stderr, "vlm: %zu prompt tokens, %zu new (%s)\n", ids.len, g.ids.len, end);
        }
        generation_free(&g);
    }
    str_free(&text);
    ids_free(&ids);
    tokenizer_free(&tok);
    infer_close(&s);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    GenerateArgs a = {.max_new_tokens = 128};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool v = i + 1 < argc;
        if (cli_model_option(&a.m, true, argc, argv, &i)) continue;
        if (strcmp(s, "--prompt") == 0 && v) a.prompt = argv[++i];
        else if (strcmp(s, "--image") == 0 && v) a.image = argv[++i];
        else if (strcmp(s, "--json") == 0) a.json = true;
        else if (strcmp(s, "--max-new-tokens") == 0 && v) {
            long n = cli_count(argv[++i]);
            if (n < 0) return cli_usage_error("generate", "--max-new-tokens needs a positive number");
            a.max_new_tokens = (int)n;
        } else return cli_usage_error("generate", "unknown option '%s'", s);
    }
    if (!a.m.model) return cli_usage_error("generate", "--model DIR is required");
    if (!a.prompt) return cli_usage_error("generate", "--prompt TEXT is required");
    const Template *tpl = NULL;
    if (a.m.template_name && !(tpl = template_find(a.m.template_name)))
        return cli_usage_error("generate", "unknown template '%s' (known: %s)", a.m.template_name, template_names());
    return cli_report(run_generate(&a, tpl));
}
