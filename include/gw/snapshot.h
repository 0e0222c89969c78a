/*
 * A drained session's snapshot: what one instance hands another through
 * Redis so that the other can restore the session (docs/continuity.md
 * section 3). Encoded on the old instance, decoded on the new one; the
 * bytes come from Redis, so the decoder trusts none of them. Pure: no I/O,
 * one thread per snapshot.
 */
#ifndef GW_SNAPSHOT_H
#define GW_SNAPSHOT_H

#include "gw/buf.h"
#include "gw/frame.h"

#include <stddef.h>
#include <stdint.h>

/* The bounds the decoder enforces. A string's bytes: */
#define GW_SNAPSHOT_MAX_OWNER 255 /* of an instance id */
#define GW_SNAPSHOT_MAX_ID 128    /* of a user or guild id */
/* Counts: */
#define GW_SNAPSHOT_MAX_ALLOWED 65535 /* as many as a token may claim */
#define GW_SNAPSHOT_MAX_GUILDS 65535
#define GW_SNAPSHOT_MAX_ENTRIES 65536
/* Bytes of one entry's body, and of all of them together: */
#define GW_SNAPSHOT_MAX_BODY (UINT32_C(1) << 20)
#define GW_SNAPSHOT_MAX_BYTES (UINT64_C(64) << 20)

typedef struct gw_snapshot_entry {
    gw_frame_t *body; /* owned reference: the dispatch body after
                         {"seq":N, ; body->id is the event identity (0 =
                         none) */
} gw_snapshot_entry_t;

typedef struct gw_snapshot {
    char *owner;       /* owned: the instance id that holds the session
                          (1..GW_SNAPSHOT_MAX_OWNER bytes) */
    char *user;        /* owned: the session's user id (1..GW_SNAPSHOT_MAX_ID
                          bytes) */
    int bounded;       /* whether the token bounded the guilds (allowed is
                          meaningful; bounded with none allows none) */
    char **allowed;    /* owned: the token's guild claim, nallowed strings
                          (each 1..GW_SNAPSHOT_MAX_ID bytes), NULL when none */
    uint16_t nallowed; /* at most GW_SNAPSHOT_MAX_ALLOWED */
    char **guilds;     /* owned: the guilds the session was a member of
                          (each 1..GW_SNAPSHOT_MAX_ID bytes), NULL when
                          none */
    uint16_t nguilds;  /* at most GW_SNAPSHOT_MAX_GUILDS */
    uint64_t seq;      /* the session's last seq: entries are
                          seq - nentries + 1 .. seq, oldest first */
    gw_snapshot_entry_t *entries; /* owned array, NULL when none */
    uint32_t nentries; /* at most GW_SNAPSHOT_MAX_ENTRIES and <= seq */
} gw_snapshot_t;

/*
 * Appends the encoding of snap to out. snap stays the caller's: the
 * entries' bodies are copied into out, no reference is taken or dropped.
 * Every entry must have a body, and allowed (when bounded) and guilds
 * must hold their counts of strings. A snapshot outside the bounds above
 * is still encoded as it is, never as a different valid one: a string
 * that does not fit its one-byte length (or NULL) is written empty, so
 * gw_snapshot_decode rejects the encoding of any snapshot it would not
 * itself produce.
 */
void gw_snapshot_encode(const gw_snapshot_t *snap, gw_buf_t *out);

/*
 * Decodes the len bytes of buf (untrusted: not NUL-terminated, read only
 * within len) into *out, which is zeroed first. Returns 0, and the caller
 * owns what *out holds and frees it with gw_snapshot_free; or GW_EPARSE
 * for anything malformed (bad magic or version, truncation, trailing
 * bytes, a count or length over its bound, an empty string or one holding
 * a NUL byte, nentries > seq, a body over GW_SNAPSHOT_MAX_BODY, bodies
 * over GW_SNAPSHOT_MAX_BYTES in all), and then *out is zeroed again with
 * nothing left to free. Each entry's body is a new frame (gw_frame_new)
 * with one reference, owned by *out, its id set; strings are
 * NUL-terminated copies. Memory grows in proportion to len: no count
 * sizes an array before the bytes that would fill it are seen to exist.
 */
int gw_snapshot_decode(const char *buf, size_t len, gw_snapshot_t *out);

/*
 * Frees what snap owns (strings, arrays, one reference per entry body)
 * and zeroes it; snap itself is the caller's. Safe on a zeroed struct,
 * and so harmless twice.
 */
void gw_snapshot_free(gw_snapshot_t *snap);

/*
 * The overlap of a handoff. Of the n held event ids (oldest first), clears
 * keep[i] for each that the snapshot's entries also carry, counted as a
 * multiset: an id the snapshot carries k times cancels at most k held
 * ones, the earliest held first. Id 0 (none) never matches. Sets keep[i]
 * to 1 for the rest and returns how many were kept. held and keep (n
 * bytes, the caller's) may be NULL when n is 0; snap is only read.
 * O((n + nentries) log nentries) time, O(nentries) memory.
 */
size_t gw_snapshot_dedupe(const gw_snapshot_t *snap, const uint64_t *held,
                          size_t n, uint8_t *keep);

#endif
