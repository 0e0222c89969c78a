/*
 * gw_json_valid against Jansson, a strict RFC 8259 parser: the two must
 * agree on every input but where the RFC lets a parser refuse valid text
 * (a number Jansson cannot hold, a NUL in a key, nesting deeper than
 * cJSON's limit, which ours keeps) and one slip of Jansson's: it skips a
 * NUL right after a number or true, false, null ("[8<NUL>]" reads as [8]).
 */
#include "gw/json.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fuzz_depth(json_t *v)
{
    size_t deepest = 0, d;
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, item)
        {
            if ((d = fuzz_depth(item)) > deepest)
                deepest = d;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if ((d = fuzz_depth(item)) > deepest)
                deepest = d;
        }
    } else {
        return 0;
    }
    return deepest + 1;
}

static int fuzz_may_refuse(const json_error_t *err)
{
    enum json_error_code code = json_error_code(err);

    return code == json_error_numeric_overflow ||
           code == json_error_null_byte_in_key;
}

/* Whether the text is valid to us once the NULs Jansson skips are gone. */
static int fuzz_valid_unslipped(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    size_t n = 0;
    int valid;

    for (size_t i = 0; i < size; i++)
        if (data[i] != '\0' || i == 0 || !isalnum(data[i - 1]))
            text[n++] = (char)data[i];
    valid = gw_json_valid(text, n);
    free(text);
    return valid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *doc = json_loadb((const char *)data, size,
                             JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    int ours = gw_json_valid((const char *)data, size);

    if (doc == NULL && ours && !fuzz_may_refuse(&err))
        abort();
    if (doc != NULL && !ours && fuzz_depth(doc) <= CJSON_NESTING_LIMIT &&
        !fuzz_valid_unslipped(data, size))
        abort();
    json_decref(doc);
    return 0;
}
