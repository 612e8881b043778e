/*
 * engine.c - the packet path: from a raw frame to payloads and events.
 *
 * Link layers (Ethernet + VLAN stacks + PPPoE, Linux SLL/SLL2, raw IP,
 * BSD NULL/LOOP), IPv4 and IPv6 (extension headers), IP fragment
 * reassembly, tunnels (IP-in-IP, 6in4, Teredo), UDP and TCP, the flow
 * table (hash + LRU, bounded), TCP stream reassembly per direction, and the
 * event queue drained by pc_reader_next(). No libpcap here: capture.c plugs
 * a libpcap source in through pkt_engine.h, and feed readers take frames
 * from the caller, so this file builds and tests anywhere.
 *
 * Every structure that grows with the input is bounded (pc_limits plus the
 * two budgets below); native/README.md explains the bounds and the eviction
 * policy.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"
#include "pkt_engine.h"

#define NS_PER_S 1000000000LL

/* Bounds on walks over attacker-controlled headers. */
#define MAX_VLAN_TAGS   8    /* 802.1Q/802.1ad tags stripped from one frame */
#define MAX_V6_EXT      8    /* IPv6 extension headers walked in one packet */
#define MAX_TUNNEL      3    /* IP nesting depth (6in4, IP-in-IP, Teredo) */

/* IP reassembly: datagrams are at most 64 KiB; a datagram incomplete after
 * this long is dropped (RFC 791 suggests 15 s, Linux uses 30 s). */
#define FRAG_MAX_PAYLOAD 65535u
#define FRAG_TIMEOUT_NS  (30LL * NS_PER_S)

/* UDP has no end marker; a UDP flow idle this long ends (capped by
 * flow_idle_s). DNS exchanges finish within seconds, QUIC sends keepalives. */
#define UDP_IDLE_MAX_S 60u

/* All TCP stream buffers and held out-of-order segments together. Without
 * it max_flows * 2 * max_stream_bytes would be the bound (gigabytes). */
#define STREAM_BUDGET (16u << 20)
/* All per-flow parser state together (QUIC CRYPTO reassembly): 8 MiB. */
#define APP_BUDGET (8u << 20)
/* All strings of queued events together. */
#define QUEUE_STR_BUDGET (4u << 20)
/* Out-of-order TCP data further ahead than this is treated as garbage. */
#define OOO_WINDOW (1u << 24)

/* ---- structures -------------------------------------------------------- */

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

typedef struct pc_flow {
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
} pc_flow;

typedef struct pc_lru {
    pc_flow *head, *tail;
} pc_lru;

/* One IP datagram being reassembled. */
typedef struct pc_frag {
    struct pc_frag *next;           /* oldest first */
    uint8_t ipver, proto;           /* proto: IPv4 protocol / IPv6 next header after the fragment header */
    uint8_t truncated, pad;
    uint32_t id;
    uint8_t src[16], dst[16];
    int64_t first_ns;
    uint32_t total;                 /* payload length, known once the last fragment came */
    uint32_t nblocks;               /* 8-byte blocks filled */
    uint32_t cap;
    uint32_t nfrags;
    uint8_t *buf;
    uint8_t bits[(FRAG_MAX_PAYLOAD + 7) / 8 / 8 + 1]; /* one bit per 8-byte block */
} pc_frag;

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

    pc_flow **buckets;
    uint32_t mask;
    uint32_t seed;                  /* flow hash seed */
    uint32_t nflows;
    pc_lru lru[2];                  /* [0] TCP, [1] UDP */
    pc_flow *freelist;
    uint64_t next_id;
    size_t stream_mem;
    size_t app_mem;                 /* pc_budget_take() bytes, at most APP_BUDGET */

    pc_frag *frags, *frags_tail;
    size_t frag_mem;

    pc_event *q;
    uint32_t qhead, qlen, qcap;
    uint8_t *arena;
    size_t alen, acap;
};

struct pc_reader {
    pc_ctx cx;
};

/* ---- small helpers ---------------------------------------------------- */

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

static int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

/* ---- the event queue --------------------------------------------------- */

/* Reserves one queue slot with room for nstr bytes of strings. */
static pc_event *q_reserve(pc_ctx *cx, size_t nstr, int *status)
{
    if (cx->qlen >= cx->lim.max_queue_events || cx->alen + nstr > QUEUE_STR_BUDGET) {
        *status = PC_ERR_LIMIT;
        goto fail;
    }
    if (cx->qlen == cx->qcap) {
        uint32_t ncap = cx->qcap ? cx->qcap * 2 : 64;
        if (ncap > cx->lim.max_queue_events)
            ncap = cx->lim.max_queue_events;
        pc_event *nq = pc_realloc(cx->q, (size_t)ncap * sizeof *nq);
        if (!nq) {
            *status = PC_ERR_NOMEM;
            goto fail;
        }
        cx->q = nq;
        cx->qcap = ncap;
    }
    if (cx->alen + nstr > cx->acap) {
        size_t ncap = cx->acap ? cx->acap : 4096;
        while (ncap < cx->alen + nstr)
            ncap *= 2;
        if (ncap > QUEUE_STR_BUDGET)
            ncap = QUEUE_STR_BUDGET;
        uint8_t *na = pc_realloc(cx->arena, ncap);
        if (!na) {
            *status = PC_ERR_NOMEM;
            goto fail;
        }
        cx->arena = na;
        cx->acap = ncap;
    }
    pc_event *e = &cx->q[cx->qlen++];
    memset(e, 0, sizeof *e);
    *status = PC_OK;
    return e;
fail:
    cx->st.events_dropped++;
    return NULL;
}

static void q_str(pc_ctx *cx, pc_str *dst, const pc_bytes *b)
{
    dst->off = (uint32_t)cx->alen;
    dst->len = (uint32_t)b->n;
    if (b->n) {
        memcpy(cx->arena + cx->alen, b->p, b->n);
        cx->alen += b->n;
    }
}

