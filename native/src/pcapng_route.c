/*
 * pcapng_route.c - one libpcap handle per pcapng interface (see
 * pcapng_route.h for why). The file is walked once, block by block, in file
 * order; a packet block is handed to its interface's handle at the moment
 * the walk reaches it, and that handle's pcap_next_ex() reads exactly that
 * block through the shared cookie stream, so packets come out in file order
 * (tshark's frame order) without queues or look-ahead.
 *
 * Why this is not a home-made pcap reader: the router never looks inside a
 * record. It reads 12 bytes of each block (type, total length, and the
 * section's byte-order magic or a packet block's interface id), checks the
 * framing it needs to step to the next block (at least 12 bytes, a multiple
 * of 4, inside the file), and copies bytes. Every field of every SHB, IDB,
 * EPB, PB and SPB is parsed by libpcap, with its own checks and messages.
 *
 * Facts of libpcap 1.10's pcapng reader (sf-pcapng.c) this relies on:
 *  - opening reads the SHB and then blocks up to and including the first
 *    IDB, never further; each pcap_next_ex() reads whole blocks until it has
 *    a packet block, and reads a block as an 8-byte header then the rest;
 *  - it skips blocks that are not SHB, IDB, EPB, PB or SPB (so NRB, ISB,
 *    DSB and custom blocks are not passed on: they would be skipped anyway);
 *  - an SPB belongs to interface 0 of its section.
 * A handle's stdio stream may ask cookie_read for more than libpcap wants
 * (it fills its buffer), but the cookie serves only the current hand-over,
 * so no stream reads ahead of the walk: a short read is not an end for
 * stdio, only a 0 is, and libpcap never asks past the block it was given.
 * The streams are buffered (STREAM_BUFFER): unbuffered, glibc calls
 * cookie_read once per byte (measured: 50 times the instructions).
 */
#define _GNU_SOURCE /* fopencookie (glibc) */
#define _FILE_OFFSET_BITS 64 /* fseeko past 2 GiB on 32-bit ARM */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"
#include "pcapng_route.h"

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 1u
#define BT_PB 2u  /* obsolete Packet Block: 16-bit interface id */
#define BT_SPB 3u
#define BT_EPB 6u
/* type + total length + (byte-order magic | interface id | trailer) */
#define PREFIX 12u
/* Each handle's stdio buffer: most packet blocks fit, larger ones are read straight into libpcap's. */
#define STREAM_BUFFER 4096

/* A run of file bytes handed to the handle being fed; the first head_len come from head. */
typedef struct seg {
    int64_t off;
    uint32_t len, done, head_len;
    uint8_t head[PREFIX];
} seg;

typedef struct route_if {
    pcap_t *p;
    int linktype;
} route_if;

struct pc_route {
    FILE *in;         /* the file, read in order (large stdio buffer: the caller's) */
    int64_t size;     /* its length */
    int64_t pos;      /* where in's position is */
    int64_t next;     /* the next block's offset */
    seg segs[2];      /* the current hand-over: [SHB, IDB] when opening, [packet block] */
    int nsegs, cur;
    int big_endian;   /* the current section's byte order */
    int64_t shb_off;  /* the current section's header block */
    uint32_t shb_len;
    uint32_t nif;     /* interfaces of the current section */
    route_if ifs[PC_ROUTE_MAX_IFACES];
    char err[PCAP_ERRBUF_SIZE + 96];
};

static void fail(pc_route *rt, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void fail(pc_route *rt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->err, sizeof rt->err, fmt, ap);
    va_end(ap);
}

static int seek_to(pc_route *rt, int64_t off)
{
    if (rt->pos == off)
        return 0;
    if (fseeko(rt->in, (off_t)off, SEEK_SET) != 0)
        return -1;
    rt->pos = off;
    return 0;
}

