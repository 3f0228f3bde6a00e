/* io/json.h - JSON documents from outside (headers, indexes, config files): the checks
 * every one of them gets before cJSON sees it. */
#ifndef MUSCLE_IO_JSON_H
#define MUSCLE_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Parses `text` (n bytes, no terminator needed) as one JSON object followed only by
 * whitespace, after checking what cJSON does not: strict UTF-8, nesting depth
 * (32, ST_MAX_DEPTH of safetensors.h), no escaped NUL (\u0000, which would cut a C string), at most
 * ~4 million values. Returns the tree (cJSON_Delete it) or NULL with a message
 * "NAME: WHAT: ..." ("NAME: ..." when what is NULL) saying what and at which byte. */
struct cJSON *io_json_parse_object(const uint8_t *text, size_t n, const char *name, const char *what);

/* Refuses an object with the same key twice among its direct members (Python's json keeps
 * the last one, cJSON finds the first: the same file would mean two things). Message
 * "NAME: key 'K' appears twice ...". */
int io_json_unique_keys(const struct cJSON *obj, const char *name);

/* What a JSON value is, for "expected X, got KIND" messages: "a string", "a number",
 * "a boolean", "null", "an array", "an object" ("nothing" for NULL, "an invalid value"
 * for a cJSON node of no type). */
const char *io_json_kind(const struct cJSON *v);

/* Refuses a NUL character anywhere in n bytes of JSON (or CSV) text: a raw 0 byte or an
 * escaped \u0000 (which cJSON turns into a NUL that cuts the C string: "a\u0000XYZ" and
 * "a\u0000QQQ" would both read as the id "a"). Message "NAME:LINE: ...". */
int io_json_refuse_nul(const char *text, size_t n, const char *name);
/* Refuses terminal control characters (U+0000..U+001F, U+007F: ESC, BEL, CR...) in every
 * key and string of a tree whose names reach the terminal (a manifest, a report): they
 * could forge a line. Message "NAME: field 'KEY': a control character (0xNN) ...". */
int io_json_refuse_controls(const struct cJSON *root, const char *name);

#endif
