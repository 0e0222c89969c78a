/*
 * TOML subset reader (see gw/toml.h for the grammar). One pass, line by
 * line, no recursion: a line is blank, a [table] header or key = value.
 * Every value sits on one line because multi-line strings are unsupported,
 * so a string can never run past the end of its line.
 */
#include "gw/toml.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct toml_parser {
    const char *p;     /* next byte to read */
    const char *end;   /* one past the last byte */
    unsigned line;     /* 1-based line of p */
    const char *table; /* current [table] name, "" at the root; borrowed
                          from its entry in doc */
    gw_toml_doc_t *doc;
    gw_toml_error_t *err;
} toml_parser_t;

/* Input quoted back in an error message: at most 40 bytes, 4 chars each. */
#define TOML_QUOTE_MAX 40

static int toml_fail(toml_parser_t *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int toml_fail(toml_parser_t *ps, int code, const char *fmt, ...)
{
    va_list ap;

    ps->err->line = ps->line;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
    va_end(ap);
    return code;
}

/* Names the byte at p for an error message: 'x', byte 0x0c, end of line. */
static const char *toml_here(const toml_parser_t *ps, char buf[16])
{
    unsigned char c;

    if (ps->p == ps->end)
        return "end of input";
    c = (unsigned char)*ps->p;
    if (c == '\n' || (c == '\r' && ps->end - ps->p > 1 && ps->p[1] == '\n'))
        return "end of line";
    if (c > ' ' && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

/*
 * Copies up to TOML_QUOTE_MAX bytes of a token for an error message, with
 * anything but printable ASCII as \xNN: the message ends up in logs and
 * terminals, where raw control bytes do not belong.
 */
static const char *toml_quote(const char *s, size_t len,
                              char out[TOML_QUOTE_MAX * 4 + 1])
{
    size_t n = 0;

    for (size_t i = 0; i < len && i < TOML_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= ' ' && c < 0x7f)
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, 5, "\\x%02x", c);
    }
    out[n] = '\0';
    return out;
}

static bool toml_is_bare(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool toml_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* TOML allows tab but no other control character in strings and comments. */
static bool toml_is_control(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && u != '\t') || u == 0x7f;
}

static void toml_skip_ws(toml_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static bool toml_at(const toml_parser_t *ps, char c)
{
    return ps->p < ps->end && *ps->p == c;
}

/* True where a line's content is over: comment, newline or end of input. */
static bool toml_at_line_end(const toml_parser_t *ps)
{
    return ps->p == ps->end || *ps->p == '#' || *ps->p == '\n' ||
           *ps->p == '\r';
}

/* Where the current line's content stops: its "\n" or "\r\n", or the end. */
static const char *toml_line_limit(const toml_parser_t *ps)
{
    const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));

    if (nl == NULL)
        return ps->end;
    if (nl > ps->p && nl[-1] == '\r')
        nl--;
    return nl;
}

static void toml_entry_free(gw_toml_entry_t *e)
{
    free(e->key);
    if (e->type == GW_TOML_STRING)
        free(e->v.s.ptr);
}

void gw_toml_free(gw_toml_doc_t *doc)
{
    for (size_t i = 0; i < doc->n; i++)
        toml_entry_free(&doc->entries[i]);
    free(doc->entries);
    memset(doc, 0, sizeof(*doc));
}

/* True if `parent` names a table that encloses `name` ("a.b" of "a.b.c"). */
static bool toml_is_parent(const char *parent, const char *name)
{
    size_t n = strlen(parent);
    return strncmp(parent, name, n) == 0 && name[n] == '.';
}

/*
 * A key may not repeat, nor take the name of a table, explicit ([a.b]) or
 * implied by a deeper one ([a.b.c] implies a.b).
 */
static int toml_check_key(toml_parser_t *ps, const char *key)
{
    for (size_t i = 0; i < ps->doc->n; i++) {
        const gw_toml_entry_t *e = &ps->doc->entries[i];
        if (e->type != GW_TOML_TABLE && strcmp(e->key, key) == 0)
            return toml_fail(ps, GW_EPARSE,
                             "duplicate key '%s' (first set on line %u)", key,
                             e->line);
        if (strcmp(e->key, key) == 0 || toml_is_parent(key, e->key))
            return toml_fail(ps, GW_EPARSE,
                             "key '%s' is already a table (line %u)", key,
                             e->line);
    }
    return 0;
}

