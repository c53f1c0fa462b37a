// libFuzzer harness: JSON with Python's json-isms (core/json.h): the rewrite
// of the text jansson refuses, the mapping of error places back to the
// input, and the number getters on every value of what parses.
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/json.h"

static void visit(const json_t *v, int depth) {
    char text[64];
    long long x;
    double d;
    (void)vlm_json_number(v);
    (void)vlm_json_number_text(v, text, sizeof text);
    (void)vlm_json_int(v, -5, 5, &x, "fuzz", "k");
    (void)vlm_json_length(v, 1, 100, 0, &x, "fuzz", "k");
    (void)vlm_json_real(v, &d, "fuzz", "k");
    if (depth > 64) return;
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_array(v)) json_array_foreach(v, i, item) visit(item, depth + 1);
    if (json_is_object(v)) json_object_foreach((json_t *)v, key, item) visit(item, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t e, ref;
    size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;
    json_t *j = vlm_json_loadb((const char *)data, size, flags, &e);
    json_t *plain = json_loadb((const char *)data, size, flags, &ref);
    if (plain && (!j || !json_equal(j, plain))) abort();  // what jansson reads is read the same
    if (!j && (e.line < 1 || e.position < 0 || (size_t)e.position > size)) abort();  // a place inside the input
    if (j) visit(j, 0);
    json_decref(j);
    json_decref(plain);
    vlm_clear_error();
    return 0;
}
