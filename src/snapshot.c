/*
 * A drained session's snapshot, as bytes for Redis (docs/continuity.md
 * section 3). The layout, every integer little-endian and fixed-width:
 *
 *   "GWS" 0x01                  magic, then the version
 *   str owner, str user         str: u8 length, then that many bytes
 *   u8 flags                    bit 0: bounded; the other bits are 0
 *   u16 nallowed, nallowed str  present only when bounded
 *   u16 nguilds, nguilds str
 *   u64 seq, u32 nentries
 *   nentries x (u64 id, u32 len, len bytes of body)
 *
 * Fixed widths rather than varints: every snapshot then has exactly one
 * encoding (the fuzzer checks that decoding and encoding again gives the
 * input back byte for byte), and the bodies outweigh the few bytes a
 * varint would save. A new layout takes a new version byte; a decoder
 * rejects a version it does not know rather than guess.
 *
 * The decoder reads bytes from Redis, which another instance (or anything
 * that can write to Redis) put there: every length is checked against the
 * bytes left before it is used, every count against its bound and against
 * the bytes left before an array is sized from it, so that a short input
 * can never reserve much memory.
 */
#include "gw/snapshot.h"

#include "gw/alloc.h"
#include "gw/error.h"

#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_MAGIC "GWS\x01"
#define SNAPSHOT_MAGIC_LEN 4
#define SNAPSHOT_BOUNDED 0x01 /* the one flag defined */
#define SNAPSHOT_MIN_STR 2    /* bytes of the shortest string: length, 1 */
#define SNAPSHOT_MIN_ENTRY 12 /* bytes of an empty body's entry: id, len */

_Static_assert(GW_SNAPSHOT_MAX_OWNER <= UINT8_MAX &&
                   GW_SNAPSHOT_MAX_ID <= GW_SNAPSHOT_MAX_OWNER,
               "a string's length must fit its one byte");
_Static_assert(GW_SNAPSHOT_MAX_BODY <= UINT32_MAX,
               "a body's length must fit its four bytes and a frame's len");

/* --- Encoding ----------------------------------------------------------- */

/* Appends the low width bytes of v, least significant first. */
static void snapshot_put_uint(gw_buf_t *out, uint64_t v, size_t width)
{
    unsigned char b[8];

    for (size_t i = 0; i < width; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    gw_buf_append(out, (const char *)b, width);
}

/*
 * Appends s with its length. A string that its byte cannot count (or
 * NULL) is written empty, which the decoder rejects, rather than cut to
 * a different id that would decode.
 */
static void snapshot_put_str(gw_buf_t *out, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n > UINT8_MAX)
        n = 0;
    snapshot_put_uint(out, n, 1);
    if (n > 0)
        gw_buf_append(out, s, n);
}

static void snapshot_put_strs(gw_buf_t *out, char *const *strs, uint16_t n)
{
    snapshot_put_uint(out, n, 2);
    for (uint16_t i = 0; i < n; i++)
        snapshot_put_str(out, strs[i]);
}

static void snapshot_put_entry(gw_buf_t *out, const gw_frame_t *body)
{
    snapshot_put_uint(out, body->id, 8);
    snapshot_put_uint(out, body->len, 4);
    gw_buf_append(out, body->data, body->len);
}

void gw_snapshot_encode(const gw_snapshot_t *snap, gw_buf_t *out)
{
    gw_buf_append(out, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_LEN);
    snapshot_put_str(out, snap->owner);
    snapshot_put_str(out, snap->user);
    snapshot_put_uint(out, snap->bounded ? SNAPSHOT_BOUNDED : 0, 1);
    if (snap->bounded)
        snapshot_put_strs(out, snap->allowed, snap->nallowed);
    snapshot_put_strs(out, snap->guilds, snap->nguilds);
    snapshot_put_uint(out, snap->seq, 8);
    snapshot_put_uint(out, snap->nentries, 4);
    for (uint32_t i = 0; i < snap->nentries; i++)
        snapshot_put_entry(out, snap->entries[i].body);
}

/* --- Decoding ----------------------------------------------------------- */

/* The bytes not yet read. */
typedef struct snapshot_reader {
    const unsigned char *p;
    size_t left;
} snapshot_reader_t;