/*
 * A table may be declared once, and neither it nor an enclosing table may
 * be a key. Declaring a parent after its child ([a.b] then [a]) is legal.
 */
static int toml_check_table(toml_parser_t *ps, const char *name)
{
    for (size_t i = 0; i < ps->doc->n; i++) {
        const gw_toml_entry_t *e = &ps->doc->entries[i];
        if (e->type == GW_TOML_TABLE && strcmp(e->key, name) == 0)
            return toml_fail(ps, GW_EPARSE,
                             "duplicate table [%s] (first defined on line %u)",
                             name, e->line);
        if (e->type != GW_TOML_TABLE &&
            (strcmp(e->key, name) == 0 || toml_is_parent(e->key, name)))
            return toml_fail(ps, GW_EPARSE,
                             "table [%s]: '%s' is already a key (line %u)",
                             name, e->key, e->line);
    }
    return 0;
}

/* Appends e to the document, which takes ownership; frees e on error. */
static int toml_add(toml_parser_t *ps, gw_toml_entry_t *e)
{
    gw_toml_doc_t *doc = ps->doc;
    int rc;

    if (doc->n == GW_TOML_MAX_ENTRIES) {
        rc = toml_fail(ps, GW_ETOOBIG, "more than %d keys and tables",
                       GW_TOML_MAX_ENTRIES);
        goto Error;
    }
    rc = e->type == GW_TOML_TABLE ? toml_check_table(ps, e->key)
                                  : toml_check_key(ps, e->key);
    if (rc != 0)
        goto Error;
    if (doc->n == doc->cap) {
        doc->cap = doc->cap ? doc->cap * 2 : 16;
        doc->entries =
            gw_realloc(doc->entries, doc->cap * sizeof(doc->entries[0]));
    }
    doc->entries[doc->n++] = *e;
    return 0;

Error:
    toml_entry_free(e);
    return rc;
}

/* Scans a bare key, or one part of a dotted table name. */
static int toml_scan_bare(toml_parser_t *ps, const char **key, size_t *len,
                          const char *what)
{
    char here[16];

    *key = ps->p;
    while (ps->p < ps->end && toml_is_bare(*ps->p))
        ps->p++;
    *len = (size_t)(ps->p - *key);
    if (*len == 0)
        return toml_fail(ps, GW_EPARSE,
                         "invalid %s: unexpected %s (bare keys use "
                         "A-Za-z0-9_- only)",
                         what, toml_here(ps, here));
    return 0;
}

/* Encodes a Unicode scalar value as UTF-8; returns the bytes written. */
static size_t toml_put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decodes \uXXXX or \UXXXXXXXX (p at the 'u' or 'U') into out. The escape
 * is at least 6 bytes of input and yields at most 4, so decoding in place
 * of a buffer sized by the input cannot overflow.
 */
static int toml_unicode_escape(toml_parser_t *ps, const char *limit,
                               const char *key, char *out, size_t *n)
{
    int digits = *ps->p == 'u' ? 4 : 8;
    uint32_t cp = 0;

    ps->p++;
    for (int i = 0; i < digits; i++, ps->p++) {
        int h = ps->p < limit ? gw_hex_value(*ps->p) : -1;
        if (h < 0)
            return toml_fail(ps, GW_EPARSE,
                             "%s: \\%c escape needs %d hex digits", key,
                             digits == 4 ? 'u' : 'U', digits);
        cp = cp << 4 | (uint32_t)h;
    }
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return toml_fail(ps, GW_EPARSE,
                         "%s: escape U+%04X is not a Unicode scalar value", key,
                         (unsigned)cp);
    *n += toml_put_utf8(out + *n, cp);
    return 0;
}

