/*
 * Hashing for the ck_hs sets keyed by an id string (the index's guilds and
 * users, the broker's presence table): the set stores a pointer to the id,
 * kept inline at the end of its entry.
 */
#ifndef GW_HS_H
#define GW_HS_H

#include <stdbool.h>
#include <string.h>

/* FNV-1a, seeded so that ids chosen by clients cannot aim at a bucket. */
static inline unsigned long gw_hs_hash(const void *key, unsigned long seed)
{
    unsigned long h = 14695981039346656037UL ^ seed;

    for (const unsigned char *p = key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211UL;
    return h;
}

static inline bool gw_hs_equal(const void *a, const void *b)
{
    return strcmp(a, b) == 0;
}

#endif
