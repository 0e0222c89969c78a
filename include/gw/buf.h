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

/* Hands the bytes to the caller (free them) and empties b. */
char *gw_buf_steal(gw_buf_t *b, size_t *len);

#endif
