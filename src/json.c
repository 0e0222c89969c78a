#include "gw/json.h"

#include "gw/error.h"
#include "gw/hex.h"

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

/* cJSON's whitespace: every byte up to the space. */
static size_t json_ws(const char *b, size_t n, size_t i)
{
    while (i < n && (unsigned char)b[i] <= ' ')
        i++;
    return i;
}

/* The index after the string that opens at b[i]. */
static size_t json_skip_string(const char *b, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return n;
}

/* The index after the value that starts at b[i]: a string, an object or
 * array with whatever nests in it, or a scalar up to its delimiter. */
static size_t json_skip_value(const char *b, size_t n, size_t i)
{
    int depth = 0;

    while (i < n) {
        char ch = b[i];
        if (ch == '"') {
            i = json_skip_string(b, n, i);
            if (depth == 0)
                return i;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (ch == ',' || (unsigned char)ch <= ' ')) {
            return i;
        }
        i++;
    }
    return n;
}

static int json_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int k = 0; k < 4; k++) {
        int d = gw_hex_value(p[k]);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* The character of a one-letter escape; \" \\ and \/ stand for
 * themselves. */
static unsigned json_unescape(unsigned ch)
{
    switch (ch) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return ch;
    }
}

/*
 * Whether the string opening at b[i] and ending before `end` decodes to
 * the ASCII `key`, compared as cJSON does: its escapes decoded, and cut at
 * a decoded NUL, since cJSON compares keys as C strings.
 */
static int json_key_is(const char *b, size_t i, size_t end, const char *key)
{
    size_t k = 0;

    for (i++; i + 1 < end; i++) {
        unsigned ch = (unsigned char)b[i];
        if (ch == '\\') {
            ch = (unsigned char)b[++i];
            if (ch == 'u') {
                if (i + 5 > end || json_hex4(b + i + 1, &ch) != 0)
                    return 0;
                i += 4;
            } else {
                ch = json_unescape(ch);
            }
        }
        if (ch == 0)
            break;
        if (ch >= 0x80 || key[k] != (char)ch)
            return 0;
        k++;
    }
    return key[k] == '\0';
}

int gw_json_member_raw(const char *buf, size_t len, const char *key,
                       const char **out, size_t *outlen)
{
    size_t i = json_ws(buf, len, 0);

    if (i >= len || buf[i] != '{')
        return GW_EINVAL;
    for (i = json_ws(buf, len, i + 1); i < len && buf[i] == '"';) {
        size_t kend = json_skip_string(buf, len, i), v, vend;
        v = json_ws(buf, len, json_ws(buf, len, kend) + 1);
        vend = json_skip_value(buf, len, v);
        if (json_key_is(buf, i, kend, key)) {
            *out = buf + v;
            *outlen = vend - v;
            return 0;
        }
        i = json_ws(buf, len, vend);
        if (i < len && buf[i] == ',')
            i = json_ws(buf, len, i + 1);
    }
    return GW_EINVAL;
}
