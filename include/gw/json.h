/* JSON input through cJSON, strictly: one document and nothing after it. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses buf[0..len) as exactly one JSON value, allowing trailing
 * whitespace; NULL when it is not (cJSON alone accepts trailing garbage). */
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
