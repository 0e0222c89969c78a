/*
 * Allocation policy: like Redis and h2o, gatewayd treats out-of-memory as
 * fatal. These wrappers abort with a log line instead of returning NULL, so
 * callers never carry an OOM error path.
 */
#ifndef GW_ALLOC_H
#define GW_ALLOC_H

#include <ck_malloc.h>
#include <stddef.h>

void *gw_malloc(size_t size);
void *gw_calloc(size_t n, size_t size);
void *gw_realloc(void *p, size_t size);
char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);

/* The same policy for Concurrency Kit's tables. */
extern struct ck_malloc gw_ck_allocator;

#endif
