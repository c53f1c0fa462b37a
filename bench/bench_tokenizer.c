// Tokenizer throughput: encodes every line of a corpus file, single thread,
// and prints one JSON line {"tokenizer", "mb_per_s", "tokens", "seconds"}.
// Usage: bench_tokenizer TOKENIZER CORPUS.txt [REPEATS]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/timer.h"
#include "text/tokenizer.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER CORPUS.txt [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    Tokenizer tok;
    char *text;
    size_t size;
    if (tokenizer_load(&tok, argv[1]) != VLM_OK || file_read_all(argv[2], 1u << 30, &text, &size) != VLM_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", vlm_last_error());
        return 1;
    }
    double best = 1e30;
    size_t tokens = 0;
    IdBuf ids = {0};
    for (int r = 0; r < repeats; r++) {
        tokens = 0;
        double t0 = timer_now_s();
        for (char *line = text, *end = text + size; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
            ids.len = 0;
            if (tokenizer_encode(&tok, line, n, TOK_ADD_BOS | TOK_SPLIT_SPECIAL, &ids) != VLM_OK) {
                fprintf(stderr, "bench_tokenizer: %s\n", vlm_last_error());
                return 1;
            }
            tokens += ids.len;
            line += n + 1;
        }
        double dt = timer_now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"tokenizer\": \"%s\", \"mb_per_s\": %.3f, \"tokens\": %zu, \"seconds\": %.4f}\n", argv[1],
           (double)size / 1e6 / best, tokens, best);
    ids_free(&ids);
    free(text);
    tokenizer_free(&tok);
    return 0;
}
