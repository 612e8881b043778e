/*
 * stream.c - TCP stream reassembly, per direction of a flow: in-order
 * delivery to the dispatcher without a copy when nothing is buffered,
 * held out-of-order segments, retransmissions and overlaps (the first data
 * seen wins), holes that never fill, and the bounds (max_stream_bytes per
 * direction, max_ooo_segments, and one budget for all buffers). The rules
 * are in native/README.md ("TCP stream reassembly").
 *
 * Called by flow.c; calls dispatch.c (pc_app_tcp) and nothing above it.
 */
#include "flow.h"

/* All TCP stream buffers and held out-of-order segments together. Without
 * it max_flows * 2 * max_stream_bytes would be the bound (gigabytes). */
#define STREAM_BUDGET (16u << 20)
/* Out-of-order TCP data further ahead than this is treated as garbage. */
#define OOO_WINDOW (1u << 24)

/* Sequence numbers compare with 32-bit wraparound arithmetic. */
static int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

/* Frees a direction's buffers (see flow.h). */
void pc_dir_free_buffers(pc_ctx *cx, pc_dir *d)
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
    pc_dir_free_buffers(cx, d);
}

/* Hands the buffered tail to the parser one last time (final = 1); see flow.h. */
void pc_dir_final(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, int truncated)
{
    pc_dir *d = &f->dir[di];
    if (d->stopped)
        return;
    if (d->len > 0) {
        pc_meta m;
        size_t c = 0;
        pc_flow_meta(cx, f, pk, di == 0, &m);
        if (truncated)
            m.truncated = 1;
        pc_app_tcp(cx, &m, &d->ds, d->buf, d->len, 1, &c);
    }
    dir_stop(cx, d);
}

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
    pc_dir_final(cx, f, di, pk, 1);
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
            pc_flow_meta(cx, f, pk, di == 0, &m);
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
    pc_dir_final(cx, f, di, pk, 1);
}

/* One TCP segment's payload (and FIN) for direction di; see flow.h. */
void pc_tcp_data(pc_ctx *cx, pc_flow *f, int di, const pc_pkt *pk, uint32_t seq,
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
        pc_dir_final(cx, f, di, pk, 0);
}
