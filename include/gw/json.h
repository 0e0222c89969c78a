/* JSON input through cJSON, held to RFC 8259, which cJSON does not hold
 * it to. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * Returns 1 if buf[0..len) is exactly one JSON text as RFC 8259 defines
 * it, whitespace around it allowed, in UTF-8, nested no deeper than cJSON
 * goes; else 0.
 */
int gw_json_valid(const char *buf, size_t len);

/* Parses buf[0..len) if gw_json_valid holds, else NULL. cJSON alone takes
 * trailing garbage, invalid UTF-8, raw control characters in strings, bad
 * \u hex (as U+0000) and numbers such as 01, 1. and -.5. */
cJSON *gw_json_parse(const char *buf, size_t len);

/*
 * Finds the first member named `key` (ASCII) of the object that
 * buf[0..len) holds, a document gw_json_parse accepted, and points *out
 * and *outlen at its value's own text, without the whitespace around it.
 * Members are matched as cJSON_GetObjectItemCaseSensitive matches them:
 * the first whose key, escapes decoded, equals `key`. Returns 0, or
 * GW_EINVAL when there is none. Passing a value on as it came costs a
 * scan, where printing it back from cJSON's tree costs about as much as
 * parsing did.
 */
int gw_json_member_raw(const char *buf, size_t len, const char *key,
                       const char **out, size_t *outlen);

#endif
