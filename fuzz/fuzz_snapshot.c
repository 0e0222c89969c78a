/*
 * The snapshot decoder on arbitrary bytes, as another instance (or
 * anything that can write to Redis) might leave them. An input that
 * decodes must be the one encoding of what it decoded to: encoding that
 * again gives the input back byte for byte, and decodes to an equal
 * snapshot. The overlap of the snapshot with its own ids, held in the
 * same order, cancels every one but the ids 0. Everything is freed, so
 * LeakSanitizer sees any reference a failed decode left behind.
 */
#include "gw/error.h"
#include "gw/snapshot.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static void fuzz_same_strs(char **a, char **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fuzz_check(strcmp(a[i], b[i]) == 0);
}

static void fuzz_same(const gw_snapshot_t *a, const gw_snapshot_t *b)
{
    fuzz_check(strcmp(a->owner, b->owner) == 0);
    fuzz_check(strcmp(a->user, b->user) == 0);
    fuzz_check(a->bounded == b->bounded && a->nallowed == b->nallowed);
    fuzz_same_strs(a->allowed, b->allowed, a->nallowed);
    fuzz_check(a->nguilds == b->nguilds);
    fuzz_same_strs(a->guilds, b->guilds, a->nguilds);
    fuzz_check(a->seq == b->seq && a->nentries == b->nentries);
    for (uint32_t i = 0; i < a->nentries; i++) {
        const gw_frame_t *x = a->entries[i].body, *y = b->entries[i].body;

        fuzz_check(x->id == y->id && x->len == y->len);
        fuzz_check(memcmp(x->data, y->data, x->len) == 0);
    }
}

/* Every field within its bound, as the decoder promises. */
static void fuzz_bounded(const gw_snapshot_t *s)
{
    fuzz_check(strlen(s->owner) - 1 < GW_SNAPSHOT_MAX_OWNER);
    fuzz_check(strlen(s->user) - 1 < GW_SNAPSHOT_MAX_ID);
    fuzz_check(s->bounded || (s->allowed == NULL && s->nallowed == 0));
    fuzz_check(s->nallowed <= GW_SNAPSHOT_MAX_ALLOWED);
    fuzz_check(s->nentries <= GW_SNAPSHOT_MAX_ENTRIES && s->nentries <= s->seq);
}

/* Held in the snapshot's own order, its ids cancel all but the zeros. */
static void fuzz_dedupe(const gw_snapshot_t *s)
{
    uint64_t *held = malloc((s->nentries + 1) * sizeof(*held));
    uint8_t *keep = malloc(s->nentries + 1);
    size_t zeros = 0;

    for (uint32_t i = 0; i < s->nentries; i++) {
        held[i] = s->entries[i].body->id;
        zeros += held[i] == 0;
    }
    fuzz_check(gw_snapshot_dedupe(s, held, s->nentries, keep) == zeros);
    for (uint32_t i = 0; i < s->nentries; i++)
        fuzz_check(keep[i] == (held[i] == 0));
    free(held);
    free(keep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_snapshot_t s, again;
    gw_buf_t b = {0};
    /* An exact-size copy, so that ASan sees any read past size. */
    char *in = malloc(size ? size : 1);
    int rc;

    memcpy(in, data, size);
    rc = gw_snapshot_decode(in, size, &s);
    free(in);
    if (rc != 0) {
        /* Nothing left to free: the struct reads as zeroed. */
        memset(&again, 0, sizeof(again));
        fuzz_check(rc == GW_EPARSE && memcmp(&s, &again, sizeof(s)) == 0);
        return 0;
    }
    fuzz_bounded(&s);
    gw_snapshot_encode(&s, &b);
    fuzz_check(b.len == size && memcmp(b.data, data, size) == 0);
    fuzz_check(gw_snapshot_decode(b.data, b.len, &again) == 0);
    fuzz_same(&s, &again);
    fuzz_dedupe(&s);
    gw_snapshot_free(&again);
    gw_snapshot_free(&s);
    free(b.data);
    return 0;
}