/* The stdio read function of every handle's stream: serves the current hand-over, nothing more. */
static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
    pc_route *rt = cookie;
    size_t done = 0;
    while (done < size && rt->cur < rt->nsegs) {
        seg *s = &rt->segs[rt->cur];
        if (s->done == s->len) {
            rt->cur++;
            continue;
        }
        size_t want = size - done, n;
        if (want > s->len - s->done)
            want = s->len - s->done;
        if (s->done < s->head_len) {
            n = s->head_len - s->done < want ? s->head_len - s->done : want;
            memcpy(buf + done, s->head + s->done, n);
        } else {
            if (seek_to(rt, s->off + s->done) != 0)
                break;
            n = fread(buf + done, 1, want, rt->in);
            rt->pos += (int64_t)n;
            if (n == 0)
                break; /* the file shrank or failed: libpcap reports the short read */
        }
        s->done += (uint32_t)n;
        done += n;
    }
    return (ssize_t)done;
}

static int cookie_close(void *cookie)
{
    (void)cookie; /* the router owns everything the stream reads */
    return 0;
}

static const cookie_io_functions_t cookie_fns = {cookie_read, NULL, NULL, cookie_close};

static void hand_over(pc_route *rt, int n)
{
    rt->nsegs = n;
    rt->cur = 0;
    for (int i = 0; i < n; i++)
        rt->segs[i].done = 0;
}

static void close_section(pc_route *rt)
{
    for (uint32_t i = 0; i < rt->nif; i++)
        pcap_close(rt->ifs[i].p);
    rt->nif = 0;
}

/* The IDB at off (length len) starts a handle of its own: its stream is [SHB, this IDB]. */
static int open_interface(pc_route *rt, int64_t off, uint32_t len)
{
    char pe[PCAP_ERRBUF_SIZE] = "";
    if (rt->nif == PC_ROUTE_MAX_IFACES) {
        fail(rt, "a section has more than %d interfaces, the most this reader opens at once (block at byte %lld)",
             PC_ROUTE_MAX_IFACES, (long long)off);
        return -1;
    }
    rt->segs[0] = (seg){rt->shb_off, rt->shb_len, 0, 0, {0}};
    rt->segs[1] = (seg){off, len, 0, 0, {0}};
    hand_over(rt, 2);
    FILE *fp = fopencookie(rt, "r", cookie_fns);
    if (!fp) {
        fail(rt, "cannot open a stream for an interface: %s", strerror(errno));
        return -1;
    }
    setvbuf(fp, NULL, _IOFBF, STREAM_BUFFER);
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, pe);
    if (!p) {
        fclose(fp);
        fail(rt, "%s (interface block at byte %lld)", pe, (long long)off);
        return -1;
    }
    rt->ifs[rt->nif].p = p;
    rt->ifs[rt->nif].linktype = pcap_datalink(p);
    rt->nif++;
    return 0;
}

pc_route *pc_route_open(FILE *fp, char *errbuf, size_t errlen)
{
    pc_route *rt = NULL;
    off_t size;
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!fp)
        return NULL;
    if (fseeko(fp, 0, SEEK_END) != 0 || (size = ftello(fp)) < 0 || fseeko(fp, 0, SEEK_SET) != 0) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "cannot measure the file: %s", strerror(errno));
        goto fail;
    }
    rt = pc_calloc(1, sizeof *rt);
    if (!rt) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    rt->in = fp;
    rt->size = (int64_t)size;
    return rt;
fail:
    fclose(fp);
    return NULL;
}

static uint32_t rd32(const pc_route *rt, const uint8_t *p)
{
    return rt->big_endian ? pc_rd32(p) : pc_rd32le(p);
}

