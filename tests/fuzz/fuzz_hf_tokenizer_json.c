// libFuzzer harness: tokenizer.json (HF BPE) loading, then an encode and a
// decode of a fixed text with whatever loaded.
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "text/hf_bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = " Hello  world\n\xe6\x97\xa5\xe6\x9c\xac 123 \xf0\x9f\x98\x80 \xe2\x96\x81x";
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (!root) return 0;
    HfBpeModel m;
    if (hf_bpe_load(&m, root, "fuzz") == 0) {
        IdBuf ids = {0};
        hf_bpe_encode(&m, text, sizeof text - 1, true, &ids, NULL, 0);
        StrBuf out = {0};
        for (size_t i = 0; i < ids.len; i++) hf_bpe_decode_token(&m, ids.data[i], &out);
        str_free(&out);
        ids_free(&ids);
        hf_bpe_free(&m);
    }
    json_decref(root);
    return 0;
}
