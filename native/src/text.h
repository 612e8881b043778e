/*
 * text.h - making untrusted bytes safe to show (text.c). Used by the
 * parsers for every string they report; depends on nothing of the core.
 */
#ifndef PC_TEXT_H
#define PC_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copies n bytes of src into dst (cap bytes) as ASCII-safe text: bytes
 * 0x20..0x7e except the backslash are kept, every other byte becomes
 * "\xHH" and the backslash "\\". Stops before a character that would not
 * fit whole. Returns the number of bytes written (dst is not NUL-terminated).
 */
size_t pc_text_escape(char *dst, size_t cap, const uint8_t *src, size_t n);

#endif
