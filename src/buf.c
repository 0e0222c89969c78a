#include "gw/buf.h"

#include "gw/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->data ? b->data + b->len : NULL,
                  b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (b->data != NULL && (size_t)n < b->cap - b->len) {
        b->len += (size_t)n;
        return;
    }
    while (b->cap < b->len + (size_t)n + 1)
        b->cap = b->cap ? b->cap * 2 : 1024;
    b->data = gw_realloc(b->data, b->cap);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void gw_buf_append(gw_buf_t *b, const char *s, size_t n)
{
    if (b->cap < b->len + n + 1) {
        while (b->cap < b->len + n + 1)
            b->cap = b->cap ? b->cap * 2 : 1024;
        b->data = gw_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void gw_buf_json_string(gw_buf_t *b, const char *s)
{
    gw_buf_append(b, "\"", 1);
    for (;;) {
        size_t n = strcspn(s, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09"
                              "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13"
                              "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                              "\x1e\x1f");
        gw_buf_append(b, s, n);
        s += n;
        if (*s == '\0')
            break;
        if (*s == '"' || *s == '\\')
            gw_buf_printf(b, "\\%c", *s++);
        else
            gw_buf_printf(b, "\\u%04x", (unsigned char)*s++);
    }
    gw_buf_append(b, "\"", 1);
}

char *gw_buf_steal(gw_buf_t *b, size_t *len)
{
    char *p = b->data;

    if (p == NULL)
        p = gw_calloc(1, 1);
    *len = b->len;
    *b = (gw_buf_t){0};
    return p;
}
