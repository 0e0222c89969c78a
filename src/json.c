#include "gw/json.h"

cJSON *gw_json_parse(const char *buf, size_t len)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(buf, len, &end, 0);

    if (doc == NULL)
        return NULL;
    while (end < buf + len &&
           (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != buf + len) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}