static void meta_to_event(pc_event *e, const pc_meta *m)
{
    e->frame = m->frame;
    e->ts_ns = m->ts_ns;
    e->flow_id = m->flow_id;
    e->ipver = m->ipver;
    e->proto = m->proto;
    e->sport = m->sport;
    e->dport = m->dport;
    memcpy(e->src, m->src, 16);
    memcpy(e->dst, m->dst, 16);
    memcpy(e->mac, m->mac, 6);
    e->has_mac = m->has_mac;
}

/*
 * Queues one event for the parsers: copies the flow fields of m and every
 * string of o into reader-owned storage. Returns PC_OK, or PC_ERR_LIMIT /
 * PC_ERR_NOMEM when the event was dropped (counted in events_dropped).
 */
int pc_emit(pc_ctx *cx, const pc_meta *m, const pc_out *o)
{
    if (!cx || !m || !o)
        return PC_ERR_ARG;
    const pc_bytes *s[5] = {&o->name, &o->data, &o->s1, &o->s2, &o->s3};
    size_t n = 0;
    for (int i = 0; i < 5; i++) {
        if (s[i]->n && !s[i]->p)
            return PC_ERR_ARG;
        if (s[i]->n > UINT32_MAX)
            return PC_ERR_LIMIT;
        n += s[i]->n;
    }
    int status;
    pc_event *e = q_reserve(cx, n, &status);
    if (!e)
        return status;
    meta_to_event(e, m);
    e->kind = o->kind;
    e->flags = o->flags | (m->truncated ? PC_EVF_PARTIAL : 0);
    e->rrtype = o->rrtype;
    e->ttl = o->ttl;
    e->index = o->index;
    q_str(cx, &e->name, &o->name);
    q_str(cx, &e->data, &o->data);
    q_str(cx, &e->s1, &o->s1);
    q_str(cx, &e->s2, &o->s2);
    q_str(cx, &e->s3, &o->s3);
    cx->st.events++;
    return PC_OK;
}

/* Counts a payload that failed to decode (pc_stats.malformed). */
void pc_count_malformed(pc_ctx *cx)
{
    if (cx)
        cx->st.malformed++;
}

int pc_budget_take(pc_ctx *cx, size_t n)
{
    if (n > APP_BUDGET - cx->app_mem)
        return -1;
    cx->app_mem += n;
    return 0;
}

void pc_budget_give(pc_ctx *cx, size_t n)
{
    cx->app_mem -= n < cx->app_mem ? n : cx->app_mem;
}

/* The engine of a reader, for parser unit tests. NULL for NULL. */
pc_ctx *pc_reader_ctx(pc_reader *r)
{
    return r ? &r->cx : NULL;
}

/* ---- flows ------------------------------------------------------------- */

static void flow_meta(const pc_ctx *cx, const pc_flow *f, const pc_pkt *pk, int from_client,
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
    if (pk) {
        memcpy(m->pkt_src_mac, pk->src_mac, 6);
        memcpy(m->pkt_dst_mac, pk->dst_mac, 6);
    } else {
        memset(m->pkt_src_mac, 0, 6);
        memset(m->pkt_dst_mac, 0, 6);
    }
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

static void dir_free_buffers(pc_ctx *cx, pc_dir *d)
{
    pc_seg *s = d->ooo;
    while (s) {
        pc_seg *n = s->next;
        cx->stream_mem -= sizeof *s + s->len;
        pc_free(s);
        s = n;
    }
    d->ooo = NULL;
    d->nooo = 0;
    cx->stream_mem -= d->cap;
    pc_free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

/* The direction wants nothing more: free its buffers, keep counting packets. */
static void dir_stop(pc_ctx *cx, pc_dir *d)
{
    d->stopped = 1;
    dir_free_buffers(cx, d);
}

/* Hands the buffered tail to the parser one last time (final = 1). */
static void dir_final(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, int truncated)
{
    pc_dir *d = &f->dir[di];
    if (d->stopped)
        return;
    if (d->len > 0) {
        pc_meta m;
        size_t c = 0;
        flow_meta(cx, f, pk, di == 0, &m);
        if (truncated)
            m.truncated = 1;
        pc_app_tcp(cx, &m, &d->ds, d->buf, d->len, 1, &c);
    }
    dir_stop(cx, d);
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
                dir_final(cx, f, di, NULL, 1);
            } else {
                dir_final(cx, f, di, NULL, 0);
            }
        }
    } else {
        pc_meta m;
        flow_meta(cx, f, NULL, 1, &m);
        pc_app_udp_end(cx, &m, &f->udp_app);
        f->udp_app = NULL;
    }

    int status;
    pc_event *e = q_reserve(cx, 0, &status);
    if (e) {
        pc_meta m;
        flow_meta(cx, f, NULL, 1, &m);
        meta_to_event(e, &m);
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
        cx->st.events++;
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
        dir_free_buffers(cx, &f->dir[di]);
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
    return cx->qlen - cx->qhead < cx->lim.max_queue_events / 2;
}

/* Ends flows idle longer than their timeout, oldest first, while the queue has room. */
static void expire_idle(pc_ctx *cx)
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
    if (from_client && !f->has_mac && pk->has_src_mac) {
        memcpy(f->mac, pk->src_mac, 6);
        f->has_mac = 1;
    }
    pc_lru *l = &cx->lru[f->list];
    if (l->head != f) {
        lru_unlink(l, f);
        lru_push_front(l, f);
    }
}

/* ---- TCP streams ------------------------------------------------------- */

/* Grows a direction's buffer to hold need bytes; 0 on success. */
static int dir_reserve(pc_ctx *cx, pc_dir *d, uint32_t need)
{
    if (need <= d->cap)
        return 0;
    uint32_t ncap = d->cap ? d->cap : 2048;
    while (ncap < need)
        ncap *= 2;
    if (ncap > cx->lim.max_stream_bytes)
        ncap = cx->lim.max_stream_bytes;
    if (ncap < need || cx->stream_mem + (ncap - d->cap) > STREAM_BUDGET)
        return -1;
    uint8_t *nb = pc_realloc(d->buf, ncap);
    if (!nb)
        return -1;
    cx->stream_mem += ncap - d->cap;
    d->buf = nb;
    d->cap = ncap;
    return 0;
}

