/*
 * reader.c - the public reader API of pocketcheck.h (limits, status texts,
 * feed readers, pc_reader_next and its batch rules, stats, stop, free) and
 * the constructor that packet sources use (reader.h). No libpcap here:
 * capture.c plugs a libpcap source in, and feed readers take frames from
 * the caller, so the packet path builds and tests anywhere.
 *
 * Every structure that grows with the input is bounded (pc_limits plus the
 * budgets of events.c and stream.c); native/README.md explains the bounds.
 *
 * Calls link.c (through pc_engine_packet), flow.c and ip.c (end of input,
 * free) and the event queue; nothing calls back up into it but the sources.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "engine.h"

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
 * Creates a reader around a packet source (reader.h). Zero fields of
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

/* See reader.h. */
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

/* See reader.h. */
uint64_t pc_engine_frames(const pc_reader *r)
{
    return r->cx.frame;
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
        pc_queue_drain(cx, ev, cap, &out, strbuf, strcap, &used);
        if (out == cap || pc_queue_pending(cx) > 0)
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
        if (pc_flow_flush_one(cx))
            continue;
        pc_frag_drop_all(cx);
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
    pc_flow_free_all(cx);
    pc_frag_free_all(cx);
    if (cx->ops && cx->ops->close)
        cx->ops->close(cx->src);
    pc_free(cx->buckets);
    pc_queue_free(cx);
    pc_free(r);
}

/* The state of a reader, for parser unit tests (see reader.h). NULL for NULL. */
pc_ctx *pc_reader_ctx(pc_reader *r)
{
    return r ? &r->cx : NULL;
}
