/*
 * libFuzzer driver for the TOML reader. Besides crashes and sanitizer
 * reports it checks the contract of gw/toml.h on every input: an error has
 * a line inside the input and a message, a success holds well-formed
 * entries, and gw_toml_parse_int agrees with what the parser accepted.
 */
#include "gw/error.h"
#include "gw/toml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines in data: the highest line number an error may name. */
static unsigned fuzz_lines(const uint8_t *data, size_t size)
{
    unsigned n = 1;

    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n;
}

static void fuzz_check_entry(const gw_toml_entry_t *e, unsigned lines)
{
    char text[24];
    int64_t v;

    if (e->key[0] == '\0' || e->line < 1 || e->line > lines)
        abort();
    if (e->type == GW_TOML_STRING && e->v.s.ptr[e->v.s.len] != '\0')
        abort();
    if (e->type != GW_TOML_INT)
        return;
    /* What the parser read, printed back, reads back the same. */
    snprintf(text, sizeof(text), "%lld", (long long)e->v.i);
    if (gw_toml_parse_int(text, strlen(text), &v) != 0 || v != e->v.i)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_toml_doc_t doc;
    gw_toml_error_t err;
    unsigned lines = fuzz_lines(data, size);
    int64_t v;
    int rc;

    rc = gw_toml_parse((const char *)data, size, &doc, &err);
    if (rc == 0) {
        for (size_t i = 0; i < doc.n; i++)
            fuzz_check_entry(&doc.entries[i], lines);
        gw_toml_free(&doc);
    } else if ((rc != GW_EPARSE && rc != GW_ETOOBIG) || err.line < 1 ||
               err.line > lines || err.msg[0] == '\0' || doc.n != 0) {
        abort();
    }
    rc = gw_toml_parse_int((const char *)data, size, &v);
    if (rc != 0 && rc != GW_EPARSE && rc != GW_ETOOBIG)
        abort();
    return 0;
}
