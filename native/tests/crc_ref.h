/*
 * crc_ref.h - a bitwise CRC-32 (IEEE 802.3), independent of the matcher's
 * table-driven one, for the test and the fuzz harness that damage compiled
 * files behind a valid checksum.
 */
#ifndef PC_CRC_REF_H
#define PC_CRC_REF_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

#endif
