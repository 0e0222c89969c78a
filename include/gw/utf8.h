/* UTF-8 validation for text messages (RFC 3629; wslay does not check it). */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns 1 if s[0..len) is well-formed UTF-8: no overlong forms, no
 * surrogates (U+D800..DFFF), nothing above U+10FFFF, no truncated sequence.
 */
int gw_utf8_valid(const uint8_t *s, size_t len);

#endif
