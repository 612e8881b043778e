/*
 * events.h - what a payload parser may use of the core: where a payload came
 * from (pc_meta), how to report what it found (pc_emit), the malformed
 * counter and the budget for per-flow parser state. events.c implements it,
 * below every parser: it calls no parser and no part of the packet path, so
 * a parser that includes this header (and text.h) sees nothing of flows,
 * streams or the reader.
 *
 * Rules for every parser:
 *  - never read past the length it was given; data may end anywhere;
 *  - multi-byte fields are read with the pc_rd* helpers of internal.h;
 *  - output only through pc_emit(), which copies what it is given.
 */
#ifndef PC_EVENTS_H
#define PC_EVENTS_H

#include "internal.h"

/* ---- where a payload came from ----------------------------------------- */
/* Filled by the packet path for every payload it hands to a parser. */
typedef struct pc_meta {
    uint64_t frame;      /* frame that completed this payload */
    int64_t  ts_ns;
    uint64_t flow_id;
    uint8_t  ipver;      /* 4 or 6 */
    uint8_t  proto;      /* 6 or 17 */
    uint16_t sport;      /* of the flow: client (initiator) side first */
    uint16_t dport;
    uint8_t  src[16];    /* client */
    uint8_t  dst[16];    /* server */
    uint8_t  mac[6];     /* client's MAC */
    uint8_t  has_mac;
    uint8_t  from_client; /* 1: this payload travels client -> server */
    uint8_t  truncated;   /* 1: the payload was cut (snaplen, missing segment) */
    /* The packet's own MACs (not flipped to client-first), for parsers that
     * care who sent it (DHCP, DNS responses); all zero when unknown. */
    uint8_t  pkt_src_mac[6];
    uint8_t  pkt_dst_mac[6];
} pc_meta;

/* The reader's state, opaque to the parsers (defined in engine.h). */
typedef struct pc_ctx pc_ctx;

/* ---- emitting events ---------------------------------------------------- */
typedef struct pc_bytes {
    const uint8_t *p;
    size_t n;
} pc_bytes;

/* What a parser found; strings are copied by pc_emit(). */
typedef struct pc_out {
    uint32_t kind;       /* PC_EV_* */
    uint32_t flags;      /* PC_EVF_* */
    uint16_t rrtype;
    uint32_t ttl;
    uint32_t index;
    pc_bytes name, data, s1, s2, s3;
} pc_out;

/*
 * Queues one event with the flow fields of m. Copies every string. Returns
 * PC_OK, or PC_ERR_NOMEM / PC_ERR_LIMIT when the event was dropped (counted
 * in pc_stats.events_dropped); parsers may ignore the return.
 */
int pc_emit(pc_ctx *cx, const pc_meta *m, const pc_out *o);

/* Counts a payload that failed to decode (pc_stats.malformed). */
void pc_count_malformed(pc_ctx *cx);

/*
 * One reader-wide budget for parser state kept in flows (QUIC CRYPTO
 * buffers), so that memory stays bounded however many flows are open:
 * pc_budget_take() returns 0 when n more bytes fit (and counts them), -1
 * when they do not (the parser then keeps what it has); pc_budget_give()
 * returns bytes taken earlier.
 */
int pc_budget_take(pc_ctx *cx, size_t n);
void pc_budget_give(pc_ctx *cx, size_t n);

#endif
