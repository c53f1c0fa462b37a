// libFuzzer harness: tokenizer.model parsers (SentencePiece protobuf and the
// tiktoken ranks file), then an encode of a fixed text with whatever loaded.
#include <stddef.h>
#include <stdint.h>

#include "text/sentencepiece.h"
#include "text/tiktoken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "Hello  world\n\xe6\x97\xa5\xe6\x9c\xac 123 \xf0\x9f\x98\x80";
    IdBuf ids = {0};
    if (tiktoken_sniff(data, size)) {
        TiktokenModel m;
        if (tiktoken_load(&m, (const char *)data, size, "fuzz") == 0) {
            tiktoken_encode(&m, text, sizeof text - 1, &ids, NULL, 0);
            tiktoken_free(&m);
        }
    } else {
        SpModel m;
        if (sp_load(&m, data, size, "fuzz") == 0) {
            sp_encode(&m, text, sizeof text - 1, true, &ids, NULL, 0);
            sp_free(&m);
        }
    }
    ids_free(&ids);
    return 0;
}