/* Decodes one escape sequence (p at the backslash) into out. */
static int toml_escape(toml_parser_t *ps, const char *limit, const char *key,
                       char *out, size_t *n)
{
    static const char from[] = "\"\\btnfr";
    static const char to[] = "\"\\\b\t\n\f\r";
    char here[16];
    const char *hit;

    ps->p++;
    if (ps->p == limit)
        return toml_fail(ps, GW_EPARSE, "%s: unterminated string", key);
    if (*ps->p == 'u' || *ps->p == 'U')
        return toml_unicode_escape(ps, limit, key, out, n);
    hit = *ps->p != '\0' ? strchr(from, *ps->p) : NULL;
    if (hit == NULL)
        return toml_fail(ps, GW_EPARSE, "%s: invalid escape \\ followed by %s",
                         key, toml_here(ps, here));
    out[(*n)++] = to[hit - from];
    ps->p++;
    return 0;
}

/*
 * Reads a '...' or "..." string (p at the opening quote) into e; escapes
 * are decoded only in basic strings.
 */
static int toml_parse_string(toml_parser_t *ps, gw_toml_entry_t *e)
{
    const char *limit = toml_line_limit(ps);
    char quote = *ps->p;
    char *out;
    size_t n = 0;
    int rc;

    if (limit - ps->p >= 3 && ps->p[1] == quote && ps->p[2] == quote)
        return toml_fail(ps, GW_EPARSE,
                         "%s: unsupported value type (multi-line string)",
                         e->key);
    out = gw_malloc((size_t)(limit - ps->p));
    for (ps->p++; ps->p < limit && *ps->p != quote;) {
        if (quote == '"' && *ps->p == '\\') {
            if ((rc = toml_escape(ps, limit, e->key, out, &n)) != 0)
                goto Error;
        } else if (toml_is_control(*ps->p)) {
            rc = toml_fail(ps, GW_EPARSE,
                           "%s: control character 0x%02x in string", e->key,
                           (unsigned char)*ps->p);
            goto Error;
        } else {
            out[n++] = *ps->p++;
        }
    }
    if (ps->p == limit) {
        rc = toml_fail(ps, GW_EPARSE, "%s: unterminated string", e->key);
        goto Error;
    }
    ps->p++;
    out[n] = '\0';
    e->type = GW_TOML_STRING;
    e->v.s.ptr = out;
    e->v.s.len = n;
    return 0;

Error:
    free(out);
    return rc;
}

/*
 * TOML decimal integer: optional sign, underscores only between digits,
 * no leading zero. On failure *why says what is wrong.
 */