/* Points *out at the next n bytes and steps over them, if there are n. */
static int snapshot_take(snapshot_reader_t *r, size_t n,
                         const unsigned char **out)
{
    if (r->left < n)
        return GW_EPARSE;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

/* Reads a width-byte little-endian integer. */
static int snapshot_uint(snapshot_reader_t *r, size_t width, uint64_t *v)
{
    const unsigned char *p;

    if (snapshot_take(r, width, &p) != 0)
        return GW_EPARSE;
    *v = 0;
    for (size_t i = width; i-- > 0;)
        *v = *v << 8 | p[i];
    return 0;
}

/*
 * Reads a string of 1..max bytes into a NUL-terminated copy. A NUL inside
 * would make the copy a different, shorter id, so it is malformed.
 */
static int snapshot_str(snapshot_reader_t *r, size_t max, char **out)
{
    const unsigned char *p;
    uint64_t n;

    if (snapshot_uint(r, 1, &n) != 0 || n == 0 || n > max ||
        snapshot_take(r, (size_t)n, &p) != 0 ||
        memchr(p, '\0', (size_t)n) != NULL)
        return GW_EPARSE;
    *out = gw_strndup((const char *)p, (size_t)n);
    return 0;
}

/*
 * Reads a count of items of at least min bytes each. One over max, or
 * more than the bytes left could hold, is malformed: checked before an
 * array is sized from it.
 */
static int snapshot_count(snapshot_reader_t *r, size_t width, uint64_t max,
                          size_t min, uint64_t *n)
{
    if (snapshot_uint(r, width, n) != 0 || *n > max || *n > r->left / min)
        return GW_EPARSE;
    return 0;
}

/*
 * Reads a list of at most max ids into *strs (NULL when empty). The count
 * is set as soon as the array exists, so that on an error the caller's
 * free finds the strings read so far (the rest are NULL).
 */
static int snapshot_strs(snapshot_reader_t *r, uint64_t max, char ***strs,
                         uint16_t *count)
{
    uint64_t n;

    if (snapshot_count(r, 2, max, SNAPSHOT_MIN_STR, &n) != 0)
        return GW_EPARSE;
    if (n == 0)
        return 0;
    *strs = gw_calloc((size_t)n, sizeof(**strs));
    *count = (uint16_t)n;
    for (size_t i = 0; i < n; i++)
        if (snapshot_str(r, GW_SNAPSHOT_MAX_ID, &(*strs)[i]) != 0)
            return GW_EPARSE;
    return 0;
}

static int snapshot_magic(snapshot_reader_t *r)
{
    const unsigned char *p;

    if (snapshot_take(r, SNAPSHOT_MAGIC_LEN, &p) != 0 ||
        memcmp(p, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_LEN) != 0)
        return GW_EPARSE;
    return 0;
}

/* Reads the flags and, when the token bounded the guilds, its claim.
 * Undefined flags are malformed: they would mean a layout we do not know. */
static int snapshot_claim(snapshot_reader_t *r, gw_snapshot_t *out)
{
    uint64_t flags;

    if (snapshot_uint(r, 1, &flags) != 0 || (flags & ~SNAPSHOT_BOUNDED) != 0)
        return GW_EPARSE;
    out->bounded = (flags & SNAPSHOT_BOUNDED) != 0;
    if (!out->bounded)
        return 0;
    return snapshot_strs(r, GW_SNAPSHOT_MAX_ALLOWED, &out->allowed,
                         &out->nallowed);
}

/* Reads one entry into a new frame, adding its length to *total. */
static int snapshot_entry(snapshot_reader_t *r, uint64_t *total,
                          gw_snapshot_entry_t *e)
{
    const unsigned char *p;
    uint64_t id, len;

    if (snapshot_uint(r, 8, &id) != 0 || snapshot_uint(r, 4, &len) != 0 ||
        len > GW_SNAPSHOT_MAX_BODY || (*total += len) > GW_SNAPSHOT_MAX_BYTES ||
        snapshot_take(r, (size_t)len, &p) != 0)
        return GW_EPARSE;
    e->body = gw_frame_new((size_t)len);
    e->body->id = id;
    memcpy(e->body->data, p, (size_t)len);
    return 0;
}

/* Reads seq and the entries; as with the strings, nentries is set as soon
 * as the array exists and the bodies not yet read are NULL. */
static int snapshot_entries(snapshot_reader_t *r, gw_snapshot_t *out)
{
    uint64_t n, total = 0;

    if (snapshot_uint(r, 8, &out->seq) != 0 ||
        snapshot_count(r, 4, GW_SNAPSHOT_MAX_ENTRIES, SNAPSHOT_MIN_ENTRY, &n) !=
            0 ||
        n > out->seq)
        return GW_EPARSE;
    if (n == 0)
        return 0;
    out->entries = gw_calloc((size_t)n, sizeof(*out->entries));
    out->nentries = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        if (snapshot_entry(r, &total, &out->entries[i]) != 0)
            return GW_EPARSE;
    return 0;
}

int gw_snapshot_decode(const char *buf, size_t len, gw_snapshot_t *out)
{
    snapshot_reader_t r = {(const unsigned char *)buf, len};

    memset(out, 0, sizeof(*out));
    if (snapshot_magic(&r) != 0 ||
        snapshot_str(&r, GW_SNAPSHOT_MAX_OWNER, &out->owner) != 0 ||
        snapshot_str(&r, GW_SNAPSHOT_MAX_ID, &out->user) != 0 ||
        snapshot_claim(&r, out) != 0 ||
        snapshot_strs(&r, GW_SNAPSHOT_MAX_GUILDS, &out->guilds,
                      &out->nguilds) != 0 ||
        snapshot_entries(&r, out) != 0 || r.left != 0)
        goto Error;
    return 0;

Error:
    gw_snapshot_free(out);
    return GW_EPARSE;
}

/* --- Freeing ------------------------------------------------------------ */

static void snapshot_free_strs(char **strs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(strs[i]);
    free(strs);
}

void gw_snapshot_free(gw_snapshot_t *snap)
{
    free(snap->owner);
    free(snap->user);
    snapshot_free_strs(snap->allowed, snap->nallowed);
    snapshot_free_strs(snap->guilds, snap->nguilds);
    /* A body is NULL only past where a failed decode stopped. */
    for (uint32_t i = 0; i < snap->nentries; i++)
        if (snap->entries[i].body != NULL)
            gw_frame_unref(snap->entries[i].body);
    free(snap->entries);
    memset(snap, 0, sizeof(*snap));
}

/* --- The overlap of a handoff ------------------------------------------ */

static int snapshot_id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Fills ids with the snapshot's distinct non-zero ids, sorted, and counts
 * with how often each occurs; returns how many are distinct. Both arrays
 * hold nentries.
 */
static size_t snapshot_id_counts(const gw_snapshot_t *snap, uint64_t *ids,
                                 uint32_t *counts)
{
    size_t m = 0, d = 0;

    for (uint32_t i = 0; i < snap->nentries; i++)
        if (snap->entries[i].body->id != 0)
            ids[m++] = snap->entries[i].body->id;
    if (m == 0)
        return 0;
    qsort(ids, m, sizeof(*ids), snapshot_id_cmp);
    for (size_t i = 0; i < m; i++) {
        if (d > 0 && ids[d - 1] == ids[i]) {
            counts[d - 1]++;
        } else {
            ids[d] = ids[i];
            counts[d++] = 1;
        }
    }
    return d;
}

/* The count of id among the d distinct ids, or NULL when it is not one. */
static uint32_t *snapshot_id_find(const uint64_t *ids, uint32_t *counts,
                                  size_t d, uint64_t id)
{
    const uint64_t *p;

    if (d == 0)
        return NULL;
    p = bsearch(&id, ids, d, sizeof(*ids), snapshot_id_cmp);
    return p != NULL ? &counts[p - ids] : NULL;
}

size_t gw_snapshot_dedupe(const gw_snapshot_t *snap, const uint64_t *held,
                          size_t n, uint8_t *keep)
{
    uint64_t *ids;
    uint32_t *counts, *c;
    size_t d, kept = 0;

    if (n == 0)
        return 0;
    /* One more than needed, so that no snapshot asks for zero bytes. */
    ids = gw_malloc(((size_t)snap->nentries + 1) * sizeof(*ids));
    counts = gw_malloc(((size_t)snap->nentries + 1) * sizeof(*counts));
    d = snapshot_id_counts(snap, ids, counts);
    /* Held ids are walked oldest first, so each of a snapshot id's k
     * copies cancels the earliest held one still uncancelled. */
    for (size_t i = 0; i < n; i++) {
        c = held[i] != 0 ? snapshot_id_find(ids, counts, d, held[i]) : NULL;
        keep[i] = c == NULL || *c == 0;
        if (!keep[i])
            (*c)--;
        kept += keep[i];
    }
    free(ids);
    free(counts);
    return kept;
}
