// The `vlm` command line: one binary, one function per subcommand.
#ifndef VLM_CLI_H
#define VLM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "eval/infer.h"
#include "text/tokenizer.h"

// Every subcommand returns an exit code (VlmStatus): 0 ok, 1 failure, 2 bad input or usage.
typedef int (*CommandFn)(int argc, char **argv);

typedef struct {
    const char *name;
    CommandFn run;
    const char *summary;
    const char *usage;
} Command;

int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_lora(int argc, char **argv);
int cmd_ola(int argc, char **argv);

// Prints "vlm: error: MESSAGE" for the current error and returns code.
int cli_report(int code);
// A usage error: prints the message and the command's usage, returns 2.
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Writes n with thousands separators ("1,234,567") into buf.
void format_count(unsigned long long n, char *buf, size_t size);
// Writes a byte count as "512 B", "3.4 KB", "1.23 GB" (powers of 1000, like HF).
void format_bytes(unsigned long long n, char *buf, size_t size);

// The options of the commands that run a model (forward, generate, eval):
// --model DIR, --vision-tower DIR, --tokenizer PATH, --template NAME, --pad.
typedef struct {
    const char *model, *vision_tower, *tokenizer, *template_name;
    bool pad;
} ModelOptions;
// Takes argv[*i] (and its value, advancing *i) when it is one of them
// (--template only when with_template); false otherwise.
bool cli_model_option(ModelOptions *o, bool with_template, int argc, char **argv, int *i);
// A count's value (1 .. 1,000,000, e.g. --max-new-tokens); -1 when it is not one.
long cli_count(const char *value);
// Opens the model (infer_open) and its tokenizer (--tokenizer, else the model folder's).
int cli_open_model(const ModelOptions *o, Infer *s, Tokenizer *tok);

int cli_main(int argc, char **argv);

#endif