/* Buffer bound reached: the parser gets what fits, final, and the direction stops. */
static void dir_overflow(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk)
{
    cx->st.stream_overflow++;
    dir_final(cx, f, di, pk, 1);
}

/*
 * Delivers n in-order bytes of direction di to the parser. The common case
 * (nothing buffered) hands the packet's own bytes over without a copy and
 * buffers only the unconsumed tail.
 */
static void stream_deliver(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk,
                           const uint8_t *data, uint32_t n)
{
    pc_dir *d = &f->dir[di];
    pc_meta m;
    int meta_ready = 0;

    while (n > 0 && !d->stopped) {
        if (!meta_ready) {
            flow_meta(cx, f, pk, di == 0, &m);
            m.truncated = 0;
            meta_ready = 1;
        }
        if (d->len == 0) {
            size_t c = 0;
            int rc = pc_app_tcp(cx, &m, &d->ds, data, n, 0, &c);
            if (rc == PC_STREAM_DONE) {
                d->ds.done = 1;
                dir_stop(cx, d);
                return;
            }
            if (c > n)
                c = n;
            data += c;
            n -= (uint32_t)c;
            if (n == 0)
                return;
            /* The parser has seen these bytes and wants more: keep them. */
            uint32_t keep = n < cx->lim.max_stream_bytes ? n : cx->lim.max_stream_bytes;
            if (dir_reserve(cx, d, keep) != 0) {
                /* No memory for the tail: the parser sees it once more, as final. */
                cx->st.stream_overflow++;
                m.truncated = 1;
                pc_app_tcp(cx, &m, &d->ds, data, keep, 1, &c);
                dir_stop(cx, d);
                return;
            }
            memcpy(d->buf, data, keep);
            d->len = keep;
            if (keep < n)
                dir_overflow(cx, f, di, pk);
            return;
        }
        uint32_t room = cx->lim.max_stream_bytes - d->len;
        uint32_t take = n < room ? n : room;
        if (take == 0 || dir_reserve(cx, d, d->len + take) != 0) {
            dir_overflow(cx, f, di, pk);
            return;
        }
        memcpy(d->buf + d->len, data, take);
        d->len += take;
        data += take;
        n -= take;
        size_t c = 0;
        int rc = pc_app_tcp(cx, &m, &d->ds, d->buf, d->len, 0, &c);
        if (rc == PC_STREAM_DONE) {
            d->ds.done = 1;
            dir_stop(cx, d);
            return;
        }
        if (c > d->len)
            c = d->len;
        if (c) {
            memmove(d->buf, d->buf + c, d->len - c);
            d->len -= (uint32_t)c;
        } else if (n > 0 && d->len == cx->lim.max_stream_bytes) {
            dir_overflow(cx, f, di, pk);
            return;
        }
    }
}

/* Delivers held out-of-order segments that the in-order edge has reached. */
static void ooo_drain(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk)
{
    pc_dir *d = &f->dir[di];
    while (d->ooo && !d->stopped && !seq_lt(d->next_seq, d->ooo->seq)) {
        pc_seg *s = d->ooo;
        d->ooo = s->next;
        d->nooo--;
        uint32_t skip = d->next_seq - s->seq;
        if (skip < s->len) {
            d->next_seq = s->seq + s->len;
            stream_deliver(cx, f, di, pk, s->data + skip, s->len - skip);
        }
        cx->stream_mem -= sizeof *s + s->len;
        pc_free(s);
    }
}

/* Holds a segment that arrived ahead of a hole; returns -1 when it cannot. */
static int ooo_insert(pc_ctx *cx, pc_dir *d, uint32_t seq, const uint8_t *data, uint32_t n)
{
    if (d->nooo >= cx->lim.max_ooo_segments || cx->stream_mem + sizeof(pc_seg) + n > STREAM_BUDGET)
        return -1;
    pc_seg **pp = &d->ooo;
    while (*pp && seq_lt((*pp)->seq, seq))
        pp = &(*pp)->next;
    if (*pp && (*pp)->seq == seq && (*pp)->len >= n)
        return 0; /* a retransmission of held data: the first copy stays */
    pc_seg *s = pc_malloc(sizeof *s + n);
    if (!s)
        return -1;
    s->seq = seq;
    s->len = n;
    memcpy(s->data, data, n);
    s->next = *pp;
    *pp = s;
    d->nooo++;
    cx->stream_mem += sizeof *s + n;
    return 0;
}

/* A hole that will not fill: contiguous bytes go out as final, the direction stops. */
static void dir_gap(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk)
{
    cx->st.stream_gaps++;
    dir_final(cx, f, di, pk, 1);
}

/* One TCP segment's payload (and FIN) for direction di. */
static void tcp_data(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, uint32_t seq,
                     const uint8_t *data, uint32_t n, int fin, int cut)
{
    pc_dir *d = &f->dir[di];
    if (fin && !d->fin) {
        d->fin = 1;
        d->fin_seq = seq + n;
    }
    if (d->stopped)
        return;
    if (!d->seq_known) {
        if (n == 0)
            return;
        d->next_seq = seq;
        d->seq_known = 1;
    }
    if (n > 0) {
        int32_t off = (int32_t)(seq - d->next_seq);
        if (off <= 0) {
            uint32_t old = (uint32_t)(-(int64_t)off);
            if (old < n) {
                /* New bytes after the part already seen (first copy wins). */
                d->next_seq = seq + n;
                stream_deliver(cx, f, di, pk, data + old, n - old);
                if (cut && !d->stopped) {
                    /* The snapshot length cut this segment: a hole follows. */
                    dir_gap(cx, f, di, pk);
                    return;
                }
                ooo_drain(cx, f, di, pk);
            }
        } else if ((uint32_t)off < OOO_WINDOW) {
            if (ooo_insert(cx, d, seq, data, n) != 0) {
                dir_gap(cx, f, di, pk);
                return;
            }
        }
    }
    if (d->fin && !d->stopped && d->next_seq == d->fin_seq && !d->ooo)
        dir_final(cx, f, di, pk, 0);
}