int pc_route_next(pc_route *rt, struct pcap_pkthdr **h, const u_char **data, int *linktype)
{
    uint8_t b[PREFIX];
    for (;;) {
        if (rt->err[0])
            return -1;
        int64_t off = rt->next;
        if (off == rt->size)
            return 0;
        if (rt->size - off < (int64_t)PREFIX) {
            fail(rt, "truncated pcapng file: %lld bytes left at byte %lld, less than a block",
                 (long long)(rt->size - off), (long long)off);
            return -1;
        }
        if (seek_to(rt, off) != 0 || fread(b, 1, PREFIX, rt->in) != PREFIX) {
            fail(rt, "error reading the file at byte %lld: %s", (long long)off,
                 ferror(rt->in) ? strerror(errno) : "it shrank");
            return -1;
        }
        rt->pos = off + PREFIX;
        /* BT_SHB reads the same in both byte orders; its magic sets the section's. */
        uint32_t type = pc_rd32(b);
        if (type == BT_SHB) {
            if (pc_rd32(b + 8) == 0x1A2B3C4Du)
                rt->big_endian = 1;
            else if (pc_rd32le(b + 8) == 0x1A2B3C4Du)
                rt->big_endian = 0;
            else {
                fail(rt, "the section header at byte %lld has a bad byte-order magic", (long long)off);
                return -1;
            }
        } else if (off == 0) {
            fail(rt, "not a pcapng file: it does not start with a section header");
            return -1;
        } else {
            type = rd32(rt, b);
        }
        uint32_t len = rd32(rt, b + 4);
        if (len < PREFIX || len % 4 != 0 || (int64_t)len > rt->size - off) {
            if (len < PREFIX || len % 4 != 0)
                fail(rt, "pcapng block at byte %lld has a bad length %u", (long long)off, len);
            else
                fail(rt, "truncated pcapng file: the block at byte %lld claims %u bytes, %lld are left",
                     (long long)off, len, (long long)(rt->size - off));
            return -1;
        }
        rt->next = off + len;
        uint32_t id;
        switch (type) {
        case BT_SHB:
            /* A new section has its own interfaces: the old handles get nothing more. */
            close_section(rt);
            rt->shb_off = off;
            rt->shb_len = len;
            continue;
        case BT_IDB:
            if (open_interface(rt, off, len) != 0)
                return -1;
            continue;
        case BT_EPB:
        case BT_PB:
            if (len < PREFIX + 4) {
                fail(rt, "packet block at byte %lld is too short (%u bytes)", (long long)off, len);
                return -1;
            }
            id = type == BT_EPB ? rd32(rt, b + 8) : (rt->big_endian ? pc_rd16(b + 8) : pc_rd16le(b + 8));
            break;
        case BT_SPB:
            id = 0;
            break;
        default:
            continue; /* NRB, ISB, DSB, custom...: libpcap would skip them too */
        }
        if (id >= rt->nif) {
            fail(rt, "a packet arrived on interface %u, but there's no Interface Description Block for that "
                 "interface (block at byte %lld)", id, (long long)off);
            return -1;
        }
        /* The handle has one interface, so the packet names interface 0 (an id is 0 in both byte orders). */
        rt->segs[0] = (seg){off, len, 0, PREFIX, {0}};
        memcpy(rt->segs[0].head, b, PREFIX);
        if (type == BT_EPB)
            memset(rt->segs[0].head + 8, 0, 4);
        else if (type == BT_PB)
            memset(rt->segs[0].head + 8, 0, 2);
        hand_over(rt, 1);
        int rc = pcap_next_ex(rt->ifs[id].p, h, data);
        if (rc == 1) {
            *linktype = rt->ifs[id].linktype;
            return 1;
        }
        fail(rt, "%s (block at byte %lld)", rc == -1 ? pcap_geterr(rt->ifs[id].p) : "libpcap read no packet",
             (long long)off);
        return -1;
    }
}

const char *pc_route_error(const pc_route *rt)
{
    return rt ? rt->err : "";
}

void pc_route_close(pc_route *rt)
{
    if (!rt)
        return;
    close_section(rt);
    fclose(rt->in);
    pc_free(rt);
}
