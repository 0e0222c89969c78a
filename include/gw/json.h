/* JSON input through cJSON, strictly: one document and nothing after it. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses buf[0..len) as exactly one JSON value, allowing trailing
 * whitespace; NULL when it is not (cJSON alone accepts trailing garbage). */
cJSON *gw_json_parse(const char *buf, size_t len);

#endif