static void tcp_packet(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
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
    tcp_data(cx, f, di, pk, seq, data, dlen, fin, cut);
    if (f->dir[0].fin && f->dir[1].fin)
        flow_end(cx, f, END_NORMAL);
}

/* ---- UDP ----------------------------------------------------------------- */

static void ip_packet(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut);
static void v6_walk(pc_ctx *cx, const pc_pkt *pk, int nh, const uint8_t *src, const uint8_t *dst,
                    const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut, int frag_ok);

/*
 * Teredo (RFC 4380): IPv6 in UDP port 3544, optionally preceded by an
 * authentication and/or an origin indication header. Returns 1 when the
 * payload was an IPv6 packet and has been decoded.
 */
static int teredo(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n >= 2 && p[0] == 0 && p[1] == 1) { /* authentication header */
        if (n < 4)
            return 0;
        size_t skip = 4 + (size_t)p[2] + p[3] + 8 + 1;
        if (skip > n)
            return 0;
        p += skip;
        n -= skip;
    }
    if (n >= 2 && p[0] == 0 && p[1] == 0) { /* origin indication */
        if (n < 8)
            return 0;
        p += 8;
        n -= 8;
    }
    if (n < 40 || (p[0] >> 4) != 6 || (size_t)pc_rd16(p + 4) + 40 > n)
        return 0;
    ip_packet(cx, pk, p, n, depth + 1, cut);
    return 1;
}

static void udp_packet(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                       const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut)
{
    if (n < 8) {
        cx->st.malformed++;
        return;
    }
    uint16_t sport = pc_rd16(p), dport = pc_rd16(p + 2);
    size_t ulen = pc_rd16(p + 4);
    if (ulen == 0 && ipver == 6) /* jumbogram or offload: trust the IP length */
        ulen = n;
    if (ulen < 8) {
        cx->st.malformed++;
        return;
    }
    if (ulen > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        ulen = n;
    } else {
        cut = 0; /* the snapshot kept the whole datagram */
    }
    const uint8_t *data = p + 8;
    size_t dlen = ulen - 8;
    if ((sport == 3544 || dport == 3544) && depth < MAX_TUNNEL && teredo(cx, pk, data, dlen, depth, cut))
        return;

    uint32_t h = flow_hash(cx, ipver, 17, src, sport, dst, dport);
    int from_client = 1;
    pc_flow *f = flow_lookup(cx, ipver, 17, src, dst, sport, dport, h, &from_client);
    if (!f) {
        f = flow_create(cx, ipver, 17, src, dst, sport, dport, h);
        if (!f)
            return;
    }
    flow_touch(cx, f, pk, from_client, iplen);
    pc_meta m;
    flow_meta(cx, f, pk, from_client, &m);
    m.truncated = (uint8_t)(cut != 0);
    pc_app_udp(cx, &m, &f->udp_app, data, dlen);
}

/* ---- IP ------------------------------------------------------------------ */

static void l4(pc_ctx *cx, const pc_pkt *pk, int ipver, int proto, const uint8_t *src, const uint8_t *dst,
               const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut)
{
    switch (proto) {
    case 6:
        tcp_packet(cx, pk, ipver, src, dst, p, n, iplen, cut);
        break;
    case 17:
        udp_packet(cx, pk, ipver, src, dst, p, n, iplen, depth, cut);
        break;
    case 4:  /* IPv4 in IP */
    case 41: /* IPv6 in IP (6in4, 6to4, ISATAP) */
        if (depth < MAX_TUNNEL)
            ip_packet(cx, pk, p, n, depth + 1, cut);
        break;
    default:
        break; /* ICMP and the rest: nothing for us */
    }
}

static void frag_free(pc_ctx *cx, pc_frag *fr)
{
    cx->frag_mem -= sizeof *fr + fr->cap;
    pc_free(fr->buf);
    pc_free(fr);
}

/* Unlinks and frees the pending datagram *pp; counts its fragments as dropped. */
static void frag_drop(pc_ctx *cx, pc_frag **pp, pc_frag *prev)
{
    pc_frag *fr = *pp;
    *pp = fr->next;
    if (cx->frags_tail == fr)
        cx->frags_tail = prev;
    cx->st.frag_dropped += fr->nfrags;
    frag_free(cx, fr);
}

static void frag_expire(pc_ctx *cx)
{
    while (cx->frags && cx->now - cx->frags->first_ns > FRAG_TIMEOUT_NS)
        frag_drop(cx, &cx->frags, NULL);
}

/*
 * One fragment: off and n in bytes, more = MF. When it completes its
 * datagram, the whole payload goes on to the transport layer. The first
 * copy of any byte wins (overlaps never rewrite data already held), which
 * defeats the classic overlap tricks in one consistent way.
 */
