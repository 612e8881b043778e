/*
 * internal.h - the contract between the packet path (capture.c and friends:
 * link, IP, fragments, TCP streams, flows, the event queue) and the payload
 * parsers (app.c, dns.c, tls.c, http.c, quic.c). Not installed, not seen by
 * Python.
 *
 * Rules for every parser:
 *  - never read past the length it was given; data may end anywhere;
 *  - multi-byte fields are read with the pc_rd* helpers below (no unaligned
 *    loads: the Pi Zero W is ARMv6);
 *  - output only through pc_emit(), which copies what it is given.
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
    /* The packet's own addresses and MACs (not flipped to client-first), for
     * parsers that care who sent it (DHCP). */
    uint8_t  pkt_src_mac[6];
    uint8_t  pkt_dst_mac[6];
} pc_meta;

/* The engine state that owns the event queue; defined in engine.c. */
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

/*
 * For C unit tests of one parser: the engine of a feed reader, so a test can
 * call pc_dns_message() and friends directly and read the events back with
 * pc_reader_next().
 */
pc_ctx *pc_reader_ctx(pc_reader *r);

/* ---- UDP payloads ------------------------------------------------------- */
/*
 * Per-flow state a UDP parser may hang on a flow (QUIC CRYPTO reassembly).
 * The packet path stores the pointer in the flow, passes it back on every
 * datagram of the flow, and calls pc_app_udp_end() exactly once when the
 * flow ends (FIN of input, idle, eviction), which must free it.
 */
typedef struct pc_udp_app pc_udp_app;   /* defined in quic.c (the only UDP parser with state) */

/* One whole UDP datagram (after IP reassembly), either direction. */
void pc_app_udp(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len);

/* The flow ends: emit what partial data allows, free *app, set it to NULL. */
void pc_app_udp_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app);

/* ---- TCP streams -------------------------------------------------------- */
/* Small per-direction parser state kept by the packet path inside the flow. */
typedef struct pc_dirstate {
    uint8_t  app;        /* which parser owns this direction (0 = not chosen yet) */
    uint8_t  done;       /* 1: the parser wants no more bytes */
    uint16_t u16;
    uint32_t u32[4];
} pc_dirstate;

#define PC_STREAM_MORE 0
#define PC_STREAM_DONE 1

/*
 * The packet path calls this with the in-order bytes of one TCP direction
 * that no earlier call consumed (it keeps the unconsumed tail, up to
 * pc_limits.max_stream_bytes). final is 1 when no more bytes will come for
 * this direction (FIN, RST, a missing segment, the buffer bound, eviction,
 * end of input): the parser must then report whatever the bytes allow.
 * *consumed (<= len) is how many leading bytes may be discarded.
 * Returns PC_STREAM_DONE when the direction needs no more data (the packet
 * path may then stop buffering it), else PC_STREAM_MORE.
 * m->from_client tells the direction.
 */
int pc_app_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
               const uint8_t *data, size_t len, int final, size_t *consumed);

/* ---- parsers shared between modules ------------------------------------ */
/* One DNS message (UDP payload or one TCP-framed message without its length). */
void pc_dns_message(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len);

/*
 * One TLS handshake message of type ClientHello, starting at its 4-byte
 * handshake header (type 1, 24-bit length). len may be shorter than the
 * message (truncated = 1): report what is there. kind is PC_EV_TLS_SNI or
 * PC_EV_QUIC_SNI (JA4 starts with 't' or 'q'). Returns PC_OK or PC_ERR_FORMAT.
 */
int pc_tls_client_hello(pc_ctx *cx, const pc_meta *m, uint32_t kind,
                        const uint8_t *hs, size_t len, int truncated);

/* A QUIC long-header datagram (client or server); per-flow state in *app. */
void pc_quic_datagram(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len);
void pc_quic_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app);

#endif
