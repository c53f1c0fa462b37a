// Small string predicates shared by every stage (names, paths, arguments).
#ifndef VLM_CORE_STR_H
#define VLM_CORE_STR_H

#include <stdbool.h>

// s begins with prefix (every string begins with "")
bool str_has_prefix(const char *s, const char *prefix);
// s ends with suffix (every string ends with "")
bool str_has_suffix(const char *s, const char *suffix);

#endif