static void frag_add(pc_ctx *cx, const pc_pkt *pk, int ipver, int proto, uint32_t id,
                     const uint8_t *src, const uint8_t *dst, uint32_t off, int more,
                     const uint8_t *p, size_t n, int depth, int cut)
{
    cx->st.fragments++;
    frag_expire(cx);
    uint32_t end = off + (uint32_t)n;
    if (end > FRAG_MAX_PAYLOAD || (more && (n % 8 != 0 || n == 0)) || cut) {
        /* Too big, misaligned, or cut by the snapshot length. */
        cx->st.frag_dropped++;
        return;
    }
    pc_frag *fr = cx->frags, *prev = NULL;
    pc_frag **pp = &cx->frags;
    for (; fr; prev = fr, pp = &fr->next, fr = fr->next) {
        if (fr->id == id && fr->ipver == ipver && fr->proto == proto && !memcmp(fr->src, src, 16) &&
            !memcmp(fr->dst, dst, 16))
            break;
    }
    if (!fr) {
        /* Make room: the oldest pending datagrams go first. */
        while (cx->frags && cx->frag_mem + sizeof *fr + end > cx->lim.max_frag_bytes)
            frag_drop(cx, &cx->frags, NULL);
        if (cx->frag_mem + sizeof *fr + end > cx->lim.max_frag_bytes) {
            cx->st.frag_dropped++;
            return;
        }
        fr = pc_calloc(1, sizeof *fr);
        if (!fr) {
            cx->st.frag_dropped++;
            return;
        }
        fr->ipver = (uint8_t)ipver;
        fr->proto = (uint8_t)proto;
        fr->id = id;
        memcpy(fr->src, src, 16);
        memcpy(fr->dst, dst, 16);
        fr->first_ns = cx->now; /* reader time, as for flows: robust to timestamps going backwards */
        cx->frag_mem += sizeof *fr;
        if (cx->frags_tail)
            cx->frags_tail->next = fr;
        else
            cx->frags = fr;
        prev = cx->frags_tail;
        cx->frags_tail = fr;
        pp = prev ? &prev->next : &cx->frags;
    }
    fr->nfrags++;
    /* Inconsistent ends: drop the whole datagram. */
    if ((!more && fr->total && fr->total != end) || (fr->total && end > fr->total)) {
        frag_drop(cx, pp, prev);
        return;
    }
    if (!more)
        fr->total = end;
    if (end > fr->cap) {
        uint32_t ncap = fr->cap ? fr->cap : 2048;
        while (ncap < end)
            ncap *= 2;
        if (ncap > FRAG_MAX_PAYLOAD)
            ncap = FRAG_MAX_PAYLOAD;
        if (cx->frag_mem + (ncap - fr->cap) > cx->lim.max_frag_bytes)
            ncap = end; /* tight on budget: no slack */
        if (cx->frag_mem + (ncap - fr->cap) > cx->lim.max_frag_bytes) {
            frag_drop(cx, pp, prev);
            return;
        }
        uint8_t *nb = pc_realloc(fr->buf, ncap);
        if (!nb) {
            frag_drop(cx, pp, prev);
            return;
        }
        cx->frag_mem += ncap - fr->cap;
        fr->buf = nb;
        fr->cap = ncap;
    }
    for (uint32_t b = off / 8; b * 8 < end; b++) {
        if (fr->bits[b >> 3] & (1u << (b & 7)))
            continue;
        uint32_t s = b * 8, e = s + 8 < end ? s + 8 : end;
        memcpy(fr->buf + s, p + (s - off), e - s);
        fr->bits[b >> 3] |= (uint8_t)(1u << (b & 7));
        fr->nblocks++;
    }
    if (!fr->total || fr->nblocks != (fr->total + 7) / 8)
        return;

    /* Complete: unlink first, then decode (decoding may add fragments). */
    *pp = fr->next;
    if (cx->frags_tail == fr)
        cx->frags_tail = prev;
    uint8_t s16[16], d16[16];
    memcpy(s16, fr->src, 16);
    memcpy(d16, fr->dst, 16);
    uint32_t iplen = fr->total + (ipver == 4 ? 20 : 40);
    if (ipver == 4) {
        l4(cx, pk, 4, fr->proto, s16, d16, fr->buf, fr->total, iplen, depth, 0);
    } else {
        /* IPv6: the fragmentable part may start with more extension headers. */
        v6_walk(cx, pk, fr->proto, s16, d16, fr->buf, fr->total, iplen, depth, 0, 0);
    }
    frag_free(cx, fr);
}

static void ipv4(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 20) {
        cx->st.malformed++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    size_t tot = pc_rd16(p + 2);
    if (tot == 0) /* TSO/GRO capture: the length field is not filled in */
        tot = n;
    if (ihl < 20 || tot < ihl || ihl > n) {
        cx->st.malformed++;
        return;
    }
    if (tot > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        tot = n; /* cut by the snapshot length */
    } else {
        cut = 0; /* Ethernet padding after tot is ignored */
    }
    uint8_t src[16] = {0}, dst[16] = {0};
    memcpy(src, p + 12, 4);
    memcpy(dst, p + 16, 4);
    uint16_t fo = pc_rd16(p + 6);
    uint32_t off = (uint32_t)(fo & 0x1fff) * 8;
    int more = (fo & 0x2000) != 0;
    if (off || more) {
        frag_add(cx, pk, 4, p[9], pc_rd16(p + 4), src, dst, off, more, p + ihl, tot - ihl, depth, cut);
        return;
    }
    l4(cx, pk, 4, p[9], src, dst, p + ihl, tot - ihl, (uint32_t)tot, depth, cut);
}

/*
 * Walks IPv6 extension headers from next-header nh over p[0..n) and hands
 * the upper layer on. frag_ok is 0 after reassembly (a second fragment
 * header is malformed).
 */
static void v6_walk(pc_ctx *cx, const pc_pkt *pk, int nh, const uint8_t *src, const uint8_t *dst,
                    const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut, int frag_ok)
{
    for (int i = 0; i < MAX_V6_EXT; i++) {
        size_t hl;
        switch (nh) {
        case 0:  /* hop-by-hop */
        case 43: /* routing */
        case 60: /* destination options */
            if (n < 8)
                goto bad;
            hl = ((size_t)p[1] + 1) * 8;
            break;
        case 51: /* AH */
            if (n < 8)
                goto bad;
            hl = ((size_t)p[1] + 2) * 4;
            break;
        case 44: { /* fragment */
            if (n < 8 || !frag_ok)
                goto bad;
            uint16_t fo = pc_rd16(p + 2);
            uint32_t off = (uint32_t)(fo & 0xfff8);
            int more = fo & 1;
            if (!off && !more) { /* an atomic fragment (RFC 6946): not fragmented */
                nh = p[0];
                p += 8;
                n -= 8;
                continue;
            }
            frag_add(cx, pk, 6, p[0], pc_rd32(p + 4), src, dst, off, more, p + 8, n - 8, depth, cut);
            return;
        }
        case 59: /* no next header */
            return;
        default:
            l4(cx, pk, 6, nh, src, dst, p, n, iplen, depth, cut);
            return;
        }
        if (hl > n)
            goto bad;
        nh = p[0];
        p += hl;
        n -= hl;
    }
bad:
    cx->st.malformed++;
}

