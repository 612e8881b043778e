/*
 * flow.c - the flow table: TCP and UDP flows keyed by their two endpoints
 * (a hash with a per-reader seed, bounded at max_flows), two LRU lists,
 * idle expiry and eviction, the FLOW event when a flow ends, and the TCP
 * flags that start, establish and end a flow. The rules are in
 * native/README.md ("Flows: ..."). A TCP direction's bytes go on to
 * stream.c, a UDP datagram to the dispatcher.
 *
 * Called by ip.c (segments, datagrams), link.c (expiry) and reader.c (end
 * of input); calls stream.c, dispatch.c and the event queue.
 */
#include "flow.h"

/* UDP has no end marker; a UDP flow idle this long ends (capped by
 * flow_idle_s). DNS exchanges finish within seconds, QUIC sends keepalives. */
#define UDP_IDLE_MAX_S 60u

/* ---- hashing and the LRU lists ------------------------------------------ */

static uint32_t rd32h(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint32_t ep_hash(const uint8_t *a, uint16_t port, int ipver, uint32_t seed)
{
    uint32_t h = (rd32h(a) ^ seed) * 0x9e3779b1u;
    if (ipver == 6) {
        h = (h ^ rd32h(a + 4)) * 0x9e3779b1u;
        h = (h ^ rd32h(a + 8)) * 0x9e3779b1u;
        h = (h ^ rd32h(a + 12)) * 0x9e3779b1u;
    }
    return pc_mix32(h ^ port);
}

/*
 * Symmetric in the two endpoints, so both directions land in one bucket.
 * The per-reader seed keeps crafted traffic from predicting collisions
 * (long hash chains) without changing any result: only the bucket differs.
 */
static uint32_t flow_hash(const pc_ctx *cx, int ipver, int proto, const uint8_t *a, uint16_t pa,
                          const uint8_t *b, uint16_t pb)
{
    return pc_mix32((ep_hash(a, pa, ipver, cx->seed) ^ ep_hash(b, pb, ipver, cx->seed)) +
                 (uint32_t)(proto << 8 | ipver));
}

static void lru_unlink(pc_lru *l, pc_flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_push_front(pc_lru *l, pc_flow *f)
{
    f->prev = NULL;
    f->next = l->head;
    if (l->head)
        l->head->prev = f;
    l->head = f;
    if (!l->tail)
        l->tail = f;
}

#define END_NORMAL  0
#define END_EVICTED 1

/*
 * Ends a flow: final parser calls, the FLOW event, then the flow goes back
 * to the free list. The flow pointer is invalid afterwards.
 */
static void flow_end(pc_ctx *cx, pc_flow *f, int how)
{
    if (f->proto == 6) {
        for (int di = 0; di < 2; di++) {
            pc_dir *d = &f->dir[di];
            if (!d->stopped && d->ooo) {
                /* A hole that never filled: what is contiguous goes out as final. */
                cx->st.stream_gaps++;
                pc_dir_final(cx, f, di, NULL, 1);
            } else {
                pc_dir_final(cx, f, di, NULL, 0);
            }
        }
    } else {
        pc_meta m;
        pc_flow_meta(cx, f, NULL, 1, &m);
        pc_app_udp_end(cx, &m, &f->udp_app);
        f->udp_app = NULL;
    }

    int status;
    pc_meta em;
    pc_flow_meta(cx, f, NULL, 1, &em);
    pc_event *e = pc_queue_event(cx, &em, 0, &status);
    if (e) {
        e->ts_ns = f->last_ns;
        e->kind = PC_EV_FLOW;
        e->flags = how == END_EVICTED ? PC_EVF_EVICTED : 0;
        e->first_ns = f->first_ns;
        e->last_ns = f->last_ns;
        e->pkts[0] = f->pkts[0];
        e->pkts[1] = f->pkts[1];
        e->bytes[0] = f->bytes[0];
        e->bytes[1] = f->bytes[1];
        e->tcp_state = f->tcp_state;
    }
    if (how == END_EVICTED)
        cx->st.flows_evicted++;

    /* Unlink from the hash chain and the LRU list. */
    pc_flow **pp = &cx->buckets[f->hash & cx->mask];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    lru_unlink(&cx->lru[f->list], f);
    cx->nflows--;
    for (int di = 0; di < 2; di++)
        pc_dir_free_buffers(cx, &f->dir[di]);
    f->hnext = cx->freelist;
    cx->freelist = f;
}

/* The least recently used flow over both lists (the eviction victim). */
static pc_flow *lru_oldest(pc_ctx *cx)
{
    pc_flow *a = cx->lru[0].tail, *b = cx->lru[1].tail;
    if (!a)
        return b;
    if (!b)
        return a;
    return a->seen_ns <= b->seen_ns ? a : b;
}

static int64_t idle_ns(const pc_ctx *cx, int list)
{
    uint32_t s = cx->lim.flow_idle_s;
    if (list == 1 && s > UDP_IDLE_MAX_S)
        s = UDP_IDLE_MAX_S;
    return (int64_t)s * NS_PER_S;
}

/* Queue room left before expiry work should pause (keeps the queue small). */
static int queue_has_room(const pc_ctx *cx)
{
    return pc_queue_pending(cx) < cx->lim.max_queue_events / 2;
}

/* Ends flows idle longer than their timeout, oldest first, while the queue has room. */
void pc_flow_expire_idle(pc_ctx *cx)
{
    for (int l = 0; l < 2; l++) {
        int64_t lim = idle_ns(cx, l);
        while (cx->lru[l].tail && cx->now - cx->lru[l].tail->seen_ns > lim && queue_has_room(cx))
            flow_end(cx, cx->lru[l].tail, END_EVICTED);
    }
}

static pc_flow *flow_lookup(pc_ctx *cx, int ipver, int proto, const uint8_t *src, const uint8_t *dst,
                            uint16_t sport, uint16_t dport, uint32_t h, int *from_client)
{
    for (pc_flow *f = cx->buckets[h & cx->mask]; f; f = f->hnext) {
        if (f->hash != h || f->ipver != ipver || f->proto != proto)
            continue;
        if (f->sport == sport && f->dport == dport && !memcmp(f->src, src, 16) && !memcmp(f->dst, dst, 16)) {
            *from_client = 1;
            return f;
        }
        if (f->sport == dport && f->dport == sport && !memcmp(f->src, dst, 16) && !memcmp(f->dst, src, 16)) {
            *from_client = 0;
            return f;
        }
    }
    return NULL;
}

/* Creates a flow with (csrc, cport) as the client; evicts the LRU flow when full. */
static pc_flow *flow_create(pc_ctx *cx, int ipver, int proto, const uint8_t *csrc, const uint8_t *sdst,
                            uint16_t cport, uint16_t sport, uint32_t h)
{
    if (cx->nflows >= cx->lim.max_flows) {
        pc_flow *victim = lru_oldest(cx);
        if (victim)
            flow_end(cx, victim, END_EVICTED);
    }
    pc_flow *f = cx->freelist;
    if (f) {
        cx->freelist = f->hnext;
    } else {
        f = pc_malloc(sizeof *f);
        if (!f) {
            cx->st.events_dropped++;
            return NULL;
        }
    }
    memset(f, 0, sizeof *f);
    f->hash = h;
    f->ipver = (uint8_t)ipver;
    f->proto = (uint8_t)proto;
    f->list = proto == 6 ? 0 : 1;
    f->sport = cport;
    f->dport = sport;
    memcpy(f->src, csrc, 16);
    memcpy(f->dst, sdst, 16);
    f->id = ++cx->next_id;
    f->first_ns = f->last_ns = cx->cur_ts;
    f->seen_ns = cx->now;
    f->hnext = cx->buckets[h & cx->mask];
    cx->buckets[h & cx->mask] = f;
    lru_push_front(&cx->lru[f->list], f);
    cx->nflows++;
    cx->st.flows++;
    return f;
}

/* Per-packet accounting and LRU refresh. */
static void flow_touch(pc_ctx *cx, pc_flow *f, const pc_pkt *pk, int from_client, uint32_t iplen)
{
    int di = from_client ? 0 : 1;
    f->pkts[di]++;
    f->bytes[di] += iplen;
    if (cx->cur_ts > f->last_ns)
        f->last_ns = cx->cur_ts;
    f->seen_ns = cx->now;
    /* The client's MAC: the source of its packets, or the destination of
     * the server's (a flow picked up at the server's packet). */
    if (!f->has_mac && from_client && pk->has_src_mac) {
        memcpy(f->mac, pk->src_mac, 6);
        f->has_mac = 1;
    } else if (!f->has_mac && !from_client && pk->has_dst_mac) {
        memcpy(f->mac, pk->dst_mac, 6);
        f->has_mac = 1;
    }
    pc_lru *l = &cx->lru[f->list];
    if (l->head != f) {
        lru_unlink(l, f);
        lru_push_front(l, f);
    }
}

/* ---- TCP and UDP ------------------------------------------------------------ */

/* One TCP segment between src and dst (see engine.h): flags, the flow, then its direction's stream. */
void pc_flow_tcp(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                 const uint8_t *p, size_t n, uint32_t iplen, int cut)
{
    if (n < 20) {
        cx->st.malformed++;
        return;
    }
    uint16_t sport = pc_rd16(p), dport = pc_rd16(p + 2);
    uint32_t seq = pc_rd32(p + 4);
    size_t hl = (size_t)(p[12] >> 4) * 4;
    uint8_t fl = p[13];
    if (hl < 20 || hl > n) {
        cx->st.malformed++;
        return;
    }
    int syn = fl & 0x02, ack = fl & 0x10, fin = fl & 0x01, rst = fl & 0x04;
    const uint8_t *data = p + hl;
    uint32_t dlen = (uint32_t)(n - hl);

    uint32_t h = flow_hash(cx, ipver, 6, src, sport, dst, dport);
    int from_client = 1;
    pc_flow *f = flow_lookup(cx, ipver, 6, src, dst, sport, dport, h, &from_client);
    if (!f) {
        /* Only a SYN or data starts a flow: the last ACK after FIN/FIN or a
         * stray RST of a flow already ended must not create a new one. */
        if (!syn && dlen == 0)
            return;
        if (syn && ack) {
            f = flow_create(cx, ipver, 6, dst, src, dport, sport, h);
            from_client = 0;
        } else {
            f = flow_create(cx, ipver, 6, src, dst, sport, dport, h);
            from_client = 1;
        }
        if (!f)
            return;
    }
    flow_touch(cx, f, pk, from_client, iplen);
    int di = from_client ? 0 : 1;
    pc_dir *d = &f->dir[di];

    if (syn) {
        if (ack) {
            f->tcp_state |= PC_TCP_SYNACK;
            f->synack_seen = 1;
        } else {
            f->tcp_state |= PC_TCP_SYN;
        }
        if (!d->seq_known) {
            d->next_seq = seq + 1; /* the SYN takes one sequence number */
            d->seq_known = 1;
        }
        seq++;
    } else if (ack && from_client && f->synack_seen) {
        f->tcp_state |= PC_TCP_ESTABLISHED;
    }
    if (fin)
        f->tcp_state |= PC_TCP_FIN;
    if (rst) {
        f->tcp_state |= PC_TCP_RST;
        /* Data on a RST is not delivered (the peer discards it too). */
        flow_end(cx, f, END_NORMAL);
        return;
    }
    pc_tcp_data(cx, f, di, pk, seq, data, dlen, fin, cut);
    if (f->dir[0].fin && f->dir[1].fin)
        flow_end(cx, f, END_NORMAL);
}

/* One UDP datagram's payload of a flow (see engine.h): accounting, then the dispatcher. */
void pc_flow_udp(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                 uint16_t sport, uint16_t dport, const uint8_t *data, size_t dlen,
                 uint32_t iplen, int cut)
{
    uint32_t h = flow_hash(cx, ipver, 17, src, sport, dst, dport);
    int from_client = 1;
    pc_flow *f = flow_lookup(cx, ipver, 17, src, dst, sport, dport, h, &from_client);
    if (!f) {
        /* A DNS response that starts a flow (its query was not captured):
         * the asker, its destination, is the client, as the receiver of a
         * SYN-ACK is for TCP. */
        if (sport == 53 && dport != 53) {
            f = flow_create(cx, ipver, 17, dst, src, dport, sport, h);
            from_client = 0;
        } else {
            f = flow_create(cx, ipver, 17, src, dst, sport, dport, h);
        }
        if (!f)
            return;
    }
    flow_touch(cx, f, pk, from_client, iplen);
    pc_meta m;
    pc_flow_meta(cx, f, pk, from_client, &m);
    m.truncated = (uint8_t)(cut != 0);
    pc_app_udp(cx, &m, &f->udp_app, data, dlen);
}

/* ---- end of input, end of the reader ----------------------------------------- */

/* Ends the next flow at end of input (oldest first); 0 when none is left. */
int pc_flow_flush_one(pc_ctx *cx)
{
    pc_flow *f = lru_oldest(cx);
    if (!f)
        return 0;
    flow_end(cx, f, END_NORMAL);
    return 1;
}

/* Frees every flow of both lists and the free list (pc_reader_free). */
void pc_flow_free_all(pc_ctx *cx)
{
    for (int l = 0; l < 2; l++) {
        pc_flow *f = cx->lru[l].head;
        while (f) {
            pc_flow *n = f->next;
            if (f->udp_app) {
                pc_meta m;
                pc_flow_meta(cx, f, NULL, 1, &m);
                pc_app_udp_end(cx, &m, &f->udp_app);
            }
            for (int di = 0; di < 2; di++)
                pc_dir_free_buffers(cx, &f->dir[di]);
            pc_free(f);
            f = n;
        }
    }
    while (cx->freelist) {
        pc_flow *n = cx->freelist->hnext;
        pc_free(cx->freelist);
        cx->freelist = n;
    }
}
