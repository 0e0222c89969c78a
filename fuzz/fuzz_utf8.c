/*
 * libFuzzer driver for gw_utf8_valid: every input, and its suffixes at the
 * next seven offsets (so the 8-byte fast path sees every alignment), must
 * get the verdict of a plain decode-then-judge reference. A mismatch aborts.
 */
#include "gw/utf8.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes each code point in full, then judges it: a different shape from
 * the lead-byte ranges of src/utf8.c, so the two do not share a mistake. */
static int ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, len, k;
    uint32_t cp;

    while (i < n) {
        len = s[i] < 0x80   ? 1
              : s[i] < 0xC0 ? 0
              : s[i] < 0xE0 ? 2
              : s[i] < 0xF0 ? 3
              : s[i] < 0xF8 ? 4
                            : 0;
        if (len == 0 || n - i < len)
            return 0;
        cp = len == 1 ? s[i] : s[i] & (0x7Fu >> len);
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t off = 0; off < 8 && off <= size; off++)
        if (gw_utf8_valid(data + off, size - off) !=
            ref_valid(data + off, size - off))
            abort();
    return 0;
}