static void ipv6(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 40) {
        cx->st.malformed++;
        return;
    }
    size_t plen = pc_rd16(p + 4);
    if (plen == 0) /* jumbogram or TSO capture: use what is there */
        plen = n - 40;
    if (plen + 40 > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        plen = n - 40;
    } else {
        cut = 0; /* Ethernet padding after the payload is ignored */
    }
    v6_walk(cx, pk, p[6], p + 8, p + 24, p + 40, plen, (uint32_t)(plen + 40), depth, cut, 1);
}

static void ip_packet(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 1) {
        cx->st.malformed++;
        return;
    }
    switch (p[0] >> 4) {
    case 4:
        ipv4(cx, pk, p, n, depth, cut);
        break;
    case 6:
        ipv6(cx, pk, p, n, depth, cut);
        break;
    default:
        cx->st.malformed++;
    }
}

/* ---- link layers ----------------------------------------------------------- */

/* An EtherType payload: IP, VLAN tags (any number up to the bound), PPPoE. */
static void ethertype(pc_ctx *cx, const pc_pkt *pk, uint16_t et, const uint8_t *p, size_t n, int cut)
{
    for (int tags = 0;; tags++) {
        if (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
            if (tags >= MAX_VLAN_TAGS || n < 4) {
                cx->st.malformed++;
                return;
            }
            et = pc_rd16(p + 2);
            p += 4;
            n -= 4;
            continue;
        }
        break;
    }
    switch (et) {
    case 0x0800:
    case 0x86dd:
        ip_packet(cx, pk, p, n, 0, cut);
        break;
    case 0x8864: /* PPPoE session: 6-byte header, then a PPP protocol number */
        if (n < 8) {
            cx->st.malformed++;
            return;
        }
        if (pc_rd16(p + 6) == 0x0021 || pc_rd16(p + 6) == 0x0057)
            ip_packet(cx, pk, p + 8, n - 8, 0, cut);
        break;
    default:
        break; /* ARP, LLDP, EAPOL...: not ours */
    }
}

/* BSD NULL/LOOP address family -> IP version (0 = not IP). */
static int null_family(uint32_t af)
{
    switch (af) {
    case 2:
        return 4;
    case 10: /* Linux AF_INET6, seen in some loopback captures */
    case 24: /* NetBSD, OpenBSD, BSD/OS */
    case 28: /* FreeBSD, DragonFly */
    case 30: /* Darwin */
        return 6;
    default:
        return 0;
    }
}

static void link_decode(pc_ctx *cx, pc_pkt *pk, int linktype, const uint8_t *p, size_t n, int cut)
{
    switch (linktype) {
    case 1: /* DLT_EN10MB */
        if (n < 14)
            goto bad;
        memcpy(pk->dst_mac, p, 6);
        memcpy(pk->src_mac, p + 6, 6);
        pk->has_src_mac = pk->has_dst_mac = 1;
        ethertype(cx, pk, pc_rd16(p + 12), p + 14, n - 14, cut);
        return;
    case 113: /* Linux cooked SLL: the address is the sender's */
        if (n < 16)
            goto bad;
        if (pc_rd16(p + 2) == 1 && pc_rd16(p + 4) == 6) {
            memcpy(pk->src_mac, p + 6, 6);
            pk->has_src_mac = 1;
        }
        ethertype(cx, pk, pc_rd16(p + 14), p + 16, n - 16, cut);
        return;
    case 276: /* Linux cooked SLL2 */
        if (n < 20)
            goto bad;
        if (pc_rd16(p + 8) == 1 && p[11] == 6) {
            memcpy(pk->src_mac, p + 12, 6);
            pk->has_src_mac = 1;
        }
        ethertype(cx, pk, pc_rd16(p), p + 20, n - 20, cut);
        return;
    case 12:  /* DLT_RAW (most platforms) */
    case 14:  /* DLT_RAW (OpenBSD) */
    case 101: /* LINKTYPE_RAW */
        ip_packet(cx, pk, p, n, 0, cut);
        return;
    case 228: /* LINKTYPE_IPV4 */
        if (n < 1 || (p[0] >> 4) != 4)
            goto bad;
        ipv4(cx, pk, p, n, 0, cut);
        return;
    case 229: /* LINKTYPE_IPV6 */
        if (n < 1 || (p[0] >> 4) != 6)
            goto bad;
        ipv6(cx, pk, p, n, 0, cut);
        return;
    case 0:   /* DLT_NULL: family in the capturing host's byte order */
    case 108: { /* DLT_LOOP: family in network byte order (some writers get it wrong) */
        if (n < 4)
            goto bad;
        int v = null_family(pc_rd32le(p));
        if (!v)
            v = null_family(pc_rd32(p));
        if (!v)
            goto bad;
        if (n < 5 || (p[4] >> 4) != v)
            goto bad;
        ip_packet(cx, pk, p + 4, n - 4, 0, cut);
        return;
    }
    default:
        cx->st.unknown_linktype++;
        return;
    }
bad:
    cx->st.malformed++;
}

/*
 * Decodes one packet (see pkt_engine.h): numbers it, counts it, expires idle
 * flows and stale fragments against its time, then walks link -> IP ->
 * transport.
 */
