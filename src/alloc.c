#include "gw/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void alloc_oom(size_t size)
{
    fprintf(stderr, "gatewayd: out of memory allocating %zu bytes\n", size);
    abort();
}

void *gw_malloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL && size != 0)
        alloc_oom(size);
    return p;
}

void *gw_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL && n != 0 && size != 0)
        alloc_oom(n * size);
    return p;
}

void *gw_realloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (q == NULL && size != 0)
        alloc_oom(size);
    return q;
}

char *gw_strndup(const char *s, size_t n)
{
    char *p = gw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gw_strdup(const char *s)
{
    return gw_strndup(s, strlen(s));
}

static void *alloc_ck_malloc(size_t size)
{
    return gw_malloc(size);
}

static void *alloc_ck_realloc(void *p, size_t old, size_t size, bool defer)
{
    (void)old;
    (void)defer;
    return gw_realloc(p, size);
}

static void alloc_ck_free(void *p, size_t size, bool defer)
{
    (void)size;
    (void)defer;
    free(p);
}

struct ck_malloc gw_ck_allocator = {
    .malloc = alloc_ck_malloc,
    .realloc = alloc_ck_realloc,
    .free = alloc_ck_free,
};
