#include "gw/json.h"

#include "gw/error.h"
#include "gw/hex.h"
#include "gw/utf8.h"

#include <string.h>

/* RFC 8259's whitespace; cJSON skips every byte up to the space. */
static size_t json_space(const char *b, size_t n, size_t i)
{
    while (i < n &&
           (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
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

/* The code unit of the \uXXXX escape whose backslash is b[i], or -1. */
static long json_escape_u(const char *b, size_t n, size_t i)
{
    unsigned v;

    if (n - i < 6 || b[i] != '\\' || b[i + 1] != 'u' ||
        json_hex4(b + i + 2, &v) != 0)
        return -1;
    return (long)v;
}

/*
 * The index after the string opening at b[i], or 0 when it breaks RFC
 * 8259: a raw control character, an unknown escape, bad hex (which cJSON
 * reads as U+0000) or a lone surrogate. The text's UTF-8 is checked whole.
 */
static size_t json_string_end(const char *b, size_t n, size_t i)
{
    long u, lo;

    for (i++; i < n; i++) {
        if (b[i] == '"')
            return i + 1;
        if ((unsigned char)b[i] < 0x20)
            return 0;
        if (b[i] != '\\')
            continue;
        if (i + 1 < n && b[i + 1] != '\0' && strchr("\"\\/bfnrt", b[i + 1])) {
            i++;
            continue;
        }
        if ((u = json_escape_u(b, n, i)) < 0 || (u >= 0xDC00 && u <= 0xDFFF))
            return 0;
        i += 5;
        if (u >= 0xD800 && u <= 0xDBFF) {
            lo = json_escape_u(b, n, i + 1);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return 0;
            i += 6;
        }
    }
    return 0;
}

static size_t json_digits(const char *b, size_t n, size_t i)
{
    while (i < n && b[i] >= '0' && b[i] <= '9')
        i++;
    return i;
}

/* The index after the number at b[i], or 0. RFC 8259 refuses what cJSON's
 * strtod takes: leading zeros, "1.", "-.5". */
static size_t json_number_end(const char *b, size_t n, size_t i)
{
    size_t j;

    if (i < n && b[i] == '-')
        i++;
    if (i < n && b[i] == '0')
        i++;
    else if ((j = json_digits(b, n, i)) > i)
        i = j;
    else
        return 0;
    if (i < n && b[i] == '.') {
        if ((j = json_digits(b, n, i + 1)) == i + 1)
            return 0;
        i = j;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-'))
            i++;
        if ((j = json_digits(b, n, i)) == i)
            return 0;
        i = j;
    }
    return i;
}

static size_t json_word_end(const char *b, size_t n, size_t i, const char *w)
{
    size_t k = strlen(w);

    return n - i >= k && memcmp(b + i, w, k) == 0 ? i + k : 0;
}

/* The index after the scalar at b[i] (i < n), or 0. */
static size_t json_scalar_end(const char *b, size_t n, size_t i)
{
    switch (b[i]) {
    case '"': return json_string_end(b, n, i);
    case 't': return json_word_end(b, n, i, "true");
    case 'f': return json_word_end(b, n, i, "false");
    case 'n': return json_word_end(b, n, i, "null");
    default: return json_number_end(b, n, i);
    }
}

/* The index of the value after the key at b[i] and its colon, or 0. */
static size_t json_key_end(const char *b, size_t n, size_t i)
{
    if (i >= n || b[i] != '"' || (i = json_string_end(b, n, i)) == 0)
        return 0;
    i = json_space(b, n, i);
    if (i >= n || b[i] != ':')
        return 0;
    return json_space(b, n, i + 1);
}

/* The containers open around a point of the text: a bit per level, set
 * for an object, so nesting costs no stack. The limit is cJSON's. */
typedef struct json_levels {
    uint8_t object[(CJSON_NESTING_LIMIT + 7) / 8];
    size_t depth;
} json_levels_t;

static int json_push(json_levels_t *l, int object)
{
    uint8_t bit = (uint8_t)(1u << l->depth % 8);

    if (l->depth == CJSON_NESTING_LIMIT)
        return -1;
    if (object)
        l->object[l->depth / 8] |= bit;
    else
        l->object[l->depth / 8] &= (uint8_t)~bit;
    l->depth++;
    return 0;
}

static int json_in_object(const json_levels_t *l)
{
    size_t top = l->depth - 1;

    return l->object[top / 8] >> top % 8 & 1;
}

int gw_json_valid(const char *b, size_t n)
{
    json_levels_t l = {.depth = 0};
    size_t i = json_space(b, n, 0);

    if (!gw_utf8_valid((const uint8_t *)b, n))
        return 0;
    for (;;) {
        if (i < n && (b[i] == '{' || b[i] == '[')) {
            int obj = b[i] == '{';
            if (json_push(&l, obj) != 0)
                return 0;
            i = json_space(b, n, i + 1);
            if (i >= n || b[i] != (obj ? '}' : ']')) {
                if (obj && (i = json_key_end(b, n, i)) == 0)
                    return 0;
                continue;
            }
            l.depth--;
            i++;
        } else if (i >= n || (i = json_scalar_end(b, n, i)) == 0) {
            return 0;
        }
        /* After a value: the containers it closes, then a comma or the
         * end of the text. */
        for (i = json_space(b, n, i);
             l.depth > 0 && i < n && b[i] == (json_in_object(&l) ? '}' : ']');
             i = json_space(b, n, i + 1))
            l.depth--;
        if (l.depth == 0)
            return i == n;
        if (i >= n || b[i] != ',')
            return 0;
        i = json_space(b, n, i + 1);
        if (json_in_object(&l) && (i = json_key_end(b, n, i)) == 0)
            return 0;
    }
}

cJSON *gw_json_parse(const char *buf, size_t len)
{
    /* First: event bodies reach clients as their publisher wrote them. */
    if (!gw_json_valid(buf, len))
        return NULL;
    return cJSON_ParseWithLength(buf, len);
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
    size_t i = json_space(buf, len, 0);

    if (i >= len || buf[i] != '{')
        return GW_EINVAL;
    for (i = json_space(buf, len, i + 1); i < len && buf[i] == '"';) {
        size_t kend = json_skip_string(buf, len, i), v, vend;
        v = json_space(buf, len, json_space(buf, len, kend) + 1);
        vend = json_skip_value(buf, len, v);
        if (json_key_is(buf, i, kend, key)) {
            *out = buf + v;
            *outlen = vend - v;
            return 0;
        }
        i = json_space(buf, len, vend);
        if (i < len && buf[i] == ',')
            i = json_space(buf, len, i + 1);
    }
    return GW_EINVAL;
}
