/* A growable byte string for building responses (JSON, metrics). */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

typedef struct gw_buf {
    char *data; /* owned, NUL-terminated */
    size_t len;
    size_t cap;
} gw_buf_t;

void gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends n bytes of s. */
void gw_buf_append(gw_buf_t *b, const char *s, size_t n);

/* Appends s (NUL-terminated, valid UTF-8) as a JSON string literal:
 * quotes, backslashes and control characters escaped, the rest as it is. */
void gw_buf_json_string(gw_buf_t *b, const char *s);

/* Hands the bytes to the caller (free them) and empties b. */
char *gw_buf_steal(gw_buf_t *b, size_t *len);

#endif
