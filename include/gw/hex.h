/* Hexadecimal digits, shared by the parsers (percent-escapes, \u escapes,
 * session ids). */
#ifndef GW_HEX_H
#define GW_HEX_H

/* The value of hex digit c (either case), or -1. */
static inline int gw_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes the 2n lowercase hex digits of in[0..n) into out (no NUL). */
static inline void gw_hex_encode(const unsigned char *in, int n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

/* Reads the 2n hex digits of in (either case) into out[0..n): 0, or -1
 * at the first character that is not a hex digit. */
static inline int gw_hex_decode(const char *in, int n, unsigned char *out)
{
    for (int i = 0; i < n; i++) {
        int hi = gw_hex_value(in[2 * i]), lo = gw_hex_value(in[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

#endif
