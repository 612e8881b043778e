/*
 * internal.h - the floor every private C file stands on: the public header,
 * the allocation routing (pc_alloc.h) and alignment-free byte readers. It
 * names no other file of the core. Not installed, not seen by Python.
 *
 * Multi-byte fields are read with the pc_rd* helpers below: no unaligned
 * loads, because the Pi Zero W is ARMv6.
 */
#ifndef PC_INTERNAL_H
#define PC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pocketcheck.h"
#include "pc_alloc.h"

/* ---- byte readers (big-endian network order, alignment-free) ----------- */
static inline uint16_t pc_rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t pc_rd24(const uint8_t *p) { return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2]; }
static inline uint32_t pc_rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t pc_rd16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t pc_rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The 32-bit finaliser of MurmurHash3: cheap, and every input bit moves every output bit. */
static inline uint32_t pc_mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

#endif
