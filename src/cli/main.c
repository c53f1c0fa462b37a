// vlm: entry point, global options and subcommand dispatch.
#include <stdarg.h>  // va_list
#include <stdlib.h>  // strtol, getenv
#include <string.h>  // strcmp

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "dist/dist.h"

static const Command COMMANDS[] = {
    {"inspect", cmd_inspect, "list the tensors of a checkpoint file or model directory",
     "vlm inspect PATH [--json] [--verify]\n"
     "  PATH      a .safetensors or PyTorch .bin file, an *.index.json, or a model directory\n"
     "  --json    machine-readable output\n"
     "  --verify  read every tensor and count non-finite values (exit 2 if any)\n"},
    {"convert", cmd_convert, "convert a checkpoint (.bin, sharded, safetensors) into one safetensors file",
     "vlm convert PATH OUT.safetensors\n"
     "  PATH      anything `vlm inspect` accepts; tensors are copied unchanged (dtype and values)\n"},
    {"tokenize", cmd_tokenize, "encode JSON strings (one per line on stdin) to token ids, or --decode ids",
     "vlm tokenize --tokenizer PATH [--no-bos] [--no-special] [--decode]\n"
     "  PATH          tokenizer.model (SentencePiece or Llama-3 tiktoken) or a model directory\n"
     "  --no-bos      do not prepend BOS\n"
     "  --no-special  treat special-token literals (\"</s>\", \"<|eot_id|>\") as plain text\n"
     "  --decode      read JSON arrays of ids, write JSON strings\n"},
    {"data", cmd_data, "dataset tools: check, mix, render records to input_ids and labels",
     "vlm data mix -o OUT.json [--shuffle SEED] [--seed N] [--placeholder P] [--ratio R] [--prefix DIR/] IN.json...\n"
     "  the records of every input, in order (like `jq -s add`), written atomically\n"
     "  --shuffle SEED  shuffle the result (seeded, reproducible)\n"
     "  --ratio R       for the inputs after it: 1 all, 0.25 a seeded quarter, 2 twice\n"
     "  --prefix DIR/   for the inputs after it: prepended to \"image\" paths\n"
     "  --placeholder P convert image placeholders to P (<image> or <|image|>), no sed needed\n"
     "vlm data check [--image-folder DIR] [--tokenizer PATH --template NAME [--max-len N]] [--quick] [--json] DATA.json...\n"
     "  every record: JSON, roles, empty messages, placeholders vs \"image\", image file exists, is\n"
     "  JPEG/PNG/GIF and decodes (sizes reported; --quick: first bytes only, no decoding), and with a\n"
     "  tokenizer: length, truncation, upstream's tokenization mismatch.\n"
     "  Counts per problem with the first examples; exit 2 when any record has an error\n"
     "vlm data render --template NAME --tokenizer PATH [--max-len N] [--mask-policy spans|upstream] DATA.json\n"
     "  NAME           plain, v1 (vicuna_v1), mplug_owl2, llava_llama_3, llava_phi_3\n"
     "  --max-len      truncate like upstream's model_max_length (default 2048, 0: none)\n"
     "  --mask-policy  spans (default): labels from where tokens lie; upstream: upstream's\n"
     "                 arithmetic, masking a whole sample on a tokenization mismatch\n"
     "  prints one {\"id\", \"input_ids\", \"labels\"} line per record (image placeholder = -200,\n"
     "  masked label = -100) and the mismatch / truncation counts on stderr\n"},
    {"image", cmd_image, "image tools: preprocess an image into the vision tower's pixel_values",
     "vlm image preprocess (--size N | --config preprocessor_config.json) [--pad] IMAGE OUT.safetensors\n"
     "  decodes IMAGE (JPEG, PNG, GIF first frame) to RGB like Pillow, then CLIP's preprocessing:\n"
     "  shortest edge to N with Pillow's bicubic, centre crop N x N, rescale, normalise (CLIP mean/std\n"
     "  unless the config says otherwise); writes pixel_values, F32 [3, N, N]\n"
     "  --pad     first centre the image on a square of the mean colour (LLaVA image_aspect_ratio pad)\n"
     "  --config  a model's preprocessor_config.json (size, crop, mean, std); --size overrides its size\n"},
    {"forward", cmd_forward, "run a model (LLaVA, mPLUG-Owl2) on a prompt (and image) and print the next-token top-k",
     "vlm forward --model DIR [--vision-tower CLIP_DIR] (--prompt TEXT | --ids LIST) [--image IMG [--pad] | --pixels FILE]\n"
     "            [--tokenizer PATH] [--top K]\n"
     "  DIR       a llava-hf or mPLUG-Owl2 model directory (config.json + safetensors or .bin, sharded or not,\n"
     "            f16/bf16 upcast), or with\n"
     "            --vision-tower an original LLaVA directory and the CLIP directory its mm_vision_tower names\n"
     "  --prompt  text, tokenized like upstream's tokenizer_image_token; <image> or <|image|> marks the image\n"
     "            (else it goes first)\n"
     "  --ids     token ids instead, comma-separated, -200 for the image\n"
     "  --image   decoded and preprocessed for the vision tower (DIR/preprocessor_config.json if present)\n"
     "  --pixels  a safetensors file with pixel_values [3, S, S] (as `vlm image preprocess` writes)\n"
     "  prints the next token's top K (default 5) ids with probability and logit\n"},
    {"init", cmd_init, "a freshly initialised model from a config.json (training from scratch)",
     "vlm init --config config.json OUT_DIR [--seed N] [--vision-init default|clip-embeddings]\n"
     "  config.json  a llava-hf LlavaConfig (vision_config, text_config, projector_hidden_act, ...) or an\n"
     "               MPLUGOwl2Config (model_type mplug_owl2, visual_config)\n"
     "  initialises every parameter as transformers 4.37.2's LlavaForConditionalGeneration(config)\n"
     "  does (CLIP's and LLaMA's _init_weights, initializer_range / initializer_factor), with vlm's\n"
     "  seeded RNG (default seed 0), and writes OUT_DIR/config.json + model.safetensors; an mPLUG-Owl2\n"
     "  config as MPLUGOwl2LlamaForCausalLM(config) under transformers 4.31 does\n"
     "  --vision-init clip-embeddings  the vision tower's class token and position embedding as CLIP's\n"
     "               _init_weights draws them (std hidden^-0.5 and initializer_range) whatever the\n"
     "               architecture; mPLUG-Owl2's own draws both with std 1, which a tower trained from\n"
     "               scratch learns worse from (docs/demo.md)\n"},
    {"demo", cmd_demo, "the demo's synthetic dataset: shapes, colours, known distortions and quality",
     "vlm demo data --out DIR [--seed N] [--size PX] [--train N] [--eval N]\n"
     "  writes DIR/images/ (PNG and JPEG, PX x PX, default 32), pt.json (captions, plain template),\n"
     "  high.json (shape / colour questions, v1), qinstruct.json (Q-Instruct-style low-level questions,\n"
     "  v1), eval_high.json and eval_mcq.json (Q-Bench A1 items), eval_score.json (A3: img_path, gt_score),\n"
     "  scenes.json (every image's ground truth) and corpus.txt (text for spm_train); all a function\n"
     "  of the seed (default 1234). --train / --eval: images per split (default 4000 / 300, as make demo)\n"},
    {"generate", cmd_generate, "greedy decoding from a prompt (and image) with a model (LLaVA, mPLUG-Owl2)",
     "vlm generate --model DIR [--vision-tower CLIP_DIR] [--tokenizer PATH] [--template NAME] --prompt TEXT\n"
     "             [--image IMG [--pad]] [--max-new-tokens N] [--json]\n"
     "  greedy (argmax) decoding until EOS, the template's stop string or N new tokens (default 128);\n"
     "  no KV cache: each step runs the whole sequence\n"
     "  --template  wrap TEXT in the chat prompt (plain, v1, mplug_owl2, llava_llama_3, llava_phi_3) with an\n"
     "              empty assistant turn; an --image without a placeholder goes first (<|image|>TEXT for\n"
     "              mplug_owl2, <image>\\nTEXT otherwise). Without a template TEXT is the prompt as is\n"
     "              (plain ends the prompt with its \"\\n\" separator, as LLaVA's get_prompt; to probe a PT\n"
     "              model as its captions were trained, give --prompt '<image>' without a template)\n"
     "  --json      {\"prompt_tokens\", \"ids\", \"text\", \"answer\", \"end\": eos|stop|length}\n"},
    {"eval", cmd_eval, "Q-Bench evaluation: A1 multiple-choice accuracy, A3 quality-score SRCC / PLCC",
     "vlm eval mcq --model DIR --template NAME [--tokenizer PATH] [--image-folder DIR] [--pad]\n"
     "             [--max-new-tokens N] [--json] [--out preds.jsonl] DATA.json\n"
     "  DATA.json: Q-Bench's llvisionqa json, a list of {\"img_path\", \"question\", \"candidates\",\n"
     "  \"correct_ans\", \"type\", \"concern\"} (\"image\" for \"img_path\" also accepted). Per item:\n"
     "  the question, the options \"A. ...\", and \"Answer with the option's letter from the given choices\n"
     "  directly.\" as Q-Instruct's scripts write them for mPLUG-Owl2 / LLaVA-1.5; greedy decoding (N\n"
     "  default 512, upstream's); correct when the option's letter occurs in the answer (upstream's rule).\n"
     "  Prints accuracy, per type and concern, and the failures; --out one line per item with\n"
     "  \"response\" and \"correct\". A missing or corrupt image stops with its file and record\n"
     "vlm eval score --model DIR [--template NAME] [--tokenizer PATH] [--image-folder DIR] [--pad]\n"
     "               [--prompt TEXT] [--temperature T] [--json] [--out preds.jsonl] DATA.json\n"
     "  DATA.json: a list of {\"image\" | \"img_path\", \"score\" | \"gt_score\"}. Per image one forward of\n"
     "  the template's prompt (default mplug_owl2: \"USER: <|image|>Rate the quality of the image.\n"
     "  ASSISTANT:\"); score = softmax(logit(' good') / T, logit(' poor') / T)[good], T default 100 as\n"
     "  Q-Bench's notebook (1: plain softmax); SRCC and PLCC (scipy's spearmanr / pearsonr) against the\n"
     "  given scores; --out one line per image with the two logits and the score\n"},
    {"train", cmd_train, "train a LLaVA model: upstream's flags (train_mem.py's), named recipes, exact resume",
     "vlm train [--recipe NAME] --model_name_or_path DIR --data_path DATA.json [--image_folder DIR] --output_dir DIR\n"
     "          [--version TEMPLATE] [--vision_tower CLIP_DIR] [--pretrain_mm_mlp_adapter mm_projector.bin] [FLAGS]\n"
     "  the flags of LLaVA's / Q-Instruct's / OLA-VLM's launch scripts, `--flag value` or `--flag=value`\n"
     "  --recipe    llava15-pt, llava15-ift, qinstruct-mix, qinstruct-after, ola-pt, ola-vpt, ola-ift\n"
     "              (its hyperparameters and trainable modules; explicit flags win; `vlm train --help` lists them)\n"
     "  --resume [CHECKPOINT]  continue exactly (default: the latest checkpoint-N in output_dir; a run\n"
     "              whose output_dir holds one resumes anyway, as LLaVA's train.py does)\n"
     "  --skip_bad_records     leave out (and list) records with missing / corrupt images instead of stopping\n"
     "  --loss_reduction token_mean|micro_mean  token mean over the accumulated batch (default) or HF's\n"
     "  --teacher_embeddings DIR  ola-pt: the teachers' precomputed embeddings, DIR/<image>.safetensors\n"
     "              holding depth [576, 1024], seg [1536, 24, 24], gen [1024] (sizes as the --*_head_* flags)\n"
     "  writes OUTPUT_DIR/checkpoint-N (model, optimizer, trainer_state.json), metrics.jsonl,\n"
     "  training.png and the final model (llava-hf layout)\n"},
    {"lora", cmd_lora, "merge a LoRA adapter into its base model (PEFT's merge_and_unload)",
     "vlm lora merge BASE ADAPTER OUT\n"
     "  BASE      the base model folder the adapter was trained on\n"
     "  ADAPTER   PEFT's adapter folder (adapter_config.json, adapter_model.safetensors) and LLaVA's\n"
     "            non_lora_trainables.bin, as `vlm train --lora_enable True` or upstream's train.py writes them\n"
     "  OUT       the merged full model (config, weights, tokenizer files)\n"},
    {"ola", cmd_ola, "OLA-VLM's teachers' target embeddings of a dataset's images, for --teacher_embeddings",
     "vlm ola targets --data_path DATA.json [--data_path ...] [--image_folder DIR] --teacher_embeddings OUT\n"
     "                [--depth_estimator depth_anything_v2_vitl.pth] [--image_segmentor ONEFORMER_DIR]\n"
     "                [--image_generator SD21_UNCLIP_DIR] [--mode gen-depth-seg] [--batch_size N]\n"
     "                [--dtype float32|bfloat16|float16] [--skip_bad_records True]\n"
     "  the teachers of upstream's pretrain.sh, by its flags: Depth-Anything-v2 ViT-L's checkpoint (depth:\n"
     "  the mean of its DINOv2 layers 4, 11, 17, 23, [576, 1024]), a OneFormer Swin folder (seg: its last\n"
     "  backbone map at 24 x 24, [1536, 24, 24]), a Stable-unCLIP folder or its image_encoder/ (gen: the\n"
     "  image embedding, [1024]); each image's upstream preprocessing. --mode limits the tasks made.\n"
     "  Writes OUT/<image>.safetensors per distinct image (atomically; a complete file is kept, so a run\n"
     "  started again continues where it stopped). Batch default 8, dtype default float32\n"},
    {"version", cmd_version, "print the version and build configuration", "vlm version\n"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof *COMMANDS)

static const char *const GLOBAL_USAGE =
    "usage: vlm [--threads N] [--log-level error|warn|info|debug] [-q] COMMAND [ARGS]\n"
    "       vlm help COMMAND\n";

static void print_help(FILE *out) {
    fputs(GLOBAL_USAGE, out);
    fputs("\ncommands:\n", out);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fputs("\nexit codes: 0 ok, 1 failure, 2 bad input or usage\n", out);
}

static const Command *find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

int cli_report(int code) {
    if (code != VLM_OK) fprintf(stderr, "vlm: error: %s%s\n", log_prefix(), vlm_last_error());
    return code;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    fputs("vlm: error: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    const Command *c = command ? find_command(command) : NULL;
    fprintf(stderr, "usage: %s", c ? c->usage : GLOBAL_USAGE);
    return VLM_ERR_INPUT;
}

void format_count(unsigned long long n, char *buf, size_t size) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", n);
    size_t at = 0;
    for (int i = 0; i < len && at + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = '\0';
}

void format_bytes(unsigned long long n, char *buf, size_t size) {
    static const char *const UNITS[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 4) { v /= 1000; u++; }
    if (u == 0) snprintf(buf, size, "%llu B", n);
    else snprintf(buf, size, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, UNITS[u]);
}

// Output that never reached its file is a failure, whatever the command
// thought (`vlm data render ... > out.jsonl` on a full disk): stdio keeps the
// error sticky, and the last buffer is flushed here.
static int check_stdout(int rc) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return rc;
    int code = vlm_fail_errno(VLM_ERR_FAIL, "stdout", NULL, "write failed");
    if (rc != VLM_OK) return rc;  // the command's own error was printed already
    return cli_report(code);
}

int cli_main(int argc, char **argv) {
    const char *env_level = getenv("VLM_LOG");
    LogLevel level;
    if (env_level && log_parse_level(env_level, &level) == 0) log_set_level(level);
    int threads = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(stdout);
            return VLM_OK;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            log_set_level(LOG_WARN);
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 4096) return cli_usage_error(NULL, "--threads needs a positive integer, got '%s'", argv[i]);
            threads = (int)n;
        } else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
            if (log_parse_level(argv[++i], &level) != 0) return cli_usage_error(NULL, "unknown log level '%s'", argv[i]);
            log_set_level(level);
        } else {
            return cli_usage_error(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        print_help(stderr);
        return VLM_ERR_INPUT;
    }
    // ranks started by mpirun on one machine share its cores
    if (threads == 0 && dist_env_local_size() > 1) {
        threads = threads_available() / dist_env_local_size();
        if (threads < 1) threads = 1;
    }
    threads_set(threads);
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        const Command *c = i + 1 < argc ? find_command(argv[i + 1]) : NULL;
        if (c) fprintf(stdout, "%s\n\nusage: %s", c->summary, c->usage);
        else print_help(stdout);
        return VLM_OK;
    }
    const Command *c = find_command(name);
    if (!c) return cli_usage_error(NULL, "unknown command '%s' (try `vlm help`)", name);
    // the subcommand sees its own name as argv[0]
    int rc = c->run(argc - i, argv + i);
    return check_stdout(rc);
}
