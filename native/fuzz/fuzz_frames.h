/*
 * fuzz_frames.h - the input layout fuzz_packet.c and fuzz_format.c share (so
 * the seeds of one work for the other): byte 0 picks a link type of the
 * table below, byte 1 is options, then records of a 2-byte big-endian
 * length and that many frame bytes.
 */
#ifndef FUZZ_FRAMES_H
#define FUZZ_FRAMES_H

#include <stdlib.h>
#include <string.h>

#include "pocketcheck.h"

/* Every DLT the packet path decodes. */
static const int LINKTYPES[] = {1, 113, 276, 12, 14, 101, 228, 229, 0, 108, 239};
#define NLINK (sizeof LINKTYPES / sizeof LINKTYPES[0])

/*
 * The next record at data[*off] (off < size): a heap copy of exactly its
 * bytes, so AddressSanitizer sees any read past the frame (the caller frees
 * it), or NULL when out of memory. A record whose length runs past the end,
 * or a last single byte, takes what is left. Advances *off past the record
 * and sets *len.
 */
static inline uint8_t *fz_next_frame(const uint8_t *data, size_t size, size_t *off, size_t *len)
{
    size_t n;
    uint8_t *frame;
    if (size - *off >= 2) {
        n = (size_t)data[*off] << 8 | data[*off + 1];
        *off += 2;
        if (n > size - *off)
            n = size - *off;
    } else {
        n = size - *off;
    }
    frame = malloc(n ? n : 1);
    if (frame)
        memcpy(frame, data + *off, n);
    *off += n;
    *len = n;
    return frame;
}

#endif
