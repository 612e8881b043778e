/*
 * matcher_int.h - what the four rooms of the indicator matcher share: the
 * sections of a prepared matcher (the same flat arrays on the heap after
 * pc_matcher_prepare() and in a read-only mapping after pc_matcher_load()),
 * the matcher itself, and small helpers. Not installed; the contract is
 * pc_matcher.h.
 *
 *   matcher.c        lifecycle, adding patterns, counters
 *   matcher_build.c  pc_matcher_prepare(): the tables and the automaton
 *   matcher_match.c  matching names, addresses and hashes against them
 *   matcher_file.c   the compiled file: save, validate, load, metadata
 */
#ifndef PC_MATCHER_INT_H
#define PC_MATCHER_INT_H

#include "internal.h"
#include "pc_matcher.h"

/* ---- sections of the prepared matcher / compiled file ------------------ */
enum {
    S_PARAMS,   /* uint32[P_COUNT] */
    S_DBUCK,    /* uint32[buckets + 1]: first entry of each bucket (the top bits of the key) */
    S_DKEY,     /* uint32[domains]: pc_mix32(hash) of each entry, entries sorted by it */
    S_DSOFF,    /* uint32[domains + 1]: entry e's string is DSTR[soff[e] .. soff[e+1]) */
    S_DSTR,     /* uint8[]: folded domain strings, in entry order */
    S_DID,      /* uint32[domains]: the id, or D_MANY | word index in DIDS of (count, ids...) */
    S_DIDS,     /* uint32[]: id lists of the entries with several ids (or one id >= D_MANY) */
    S_DBLOOM,   /* uint32[bits / 32]: bit d_bloom_bit(key) set for every entry */
    S_KCLS,     /* uint8[256]: byte -> class of the keyword automaton */
    S_KTRANS,   /* uint32[states * classes]: the complete transition function */
    S_KOUT,     /* uint32[states]: keyword entry + 1 ending here, 0 = none */
    S_KDICT,    /* uint32[states]: next state + 1 on the failure chain with an output */
    S_KENT,     /* uint32[2 * keywords]: ids offset, ids count */
    S_KIDS,     /* uint32[] */
    S_IGRP,     /* uint32[4 * groups]: version, prefix length, start, count */
    S_IADDR,    /* uint8[16 * prefixes], masked, sorted within each group */
    S_IIDS,     /* uint32[prefixes] */
    S_H1KEY,    /* uint8[20 * n], sorted */
    S_H1IDS,    /* uint32[n] */
    S_H2KEY,    /* uint8[32 * n], sorted */
    S_H2IDS,    /* uint32[n] */
    S_MOFF,     /* uint32[records + 1] (only in files) */
    S_MBLOB,    /* uint8[] (only in files) */
    S_COUNT
};

enum {
    P_DBUCK, P_DENT, P_DMIN, P_DMAX, P_KSTATES, P_KCLS, P_KENT, P_IGRP, P_IN,
    P_H1, P_H2, P_NMETA, P_IDS, P_DBITS, P_COUNT_ = 16
};

/*
 * The domain table (format 2) is sorted rather than hashed into slots: about
 * 13 bytes per domain besides its string (8 bits of filter, half a bucket
 * word, key, string offset, id) where format 1's half-empty slot table took
 * 25, so 1 M domains stay far below a Pi Zero's memory. Its indexes are
 * checked where they are used (matcher_match.c), not at load, so loading
 * touches none of its pages.
 */
#define D_MANY 0x80000000u

/* The shift that leaves the top log2(buckets) bits of a key (its bucket); buckets is a power of two. */
static inline unsigned d_shift(uint32_t buckets)
{
    unsigned shift = 32;
    while (buckets > 1) {
        buckets >>= 1;
        shift--;
    }
    return shift;
}

/* The bucket of key for that shift (64-bit, so a shift of 32 is defined). */
static inline uint32_t d_bucket(uint32_t key, unsigned shift)
{
    return (uint32_t)((uint64_t)key >> shift);
}

/* The filter bit of key: mixed again, so it does not repeat the bucket's bits. */
static inline uint32_t d_bloom_bit(uint32_t key, uint32_t bits)
{
    return pc_mix32(key ^ 0x9e3779b9u) & (bits - 1);
}

#define ST_ADDING   0
#define ST_PREPARED 1

/* A growable array of the staging area. */
typedef struct vec {
    uint8_t *p;
    size_t n;     /* bytes used */
    size_t cap;
} vec;

/* A staged string pattern: where its bytes are in the staging pool. */
typedef struct srec {
    uint32_t off, len, id;
} srec;

typedef struct iprec {
    uint8_t addr[16];
    uint8_t ver, plen;
    uint32_t id;
} iprec;

typedef struct hrec {
    uint8_t key[32];
    uint8_t len;
    uint32_t id;
} hrec;

struct pc_matcher {
    int state;
    int loaded;              /* sections point into map / filebuf */
    /* staging (adding state) */
    vec dstr, drec, kstr, krec, ips, hashes;
    /* prepared tables */
    const uint8_t *sec[S_COUNT];
    uint64_t secsz[S_COUNT];
    uint32_t par[P_COUNT_];
    void *owned[S_COUNT];    /* heap sections of a built matcher */
    void *map;               /* mmap of a loaded file */
    size_t maplen;
    void *filebuf;           /* pc_matcher_load_mem copy */
    int fd;                  /* the mapped file, kept open for pc_matcher_metadata_copy (-1: none) */
    uint64_t moff_at, mblob_at; /* file offsets of the metadata sections (loaded matchers) */
    char err[200];
};

/* ASCII case folding, one table for every room (filled by pc_m_fold_init()). */
extern uint8_t pc_m_fold[256];
void pc_m_fold_init(void);

/* Sets the matcher's error message (printf format); NULL m is allowed. */
void pc_m_seterr(pc_matcher *m, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The same into a caller's buffer (load errors, before a matcher exists); NULL or 0 is allowed. */
void pc_m_seterrbuf(char *buf, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Appends len bytes to v; PC_OK or PC_ERR_NOMEM. */
int pc_m_vec_push(vec *v, const void *data, size_t len);

/* Frees v's bytes and empties it. */
void pc_m_vec_free(vec *v);

/* The prefix of an IPv4-mapped IPv6 address (::ffff:0:0/96): IPv4 is stored and matched as such. */
extern const uint8_t pc_m_v4mapped[12];

/* Frees the staged patterns (after prepare, and in pc_matcher_free). */
void pc_m_staging_free(pc_matcher *m);

/* Clears the bits of the 16-byte address a after its first plen. */
void pc_m_mask_addr(uint8_t *a, unsigned plen);

/* FNV-1a over the name from its last byte to its first; pc_mix32 picks the slot. */
#define H_INIT  2166136261u
#define H_STEP(h, c) (((h) ^ (c)) * 16777619u)

static inline uint32_t u32at(const uint8_t *base, size_t i)
{
    /* Sections are 8-byte aligned in memory and in the file; memcpy still keeps
     * ARMv6 and strict aliasing out of it (compilers make it one load). */
    uint32_t v;
    memcpy(&v, base + 4 * i, 4);
    return v;
}

#endif
