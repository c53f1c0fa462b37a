// One LLaVA-format record: {"id", "image"?, "conversations": [{"from", "value"}...]}.
#ifndef VLM_TEXT_CONVERSATION_H
#define VLM_TEXT_CONVERSATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { ROLE_HUMAN, ROLE_GPT } Role;

typedef struct {
    Role role;
    char *text;  // owned, NUL-terminated, may be edited by templates
} Turn;

typedef struct {
    char id[128];     // the record's id as text ("" if none)
    char *image;      // relative image path, NULL for text-only records
    Turn *turns;
    int n_turns;
} Conversation;

// Parses a record. `where` names it in errors ("data.json: record 12").
int conversation_parse(Conversation *c, const json_t *record, const char *where);
void conversation_free(Conversation *c);

// Replaces every occurrence of `from` with `to` in s (fresh string).
char *str_replace_all(const char *s, const char *from, const char *to);
// Python's str.strip(): removes leading/trailing Unicode whitespace in place.
void py_strip(char *s);

#endif
