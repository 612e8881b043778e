/*
 * text.c - untrusted bytes made safe to show (the contract is in text.h).
 * The parsers run every string they report through it, so the events hold
 * only printable ASCII plus escapes.
 */
#include "text.h"

/* ASCII-safe copy; contract in text.h. */
size_t pc_text_escape(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = src[i];
        if (c >= 0x20 && c <= 0x7e && c != '\\') {
            if (o + 1 > cap)
                break;
            dst[o++] = (char)c;
        } else if (c == '\\') {
            if (o + 2 > cap)
                break;
            dst[o++] = '\\';
            dst[o++] = '\\';
        } else {
            if (o + 4 > cap)
                break;
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}