void pc_engine_packet(pc_reader *r, int linktype, int64_t ts_ns,
                      const uint8_t *data, size_t caplen, size_t wirelen)
{
    pc_ctx *cx = &r->cx;
    cx->frame++;
    cx->st.packets++;
    cx->st.bytes += wirelen > caplen ? wirelen : caplen;
    cx->cur_ts = ts_ns;
    if (ts_ns > cx->now)
        cx->now = ts_ns;
    if (cx->lru[0].tail || cx->lru[1].tail)
        expire_idle(cx);
    if (cx->frags)
        frag_expire(cx);
    pc_pkt pk;
    pk.has_src_mac = pk.has_dst_mac = 0;
    pk.truncated = wirelen > caplen;
    if (!data && caplen) {
        cx->st.malformed++;
        return;
    }
    link_decode(cx, &pk, linktype, data, caplen, pk.truncated);
}

/* ---- the reader ------------------------------------------------------------ */

/* The limits the appliance uses; native/README.md explains each. */
void pc_limits_default(pc_limits *out)
{
    if (!out)
        return;
    out->max_flows = 32768;
    out->flow_idle_s = 300;
    out->max_stream_bytes = 65536;
    out->max_ooo_segments = 32;
    out->max_frag_bytes = 1u << 20;
    out->max_queue_events = 4096;
}

/* Short English phrases for every status code. */
const char *pc_strerror(int status)
{
    switch (status) {
    case PC_OK: return "success";
    case PC_EOF: return "end of input";
    case PC_ERR_NOMEM: return "out of memory";
    case PC_ERR_ARG: return "invalid argument";
    case PC_ERR_OPEN: return "cannot open the file or interface";
    case PC_ERR_FORMAT: return "not a capture file that can be read";
    case PC_ERR_TRUNCATED: return "the capture file is cut short or damaged";
    case PC_ERR_IO: return "read or write error";
    case PC_ERR_STATE: return "operation not allowed in this state";
    case PC_ERR_FILTER: return "the capture filter is not valid";
    case PC_ERR_CORRUPT: return "a compiled file is damaged or of another version";
    case PC_ERR_LIMIT: return "a fixed limit was reached";
    default: return "unknown status";
    }
}

/*
 * Creates a reader around a packet source (pkt_engine.h). Zero fields of
 * limits take the defaults; max_flows is rounded up to a power of two for
 * the hash table size.
 */
int pc_engine_new(pc_reader **out, const pc_limits *limits, const pc_source_ops *ops,
                  void *src, int linktype)
{
    pc_reader *r = NULL;
    pc_limits def;
    if (!out)
        return PC_ERR_ARG;
    *out = NULL;
    pc_limits_default(&def);
    r = pc_calloc(1, sizeof *r);
    if (!r)
        goto fail;
    pc_ctx *cx = &r->cx;
    cx->lim = def;
    if (limits) {
        if (limits->max_flows) cx->lim.max_flows = limits->max_flows;
        if (limits->flow_idle_s) cx->lim.flow_idle_s = limits->flow_idle_s;
        if (limits->max_stream_bytes) cx->lim.max_stream_bytes = limits->max_stream_bytes;
        if (limits->max_ooo_segments) cx->lim.max_ooo_segments = limits->max_ooo_segments;
        if (limits->max_frag_bytes) cx->lim.max_frag_bytes = limits->max_frag_bytes;
        if (limits->max_queue_events) cx->lim.max_queue_events = limits->max_queue_events;
    }
    if (cx->lim.max_flows > (1u << 24))
        cx->lim.max_flows = 1u << 24;
    if (cx->lim.max_queue_events < 16)
        cx->lim.max_queue_events = 16; /* one packet may complete several events */
    uint32_t nb = 1;
    while (nb < cx->lim.max_flows)
        nb <<= 1;
    cx->buckets = pc_calloc(nb, sizeof *cx->buckets);
    if (!cx->buckets)
        goto fail;
    cx->mask = nb - 1;
    {
        /* Not a secret, just unpredictable from outside: address and clock. */
        struct timespec tv;
        clock_gettime(CLOCK_MONOTONIC, &tv);
        cx->seed = pc_mix32((uint32_t)(uintptr_t)r ^ (uint32_t)tv.tv_nsec ^ (uint32_t)tv.tv_sec * 0x9e3779b1u);
    }
    cx->ops = ops;
    cx->src = src;
    cx->linktype = linktype;
    cx->status = PC_OK;
    *out = r;
    return PC_OK;
fail:
    if (r)
        pc_free(r->cx.buckets);
    pc_free(r);
    return PC_ERR_NOMEM;
}

/* Opens a feed reader (see pocketcheck.h). */
int pc_reader_open_feed(pc_reader **out, const pc_limits *limits)
{
    return pc_engine_new(out, limits, NULL, NULL, -1);
}

/* One packet from the caller into a feed reader (see pocketcheck.h). */
int pc_reader_feed(pc_reader *r, int linktype, int64_t ts_ns,
                   const uint8_t *data, size_t caplen, size_t wirelen)
{
    if (!r || (!data && caplen))
        return PC_ERR_ARG;
    if (r->cx.ops || r->cx.input_done)
        return PC_ERR_STATE;
    pc_engine_packet(r, linktype, ts_ns, data, caplen, wirelen < caplen ? caplen : wirelen);
    return PC_OK;
}

/* Ends a feed reader's input; pc_reader_next() then flushes every flow. */
int pc_reader_finish(pc_reader *r)
{
    if (!r)
        return PC_ERR_ARG;
    if (r->cx.ops)
        return PC_ERR_STATE;
    if (!r->cx.input_done) {
        r->cx.input_done = 1;
        r->cx.input_status = PC_EOF;
    }
    return PC_OK;
}

