/*
 * A small TOML reader for the configuration file: the subset gateway.toml
 * needs and nothing more. Pure, like every parser here: bytes in, a list of
 * entries or an error with its line number out; no file I/O.
 *
 * Supported: comments, blank lines, [table] headers (dotted names allowed),
 * `key = value` with bare keys (A-Za-z0-9_-), basic strings "..." with the
 * TOML escapes (\" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX), literal strings
 * '...', decimal integers (sign and underscores allowed, no leading zeros)
 * and booleans. Floats, dates, arrays, inline tables, multi-line strings,
 * quoted and dotted keys are rejected as unsupported rather than skipped,
 * so a config written for a richer parser never half-loads.
 */
#ifndef GW_TOML_H
#define GW_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Entries (keys plus table headers) one document may hold. Conflicts are
 * found by scanning the entries, so the cap also bounds the parse time of
 * hostile input; a real config holds a few dozen.
 */
#define GW_TOML_MAX_ENTRIES 1024

typedef enum gw_toml_type {
    GW_TOML_TABLE,  /* a [table] header; no value */
    GW_TOML_STRING, /* v.s */
    GW_TOML_INT,    /* v.i */
    GW_TOML_BOOL,   /* v.b */
} gw_toml_type_t;

typedef struct gw_toml_entry {
    char *key; /* full dotted name: "server.ws_port", or "server"
                  for the header [server]; owned */
    gw_toml_type_t type;
    unsigned line; /* 1-based line of the key or header */
    union {
        struct {
            char *ptr;  /* decoded UTF-8, NUL-terminated; owned */
            size_t len; /* bytes before the terminator; a \u0000
                           escape can put a NUL inside */
        } s;
        int64_t i;
        bool b;
    } v;
} gw_toml_entry_t;

typedef struct gw_toml_doc {
    gw_toml_entry_t *entries; /* in file order */
    size_t n;
    size_t cap; /* allocated slots of entries */
} gw_toml_doc_t;

typedef struct gw_toml_error {
    unsigned line; /* 1-based line of the error; 0 if none */
    char msg[160]; /* one sentence, no file name or line prefix */
} gw_toml_error_t;

/*
 * Parses buf[0..len) (not NUL-terminated) into `doc`. Returns 0, or
 * GW_EPARSE (syntax, unsupported construct, duplicate key or table) or
 * GW_ETOOBIG (an integer beyond 64 bits, more than GW_TOML_MAX_ENTRIES
 * entries) with `err` filled in; on error doc holds nothing to free.
 * On success free doc with gw_toml_free.
 */
int gw_toml_parse(const char *buf, size_t len, gw_toml_doc_t *doc,
                  gw_toml_error_t *err);

/* Frees what gw_toml_parse stored in doc; safe on a zeroed doc. */
void gw_toml_free(gw_toml_doc_t *doc);

/*
 * Parses s[0..len) as a TOML decimal integer: the same grammar as values in
 * a file, so command-line overrides accept exactly what the file does.
 * Returns 0, GW_EPARSE (not a decimal integer) or GW_ETOOBIG (does not fit
 * in int64_t).
 */
int gw_toml_parse_int(const char *s, size_t len, int64_t *out);

#endif
