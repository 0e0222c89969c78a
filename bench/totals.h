/*
 * Figures of gatewayd's GET /stats answer: the named numbers of its
 * "totals" object, read into a struct of doubles by a table of names and
 * offsets (the presence and resume scenarios read their own sets).
 */
#ifndef BENCH_TOTALS_H
#define BENCH_TOTALS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct totals_field {
    const char *name; /* the key in "totals" */
    size_t offset;    /* of the double it goes to */
} totals_field_t;

/* Reads each field of doc's "totals" into out. Returns 0, or -1 when one
 * is missing or not a number (out is then zeroed, size bytes). */
int totals_read(const cJSON *doc, const totals_field_t *fields, size_t n,
                void *out, size_t size);

#endif
