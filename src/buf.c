#include "gw/buf.h"

#include "gw/alloc.h"

#include <stdarg.h>
#include <stdio.h>

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

char *gw_buf_steal(gw_buf_t *b, size_t *len)
{
    char *p = b->data;

    if (p == NULL)
        p = gw_calloc(1, 1);
    *len = b->len;
    *b = (gw_buf_t){0};
    return p;
}