void pc_engine_set_error(pc_reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->cx.err, sizeof r->cx.err, fmt, ap);
    va_end(ap);
    /* One line: a libpcap message could carry a newline. */
    for (char *c = r->cx.err; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

uint64_t pc_engine_frames(const pc_reader *r)
{
    return r->cx.frame;
}

/* Ends the next flow at end of input (oldest first); 0 when none is left. */
static int flush_one(pc_ctx *cx)
{
    pc_flow *f = lru_oldest(cx);
    if (!f)
        return 0;
    flow_end(cx, f, END_NORMAL);
    return 1;
}

/* Copies queued events into the caller's arrays; returns how many. */
static size_t drain(pc_ctx *cx, pc_event *ev, size_t cap, size_t *out, uint8_t *strbuf, size_t strcap,
                    size_t *used)
{
    size_t n0 = *out;
    while (*out < cap && cx->qhead < cx->qlen) {
        pc_event *e = &cx->q[cx->qhead];
        pc_str *s[5] = {&e->name, &e->data, &e->s1, &e->s2, &e->s3};
        size_t need = 0;
        for (int i = 0; i < 5; i++)
            need += s[i]->len;
        if (*used + need > strcap) {
            if (*out > 0)
                break; /* the caller drains this batch and calls again */
            /* Even an empty buffer is too small: cut the longest strings. */
            while (need > strcap) {
                int li = 0;
                for (int i = 1; i < 5; i++)
                    if (s[i]->len > s[li]->len)
                        li = i;
                size_t excess = need - strcap;
                uint32_t cut = s[li]->len / 2 > excess ? (uint32_t)excess : (s[li]->len + 1) / 2;
                s[li]->len -= cut;
                need -= cut;
            }
            e->flags |= PC_EVF_PARTIAL;
        }
        pc_event *o = &ev[*out];
        *o = *e;
        pc_str *os[5] = {&o->name, &o->data, &o->s1, &o->s2, &o->s3};
        for (int i = 0; i < 5; i++) {
            if (s[i]->len)
                memcpy(strbuf + *used, cx->arena + s[i]->off, s[i]->len);
            os[i]->off = (uint32_t)*used;
            os[i]->len = s[i]->len;
            *used += s[i]->len;
        }
        cx->qhead++;
        (*out)++;
    }
    if (cx->qhead == cx->qlen) {
        cx->qhead = cx->qlen = 0;
        cx->alen = 0;
    }
    return *out - n0;
}

/*
 * Fills the caller's arrays (see pocketcheck.h): drains the queue, reads
 * more packets only while the queue is empty (so it stays small), and at
 * the end of input flushes the flows a few at a time.
 */
int pc_reader_next(pc_reader *r, pc_event *ev, size_t cap, uint8_t *strbuf, size_t strcap)
{
    if (!r || !ev || cap == 0 || (!strbuf && strcap))
        return PC_ERR_ARG;
    pc_ctx *cx = &r->cx;
    size_t out = 0, used = 0;

    for (;;) {
        drain(cx, ev, cap, &out, strbuf, strcap, &used);
        if (out == cap || cx->qhead < cx->qlen)
            break; /* the caller's arrays are full */
        if (cx->finished)
            break;
        if (!cx->input_done) {
            if (cx->stop_req) {
                cx->input_done = 1;
                cx->input_status = PC_EOF;
                continue;
            }
            if (!cx->ops)
                break; /* feed reader: wait for more pc_reader_feed() */
            int rc = cx->ops->next(r, cx->src, out == 0);
            if (rc == PC_SRC_PACKET)
                continue;
            if (rc == 0)
                break; /* live: nothing arrived within the timeout */
            cx->input_done = 1;
            cx->input_status = rc == PC_EOF ? PC_EOF : rc;
            continue;
        }
        /* Input over: flush flows while the queue has room, then drop partial fragments. */
        if (flush_one(cx))
            continue;
        while (cx->frags)
            frag_drop(cx, &cx->frags, NULL);
        cx->frags_tail = NULL;
        cx->finished = 1;
        cx->status = cx->input_status;
    }
    if (cx->ops && cx->ops->flush)
        cx->ops->flush(cx->src);
    return (int)out;
}

/* See pocketcheck.h. */
int pc_reader_status(const pc_reader *r)
{
    if (!r)
        return PC_ERR_ARG;
    return r->cx.status;
}

/* See pocketcheck.h. */
const char *pc_reader_error(const pc_reader *r)
{
    return r ? r->cx.err : "";
}

/* See pocketcheck.h. */
void pc_reader_stats(const pc_reader *r, pc_stats *out)
{
    if (!out)
        return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = r->cx.st;
    if (r->cx.ops && r->cx.ops->stats)
        r->cx.ops->stats(r->cx.src, out);
}

/* See pocketcheck.h. */
int pc_reader_linktype(const pc_reader *r)
{
    return r ? r->cx.linktype : -1;
}

/* See pocketcheck.h: a flag plus the source's own interrupt (pcap_breakloop). */
void pc_reader_stop(pc_reader *r)
{
    if (!r)
        return;
    r->cx.stop_req = 1;
    if (r->cx.ops && r->cx.ops->stop)
        r->cx.ops->stop(r->cx.src);
}

/* See pocketcheck.h. Parser state of open flows is released through pc_app_udp_end(). */
void pc_reader_free(pc_reader *r)
{
    if (!r)
        return;
    pc_ctx *cx = &r->cx;
    for (int l = 0; l < 2; l++) {
        pc_flow *f = cx->lru[l].head;
        while (f) {
            pc_flow *n = f->next;
            if (f->udp_app) {
                pc_meta m;
                flow_meta(cx, f, NULL, 1, &m);
                pc_app_udp_end(cx, &m, &f->udp_app);
            }
            for (int di = 0; di < 2; di++)
                dir_free_buffers(cx, &f->dir[di]);
            pc_free(f);
            f = n;
        }
    }
    while (cx->freelist) {
        pc_flow *n = cx->freelist->hnext;
        pc_free(cx->freelist);
        cx->freelist = n;
    }
    while (cx->frags) {
        pc_frag *n = cx->frags->next;
        frag_free(cx, cx->frags);
        cx->frags = n;
    }
    if (cx->ops && cx->ops->close)
        cx->ops->close(cx->src);
    pc_free(cx->buckets);
    pc_free(cx->q);
    pc_free(cx->arena);
    pc_free(r);
}
