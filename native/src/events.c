/*
 * events.c - the event queue under every parser: pc_emit() copies what a
 * parser found, with its flow fields, into reader-owned storage;
 * pc_reader_next() drains it (pc_queue_drain). Also the malformed counter,
 * the budget for the parsers' per-flow state, and the names of the event
 * kinds (pc_kind_name: the one list, which format.c and Python read).
 *
 * Calls nothing of the packet path or the parsers: everything above may
 * call here, so there is no cycle.
 */
#include "engine.h"

/* All per-flow parser state together (QUIC CRYPTO reassembly): 8 MiB. */
#define APP_BUDGET (8u << 20)
/* All strings of queued events together. */
#define QUEUE_STR_BUDGET (4u << 20)

/* ---- event kinds ---------------------------------------------------------- */

/* Indexed by PC_EV_*; "" for the unused 0. */
static const char *const kind_names[PC_EV_KIND_MAX + 1] = {
    "", "dns.query", "dns.answer", "mdns.query", "llmnr.query", "tls.sni",
    "quic.sni", "http.host", "tls.cert", "flow", "dhcp", "dns.response-question",
};

/* See pocketcheck.h. */
const char *pc_kind_name(uint32_t kind)
{
    return kind <= PC_EV_KIND_MAX ? kind_names[kind] : NULL;
}

/* ---- the queue ------------------------------------------------------------ */

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

/* Reserves one queue slot with room for nstr bytes of strings (see engine.h). */
pc_event *pc_queue_event(pc_ctx *cx, const pc_meta *m, size_t nstr, int *status)
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
    meta_to_event(e, m);
    cx->st.events++;
    *status = PC_OK;
    return e;
fail:
    cx->st.events_dropped++;
    return NULL;
}

/* Queued events not yet handed out. */
uint32_t pc_queue_pending(const pc_ctx *cx)
{
    return cx->qlen - cx->qhead;
}

/* Copies queued events into the caller's arrays (see engine.h); returns how many. */
size_t pc_queue_drain(pc_ctx *cx, pc_event *ev, size_t cap, size_t *out,
                      uint8_t *strbuf, size_t strcap, size_t *used)
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


/* Frees the queue's storage. */
void pc_queue_free(pc_ctx *cx)
{
    pc_free(cx->q);
    pc_free(cx->arena);
    cx->q = NULL;
    cx->arena = NULL;
}

/* ---- what the parsers call ------------------------------------------------ */

static void q_str(pc_ctx *cx, pc_str *dst, const pc_bytes *b)
{
    dst->off = (uint32_t)cx->alen;
    dst->len = (uint32_t)b->n;
    if (b->n) {
        memcpy(cx->arena + cx->alen, b->p, b->n);
        cx->alen += b->n;
    }
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
    pc_event *e = pc_queue_event(cx, m, n, &status);
    if (!e)
        return status;
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
    return PC_OK;
}

/* Counts a payload that failed to decode (pc_stats.malformed). */
void pc_count_malformed(pc_ctx *cx)
{
    if (cx)
        cx->st.malformed++;
}

/* The parsers' per-flow state budget; contract in events.h. */
int pc_budget_take(pc_ctx *cx, size_t n)
{
    if (n > APP_BUDGET - cx->app_mem)
        return -1;
    cx->app_mem += n;
    return 0;
}

/* Returns bytes taken earlier (see events.h). */
void pc_budget_give(pc_ctx *cx, size_t n)
{
    cx->app_mem -= n < cx->app_mem ? n : cx->app_mem;
}

