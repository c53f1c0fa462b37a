// JSON as Python's json module writes it, on top of jansson.
//
// Every JSON file users bring (config.json, tokenizer_config.json,
// preprocessor_config.json, index files, datasets, logs) was written by
// Python's json, which writes what jansson refuses:
//   - integers of any size: transformers' tokenizer_config.json carries
//     "model_max_length": 1000000000000000019884624838656 (VERY_LARGE_INTEGER,
//     int(1e30)) whenever no length is set; jansson stops at int64;
//   - NaN, Infinity and -Infinity for float nan / inf (json.dumps'
//     allow_nan=True, the default): a nan loss in a log, an inf in a config.
// The loaders below call jansson first, so valid JSON costs nothing extra.
// Only when jansson fails is the text scanned once more, and if it holds
// these Python-isms outside strings, a rewritten copy is parsed instead,
// where each becomes a marker: a string holding NUL then the literal as
// written ("\u0000NaN", "\u00001000000000000000019884624838656"). That
// covers integers beyond int64, NaN, Infinity, -Infinity, and reals beyond
// the double range (Python's json.loads reads 1e400 as inf). jansson's reals
// cannot hold nan or inf, and a real would lose the digits of a big integer
// (a record id, a value in a message); a NUL-led string cannot come from a
// file (jansson refuses "\u0000" there, and so do these loaders), so a marker
// is never confused with a user's string. Read numbers with
// vlm_json_is_number / vlm_json_number / vlm_json_int, which understand
// markers (json_is_number does not; json_string_value gives "" for one).
// Line numbers of errors are those of the original text (the rewrite keeps
// every newline), and column and position are mapped back to it.
//
// What else Python's json writes and these loaders still refuse, on purpose:
//   - "\u0000" in a string (json.dumps("\0")): vlm's strings are C strings,
//     and a NUL would cut a token or a path short; refused as jansson does;
//   - lone surrogates ("\ud800", json.dumps of a str that is not valid
//     Unicode, ensure_ascii=True): not text in any encoding; transformers
//     itself cannot encode such a token; refused as jansson does;
//   - duplicate keys (json.loads keeps the last): never written by
//     json.dumps of a dict; refused where the caller passes
//     JSON_REJECT_DUPLICATES, with the line of the second key.
#ifndef VLM_CORE_JSON_H
#define VLM_CORE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

// As json_load_file / json_loadb / json_loads, with the Python-isms above.
json_t *vlm_json_load_file(const char *path, size_t flags, json_error_t *error);
json_t *vlm_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *vlm_json_loads(const char *input, size_t flags, json_error_t *error);

// A number: integer, real or marker (NaN, ±Infinity, beyond int64 or double).
bool vlm_json_is_number(const json_t *v);
// Its value as a double (a big integer: the nearest double, as Python's
// float(); ±inf beyond the double range); NaN for anything else.
double vlm_json_number(const json_t *v);

// v as an integer in [lo, hi]. Errors (VLM_ERR_INPUT) name path and key and
// give the value: "expected an integer, got 2.5", or "1000000000000000019884624838656
// is outside [1, 262144]" for an integer of any size.
int vlm_json_int(const json_t *v, long long lo, long long hi, long long *out, const char *path, const char *key);

// v as a length limit in [lo, hi]: an integer beyond hi means "no limit"
// and gives no_limit (transformers writes VERY_LARGE_INTEGER, 1e30, for a
// model_max_length nobody set, and compares lengths against it).
int vlm_json_length(const json_t *v, long long lo, long long hi, long long no_limit, long long *out, const char *path,
                    const char *key);

// v as a number (integers, reals, NaN, ±Infinity); else "expected a number".
int vlm_json_real(const json_t *v, double *out, const char *path, const char *key);

// ---- keyed getters: one policy for a key that is absent or null
//
// What obj[key] absent or null means is the caller's, stated at each call:
// transformers reads both as "the default" (a config's None falls back to the
// model's default), other schemas (OLA-VLM's task dicts, vlm's own
// trainer_state.json) have no null. Every error names path and the key
// (as name says, or key itself when name is NULL) and gives the value.
typedef enum {
    VLM_JSON_OPTIONAL,  // absent or null: the default
    VLM_JSON_NO_NULL,   // absent: the default; null: an error ("expected an integer, got null")
    VLM_JSON_REQUIRED,  // absent: an error ("missing"); null: an error
} VlmJsonPresence;

// obj[key] (obj may be NULL or a non-object: the key is absent) as vlm_json_int;
// the default is taken as given, not checked against [lo, hi].
int vlm_json_get_int(const json_t *obj, const char *key, VlmJsonPresence presence, long long dflt, long long lo,
                     long long hi, long long *out, const char *path, const char *name);
// obj[key] as vlm_json_real.
int vlm_json_get_real(const json_t *obj, const char *key, VlmJsonPresence presence, double dflt, double *out,
                      const char *path, const char *name);

// The number as it was written, for messages ("NaN", "1e+30", "12").
const char *vlm_json_number_text(const json_t *v, char *buf, size_t size);

// Python's json.dumps spelling of a non-finite double ("NaN", "Infinity",
// "-Infinity"), or NULL for a finite one: what vlm writes so that Python
// (and vlm_json_load*) read its logs back.
const char *vlm_json_nonfinite(double x);

// json_dumps, with every marker written back as the literal it stands for
// (1000000000000000019884624838656, NaN, ...): a config read with the
// loaders above and written again keeps what Python's json wrote. Free the result.
char *vlm_json_dumps(const json_t *j, size_t flags);

#endif
