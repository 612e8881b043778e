/*
 * engine.h - the packet path's shared state and the calls between its
 * rooms. Included by reader.c, link.c, ip.c, flow.c, stream.c and events.c
 * (which owns the queue fields of pc_ctx); never by a parser.
 *
 * Who calls whom (no cycle; native/README.md draws it):
 *   capture.c -> reader.c -> link.c -> ip.c -> flow.c -> stream.c
 *   flow.c, stream.c -> dispatch.c -> the parsers -> events.c
 *   reader.c, flow.c -> events.c (queue); reader.c -> flow.c, ip.c (flush, free)
 */
#ifndef PC_ENGINE_H
#define PC_ENGINE_H

#include <signal.h>

#include "events.h"
#include "reader.h"

#define NS_PER_S 1000000000LL

typedef struct pc_flow pc_flow;   /* flow.h */
typedef struct pc_frag pc_frag;   /* ip.c */

/* A list of flows, head = most recently used. */
typedef struct pc_lru {
    pc_flow *head, *tail;
} pc_lru;

/* What the link layer found out about the current packet. */
typedef struct pc_pkt {
    uint8_t src_mac[6], dst_mac[6];
    uint8_t has_src_mac, has_dst_mac;
    uint8_t truncated;              /* caplen < wirelen */
} pc_pkt;

struct pc_ctx {
    pc_limits lim;
    pc_stats st;
    const pc_source_ops *ops;
    void *src;
    int linktype;
    int status;                     /* pc_reader_status() */
    int input_status;               /* how the input ended, once ended */
    int input_done;                 /* no more packets will be read */
    int finished;                   /* input_done and every flow flushed */
    volatile sig_atomic_t stop_req;
    char err[256];

    uint64_t frame;
    int64_t now;                    /* the latest packet time seen */
    int64_t cur_ts;                 /* the current packet's time */

    /* flows (flow.c, stream.c) */
    pc_flow **buckets;
    uint32_t mask;
    uint32_t seed;                  /* flow hash seed */
    uint32_t nflows;
    pc_lru lru[2];                  /* [0] TCP, [1] UDP */
    pc_flow *freelist;
    uint64_t next_id;
    size_t stream_mem;

    /* IP fragments (ip.c) */
    pc_frag *frags, *frags_tail;
    size_t frag_mem;

    /* the event queue and the parsers' budget (events.c) */
    size_t app_mem;                 /* pc_budget_take() bytes */
    pc_event *q;
    uint32_t qhead, qlen, qcap;
    uint8_t *arena;
    size_t alen, acap;
};

struct pc_reader {
    pc_ctx cx;
};

/* ---- events.c: the queue ------------------------------------------------ */
/*
 * Reserves one queue slot with room for nstr bytes of strings and fills its
 * flow fields from m; counts the event. Returns NULL (and counts the drop in
 * events_dropped, with PC_ERR_LIMIT or PC_ERR_NOMEM in *status) when the
 * queue or its string budget is full or memory runs out.
 */
pc_event *pc_queue_event(pc_ctx *cx, const pc_meta *m, size_t nstr, int *status);

/* Queued events not yet handed out. */
uint32_t pc_queue_pending(const pc_ctx *cx);

/*
 * Copies queued events into ev[*out..cap) and their strings into strbuf
 * (strcap bytes, *used so far); advances *out and *used. Rules in
 * native/README.md ("The event queue"). Returns how many were copied.
 */
size_t pc_queue_drain(pc_ctx *cx, pc_event *ev, size_t cap, size_t *out,
                      uint8_t *strbuf, size_t strcap, size_t *used);

/* Frees the queue's storage (pc_reader_free). */
void pc_queue_free(pc_ctx *cx);

/* ---- link.c ------------------------------------------------------------ */
/* pc_engine_packet() (reader.h) is the entry: link -> IP -> transport. */

/* ---- ip.c --------------------------------------------------------------- */
/* An IP packet (version from its first nibble); depth counts tunnels. cut: the snapshot length cut it. */
void pc_ip_packet(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut);
void pc_ipv4(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut);
void pc_ipv6(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut);

/* Drops pending fragments older than the reassembly timeout. */
void pc_frag_expire(pc_ctx *cx);

/* Drops every pending datagram, counting its fragments (end of input). */
void pc_frag_drop_all(pc_ctx *cx);

/* Frees every pending datagram without counting (pc_reader_free). */
void pc_frag_free_all(pc_ctx *cx);

/* ---- flow.c ------------------------------------------------------------- */
/* One TCP segment (header included) between src and dst; iplen counts the flow's bytes. */
void pc_flow_tcp(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                 const uint8_t *p, size_t n, uint32_t iplen, int cut);

/* One UDP datagram's payload (header already checked by ip.c). */
void pc_flow_udp(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                 uint16_t sport, uint16_t dport, const uint8_t *data, size_t dlen,
                 uint32_t iplen, int cut);

/* Ends flows idle longer than their timeout, oldest first, while the queue has room. */
void pc_flow_expire_idle(pc_ctx *cx);

/* Ends the least recently used flow (end of input); 0 when none is left. */
int pc_flow_flush_one(pc_ctx *cx);

/* Frees every flow, releasing parser state through pc_app_udp_end() (pc_reader_free). */
void pc_flow_free_all(pc_ctx *cx);

#endif
