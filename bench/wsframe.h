/*
 * Client side of RFC 6455 framing for the load generator.
 *
 * Reading: server frames are unmasked, so a client needs no copy to find a
 * payload. wsframe_parse() is a pure scanner over (buf, len); the reader
 * built on it takes the bytes of each socket read, hands every complete
 * message to a callback straight from the read buffer when it can, and
 * keeps only an unfinished tail (or a fragmented message) in a heap buffer
 * of its own, so an idle client holds no buffer at all.
 *
 * Writing: client frames must be masked. They are encoded by wslay's frame
 * layer through one context per client loop (wsframe_enc_t), which is
 * enough because encoding into memory always completes in one call.
 */
#ifndef BENCH_WSFRAME_H
#define BENCH_WSFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    WSFRAME_CONT = 0x0,
    WSFRAME_TEXT = 0x1,
    WSFRAME_BINARY = 0x2,
    WSFRAME_CLOSE = 0x8,
    WSFRAME_PING = 0x9,
    WSFRAME_PONG = 0xa,
};

/* Errors of the scanner and reader: what the server got wrong. */
enum {
    WSFRAME_ERR_MASKED = -1,   /* a server frame must not be masked */
    WSFRAME_ERR_RSV = -2,      /* reserved bits without an extension */
    WSFRAME_ERR_OPCODE = -3,   /* reserved opcode */
    WSFRAME_ERR_CONTROL = -4,  /* control frame fragmented or > 125 bytes */
    WSFRAME_ERR_TOO_BIG = -5,  /* over the reader's message limit */
    WSFRAME_ERR_SEQUENCE = -6, /* continuation out of place */
};

/* Largest header a client frame takes: 2 + 8 length bytes + 4 mask bytes. */
#define WSFRAME_MAX_HEADER 14

typedef struct wsframe {
    unsigned fin;
    unsigned opcode;
    const uint8_t *payload;
    size_t len;
} wsframe_t;

/*
 * Scans one frame at buf. Returns the frame's whole size (header and
 * payload) and fills f when it is complete, 0 when more bytes are needed,
 * or a WSFRAME_ERR_* when the header breaks the rules. Frames longer than
 * max_len are refused before their payload arrives.
 */
ssize_t wsframe_parse(const uint8_t *buf, size_t len, size_t max_len,
                      wsframe_t *f);

/* Called with each complete message (fragments joined) and each control
 * frame; a nonzero return stops the feed and is returned by it. */
typedef int (*wsframe_msg_cb)(void *ud, unsigned opcode, const uint8_t *data,
                              size_t len);

typedef struct wsframe_reader {
    uint8_t *tail;   /* unparsed bytes kept between reads; NULL when none */
    size_t tail_len; /* bytes in tail */
    size_t tail_cap; /* allocated size of tail */
    uint8_t *msg;    /* payload of a fragmented message being joined */
    size_t msg_len;
    size_t msg_cap;
    unsigned msg_opcode; /* opcode of that message; 0 when none */
} wsframe_reader_t;

/* A reader with no buffered state. */
void wsframe_reader_init(wsframe_reader_t *r);

/* Frees whatever r buffers; r may be fed again afterwards. */
void wsframe_reader_reset(wsframe_reader_t *r);

/*
 * Feeds the bytes of one read. Calls cb for every message or control frame
 * completed; keeps what is left. Returns 0, a WSFRAME_ERR_*, or the first
 * nonzero value cb returned (what followed that message is dropped).
 */
int wsframe_reader_feed(wsframe_reader_t *r, const uint8_t *data, size_t len,
                        size_t max_len, wsframe_msg_cb cb, void *ud);

typedef struct wsframe_enc wsframe_enc_t;

/* A masking encoder. seed starts its mask generator. */
wsframe_enc_t *wsframe_enc_new(uint64_t seed);
void wsframe_enc_free(wsframe_enc_t *e);

/*
 * Encodes one final frame with a fresh mask into out, which must hold
 * len + WSFRAME_MAX_HEADER bytes. Returns the frame's size, or -1 when
 * wslay refuses it (a control frame over 125 bytes).
 */
ssize_t wsframe_encode(wsframe_enc_t *e, unsigned opcode,
                       const uint8_t *payload, size_t len, uint8_t *out);

#endif
