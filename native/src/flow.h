/*
 * flow.h - a flow and its two TCP directions, shared by flow.c (the flow
 * table) and stream.c (TCP reassembly per direction). Packet path only.
 */
#ifndef PC_FLOW_H
#define PC_FLOW_H

#include "dispatch.h"
#include "engine.h"

/* An out-of-order TCP segment, kept in a per-direction list sorted by seq. */
typedef struct pc_seg {
    struct pc_seg *next;
    uint32_t seq;
    uint32_t len;
    uint8_t data[];
} pc_seg;

/* One direction of a TCP flow. */
typedef struct pc_dir {
    pc_dirstate ds;
    uint8_t *buf;        /* in-order bytes the parser has not consumed */
    uint32_t len, cap;
    uint32_t next_seq;   /* the sequence number of the next in-order byte */
    uint32_t fin_seq;    /* valid when fin: the sequence number of the FIN */
    uint8_t seq_known;   /* next_seq is set (SYN or first data seen) */
    uint8_t fin;         /* FIN seen */
    uint8_t stopped;     /* nothing more goes to the parser */
    uint8_t pad;
    uint32_t nooo;
    pc_seg *ooo;
} pc_dir;

struct pc_flow {
    struct pc_flow *hnext;          /* hash chain */
    struct pc_flow *prev, *next;    /* LRU list: head = most recently used */
    uint32_t hash;
    uint8_t ipver, proto, has_mac, list;
    uint16_t sport, dport;          /* client first */
    uint8_t src[16], dst[16];
    uint8_t mac[6];
    uint8_t synack_seen, pad;
    uint32_t tcp_state;
    uint64_t id;
    int64_t first_ns, last_ns;
    int64_t seen_ns;                /* reader time (latest packet time) of the last packet: idle and LRU */
    uint64_t pkts[2], bytes[2];
    pc_udp_app *udp_app;
    pc_dir dir[2];                  /* TCP only: [0] client->server */
};

/* The pc_meta of a payload of flow f; pk (NULL at a flow's end) gives the packet's own MACs and cut. */
static inline void pc_flow_meta(const pc_ctx *cx, const pc_flow *f, const pc_pkt *pk, int from_client,
                                pc_meta *m)
{
    m->frame = cx->frame;
    m->ts_ns = cx->cur_ts;
    m->flow_id = f->id;
    m->ipver = f->ipver;
    m->proto = f->proto;
    m->sport = f->sport;
    m->dport = f->dport;
    memcpy(m->src, f->src, 16);
    memcpy(m->dst, f->dst, 16);
    memcpy(m->mac, f->mac, 6);
    m->has_mac = f->has_mac;
    m->from_client = (uint8_t)from_client;
    m->truncated = pk ? pk->truncated : 0;
    /* All zero when the link layer carries no such address (SLL has no
     * destination, NFLOG and raw IP none): never a device's MAC. */
    memset(m->pkt_src_mac, 0, 6);
    memset(m->pkt_dst_mac, 0, 6);
    if (pk && pk->has_src_mac)
        memcpy(m->pkt_src_mac, pk->src_mac, 6);
    if (pk && pk->has_dst_mac)
        memcpy(m->pkt_dst_mac, pk->dst_mac, 6);
}

/* ---- stream.c ------------------------------------------------------------- */
/* Frees a direction's buffered bytes and held segments. */
void pc_dir_free_buffers(pc_ctx *cx, pc_dir *d);

/*
 * Hands direction di's buffered tail to the parser one last time (final = 1;
 * truncated marks it cut) and stops the direction.
 */
void pc_dir_final(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, int truncated);

/* One TCP segment's payload (and FIN) for direction di, seq after the SYN; cut: the snapshot length cut it. */
void pc_tcp_data(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, uint32_t seq,
                 const uint8_t *data, uint32_t n, int fin, int cut);

#endif