static int toml_scan_int(const char *s, size_t len, int64_t *out,
                         const char **why)
{
    size_t i = 0;
    bool neg = false;
    uint64_t mag = 0, limit;

    if (len > 0 && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    *why = "not a decimal integer";
    if (i == len)
        return GW_EPARSE;
    if (s[i] == '0' && i + 1 < len &&
        (toml_is_digit(s[i + 1]) || s[i + 1] == '_')) {
        *why = "leading zeros are not allowed";
        return GW_EPARSE;
    }
    for (size_t start = i; i < len; i++) {
        if (s[i] == '_') {
            *why = "underscores must sit between digits";
            if (i == start || !toml_is_digit(s[i - 1]) || i + 1 == len ||
                !toml_is_digit(s[i + 1]))
                return GW_EPARSE;
            continue;
        }
        if (!toml_is_digit(s[i]))
            return GW_EPARSE;
        if (mag > (limit - (uint64_t)(s[i] - '0')) / 10) {
            *why = "does not fit in 64 bits";
            return GW_ETOOBIG;
        }
        mag = mag * 10 + (uint64_t)(s[i] - '0');
    }
    /* mag - 1 fits in int64_t even for INT64_MIN, whose mag does not. */
    *out = neg && mag > 0 ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
    return 0;
}

int gw_toml_parse_int(const char *s, size_t len, int64_t *out)
{
    const char *why;
    return toml_scan_int(s, len, out, &why);
}

static bool toml_token_is(const char *t, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(t, word, len) == 0;
}

/*
 * Names the TOML type of a token we do not read, or NULL if it is no TOML
 * value at all. Checked only after the token failed as an integer.
 */
static const char *toml_unsupported_kind(const char *t, size_t len)
{
    size_t i = len > 0 && (t[0] == '+' || t[0] == '-') ? 1 : 0;

    if (toml_token_is(t + i, len - i, "inf") ||
        toml_token_is(t + i, len - i, "nan"))
        return "float";
    if (len - i < 2 || !toml_is_digit(t[i]))
        return NULL;
    if (t[i] == '0' && memchr("xob", t[i + 1], 3) != NULL)
        return "non-decimal integer";
    if ((len > 4 && t[4] == '-') || (len > 2 && t[2] == ':'))
        return "date-time";
    if (memchr(t, '.', len) || memchr(t, 'e', len) || memchr(t, 'E', len))
        return "float";
    return NULL;
}

/* Reads an unquoted value: a boolean or an integer. */
static int toml_parse_bare_value(toml_parser_t *ps, gw_toml_entry_t *e)
{
    const char *t = ps->p, *why, *kind;
    char quoted[TOML_QUOTE_MAX * 4 + 1];
    size_t len;
    int rc;

    while (!toml_at_line_end(ps) && *ps->p != ' ' && *ps->p != '\t')
        ps->p++;
    len = (size_t)(ps->p - t);
    if (toml_token_is(t, len, "true") || toml_token_is(t, len, "false")) {
        e->type = GW_TOML_BOOL;
        e->v.b = *t == 't';
        return 0;
    }
    if ((kind = toml_unsupported_kind(t, len)) != NULL)
        return toml_fail(ps, GW_EPARSE, "%s: unsupported value type (%s)",
                         e->key, kind);
    if (!toml_is_digit(*t) && *t != '+' && *t != '-')
        return toml_fail(ps, GW_EPARSE,
                         "%s: invalid value '%s' (strings must be quoted)",
                         e->key, toml_quote(t, len, quoted));
    rc = toml_scan_int(t, len, &e->v.i, &why);
    if (rc != 0)
        return toml_fail(ps, rc, "%s: invalid integer '%s': %s", e->key,
                         toml_quote(t, len, quoted), why);
    e->type = GW_TOML_INT;
    return 0;
}

static int toml_parse_value(toml_parser_t *ps, gw_toml_entry_t *e)
{
    if (toml_at_line_end(ps))
        return toml_fail(ps, GW_EPARSE, "%s: missing value", e->key);
    switch (*ps->p) {
    case '"':
    case '\'': return toml_parse_string(ps, e);
    case '[':
        return toml_fail(ps, GW_EPARSE, "%s: unsupported value type (array)",
                         e->key);
    case '{':
        return toml_fail(ps, GW_EPARSE,
                         "%s: unsupported value type (inline table)", e->key);
    }
    return toml_parse_bare_value(ps, e);
}

/* "table" + "key" -> "table.key"; a root key keeps its own name. */
static char *toml_join(const char *table, const char *key, size_t len)
{
    size_t tlen = strlen(table);
    char *name;

    if (tlen == 0)
        return gw_strndup(key, len);
    name = gw_malloc(tlen + 1 + len + 1);
    memcpy(name, table, tlen);
    name[tlen] = '.';
    memcpy(name + tlen + 1, key, len);
    name[tlen + 1 + len] = '\0';
    return name;
}

static int toml_parse_keyval(toml_parser_t *ps)
{
    /* Typed TABLE until a value is read: only the key is then to free. */
    gw_toml_entry_t e = {.line = ps->line, .type = GW_TOML_TABLE};
    const char *key;
    size_t len;
    char here[16], quoted[TOML_QUOTE_MAX * 4 + 1];
    int rc;

    if ((rc = toml_scan_bare(ps, &key, &len, "key")) != 0)
        return rc;
    toml_skip_ws(ps);
    if (toml_at(ps, '.'))
        return toml_fail(ps, GW_EPARSE,
                         "dotted keys are not supported; put the key under "
                         "a [table]");
    if (!toml_at(ps, '='))
        return toml_fail(ps, GW_EPARSE, "expected '=' after key '%s', got %s",
                         toml_quote(key, len, quoted), toml_here(ps, here));
    ps->p++;
    toml_skip_ws(ps);
    e.key = toml_join(ps->table, key, len);
    if ((rc = toml_parse_value(ps, &e)) != 0)
        goto Error;
    return toml_add(ps, &e);

Error:
    toml_entry_free(&e);
    return rc;
}

/* Reads a [a.b] header (p at '[') and makes it the current table. */
static int toml_parse_header(toml_parser_t *ps)
{
    gw_toml_entry_t e = {.line = ps->line, .type = GW_TOML_TABLE};
    const char *part;
    size_t len, n = 0;
    char here[16];
    int rc;

    ps->p++;
    if (toml_at(ps, '['))
        return toml_fail(ps, GW_EPARSE,
                         "unsupported: arrays of tables [[...]]");
    /* The name is shorter than the rest of the line it is written on. */
    e.key = gw_malloc((size_t)(toml_line_limit(ps) - ps->p) + 1);
    for (;;) {
        toml_skip_ws(ps);
        if ((rc = toml_scan_bare(ps, &part, &len, "table name")) != 0)
            goto Error;
        memcpy(e.key + n, part, len);
        n += len;
        toml_skip_ws(ps);
        if (!toml_at(ps, '.'))
            break;
        e.key[n++] = *ps->p++;
    }
    e.key[n] = '\0';
    if (!toml_at(ps, ']')) {
        rc = toml_fail(ps, GW_EPARSE,
                       "invalid table name: expected '.' or ']', got %s",
                       toml_here(ps, here));
        goto Error;
    }
    ps->p++;
    if ((rc = toml_add(ps, &e)) != 0)
        return rc;
    ps->table = ps->doc->entries[ps->doc->n - 1].key;
    return 0;

Error:
    toml_entry_free(&e);
    return rc;
}

/*
 * Finishes a line: optional comment, then "\n", "\r\n" or the end of
 * input. Anything else is garbage after what the line held (`after`).
 */
static int toml_end_line(toml_parser_t *ps, const char *after)
{
    char here[16];

    toml_skip_ws(ps);
    if (toml_at(ps, '#')) {
        const char *limit = toml_line_limit(ps);
        for (ps->p++; ps->p < limit; ps->p++)
            if (toml_is_control(*ps->p))
                return toml_fail(ps, GW_EPARSE,
                                 "control character 0x%02x in comment",
                                 (unsigned char)*ps->p);
    }
    if (ps->end - ps->p >= 2 && ps->p[0] == '\r' && ps->p[1] == '\n')
        ps->p++;
    if (toml_at(ps, '\n')) {
        ps->p++;
        ps->line++;
        return 0;
    }
    if (ps->p == ps->end)
        return 0;
    return toml_fail(ps, GW_EPARSE, "unexpected %s%s", toml_here(ps, here),
                     after);
}

static int toml_parse_line(toml_parser_t *ps)
{
    int rc;

    toml_skip_ws(ps);
    if (toml_at_line_end(ps))
        return toml_end_line(ps, "");
    if (toml_at(ps, '[')) {
        if ((rc = toml_parse_header(ps)) != 0)
            return rc;
        return toml_end_line(ps, " after table header");
    }
    if ((rc = toml_parse_keyval(ps)) != 0)
        return rc;
    return toml_end_line(ps, " after value");
}

int gw_toml_parse(const char *buf, size_t len, gw_toml_doc_t *doc,
                  gw_toml_error_t *err)
{
    /* No arithmetic on a NULL buf: an empty input may come without one. */
    toml_parser_t ps = {buf, len ? buf + len : buf, 1, "", doc, err};
    int rc;

    memset(doc, 0, sizeof(*doc));
    err->line = 0;
    err->msg[0] = '\0';
    /* Editors on some systems start UTF-8 files with a byte order mark. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        ps.p += 3;
    while (ps.p < ps.end)
        if ((rc = toml_parse_line(&ps)) != 0)
            goto Error;
    return 0;

Error:
    gw_toml_free(doc);
    return rc;
}
