/*
 * test_pcapng_route.c - the pcapng router (pcapng_route.c) on files built
 * here: interfaces of three link types, a snapshot length that differs,
 * a second section in the other byte order, blocks it must skip; then the
 * file cut at every byte, an interface over the limit, allocation failures,
 * and the whole reader (pc_reader_open_file: the plain handle fails, the
 * router goes on) on the same bytes. Expected values are the ones put in.
 *
 * Exits non-zero when a check fails; the last line is the tally.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "check.h"
#include "pcapng_route.h"
#include "reader.h"


/* ---- a pcapng writer (both byte orders) ---------------------------------- */

typedef struct buf {
    uint8_t b[1 << 16];
    size_t n;
    int be;
    size_t ends[256]; /* offsets where a block ends */
    int nends;
    int packets_before[256]; /* packet blocks complete at ends[i] */
    int packets;
} buf;

static void put16(buf *o, unsigned v)
{
    o->b[o->n++] = (uint8_t)(o->be ? v >> 8 : v);
    o->b[o->n++] = (uint8_t)(o->be ? v : v >> 8);
}

static void put32(buf *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        o->b[o->n++] = (uint8_t)(v >> (o->be ? 24 - 8 * i : 8 * i));
}

static void put(buf *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
    while (o->n % 4)
        o->b[o->n++] = 0;
}

/* Starts a block; block_end() writes both lengths. */
static size_t block_start(buf *o, uint32_t type)
{
    size_t at = o->n;
    put32(o, type);
    put32(o, 0);
    return at;
}

static void block_end(buf *o, size_t at, int is_packet)
{
    uint32_t len = (uint32_t)(o->n - at + 4);
    size_t save = o->n;
    o->n = at + 4;
    put32(o, len);
    o->n = save;
    put32(o, len);
    o->packets += is_packet;
    o->ends[o->nends] = o->n;
    o->packets_before[o->nends++] = o->packets;
}

static void shb(buf *o, int be)
{
    o->be = be;
    size_t at = block_start(o, 0x0A0D0D0A);
    put32(o, 0x1A2B3C4D);
    put16(o, 1);
    put16(o, 0);
    put32(o, 0xFFFFFFFF);
    put32(o, 0xFFFFFFFF);
    block_end(o, at, 0);
}

/* An IDB; tsresol 0 means none (microseconds). */
static void idb(buf *o, unsigned linktype, uint32_t snaplen, int tsresol)
{
    size_t at = block_start(o, 1);
    put16(o, linktype);
    put16(o, 0);
    put32(o, snaplen);
    if (tsresol) {
        uint8_t r = (uint8_t)tsresol;
        put16(o, 9);
        put16(o, 1);
        put(o, &r, 1);
        put32(o, 0); /* opt_endofopt */
    }
    block_end(o, at, 0);
}

static void epb(buf *o, uint32_t iface, uint64_t ts, const uint8_t *f, uint32_t n)
{
    size_t at = block_start(o, 6);
    put32(o, iface);
    put32(o, (uint32_t)(ts >> 32));
    put32(o, (uint32_t)ts);
    put32(o, n);
    put32(o, n);
    put(o, f, n);
    block_end(o, at, 1);
}

static void spb(buf *o, const uint8_t *f, uint32_t n)
{
    size_t at = block_start(o, 3);
    put32(o, n);
    put(o, f, n);
    block_end(o, at, 1);
}

static void opb(buf *o, unsigned iface, uint64_t ts, const uint8_t *f, uint32_t n)
{
    size_t at = block_start(o, 2);
    put16(o, iface);
    put16(o, 0);
    put32(o, (uint32_t)(ts >> 32));
    put32(o, (uint32_t)ts);
    put32(o, n);
    put32(o, n);
    put(o, f, n);
    block_end(o, at, 1);
}

/* A block libpcap and the router skip (a Name Resolution Block with no records). */
static void nrb(buf *o)
{
    size_t at = block_start(o, 4);
    put32(o, 0);
    block_end(o, at, 0);
}

/* ---- the test file ---------------------------------------------------------- */

typedef struct want {
    int dlt;
    int64_t ts_ns;
    uint32_t caplen;
    uint8_t first;
} want;

static want W[16];
static int NW;

/* Frames are opaque to the router: a first byte to recognise and a length. */
static const uint8_t *frame(uint8_t tag)
{
    static uint8_t f[256];
    memset(f, 0xEE, sizeof f);
    f[0] = tag;
    return f;
}

static void expect(int dlt, int64_t ts_ns, uint32_t caplen, uint8_t tag)
{
    W[NW++] = (want){dlt, ts_ns, caplen, tag};
}

static void build(buf *o)
{
    memset(o, 0, sizeof *o);
    NW = 0;
    shb(o, 0);
    idb(o, 1, 65535, 0);      /* 0: Ethernet, us */
    epb(o, 0, 1800000001000002ULL, frame(2), 60);
    expect(DLT_EN10MB, 1800000001000002000LL, 60, 2);
    idb(o, 101, 65535, 9);    /* 1: LINKTYPE_RAW, ns: one libpcap handle stops here */
    nrb(o);
    epb(o, 1, 1800000000123456789ULL, frame(1), 40);
    expect(DLT_RAW, 1800000000123456789LL, 40, 1);
    idb(o, 1, 96, 0);         /* 2: Ethernet again, another snapshot length */
    epb(o, 2, 1800000002000003ULL, frame(3), 90);
    expect(DLT_EN10MB, 1800000002000003000LL, 90, 3);
    spb(o, frame(4), 70);     /* interface 0 */
    expect(DLT_EN10MB, 0, 70, 4);
    opb(o, 1, 1800000003000000004ULL, frame(5), 30);
    expect(DLT_RAW, 1800000003000000004LL, 30, 5);
    shb(o, 1);                /* a second section, big-endian, its own interfaces */
    idb(o, 0, 65535, 0);      /* 0: BSD NULL */
    nrb(o);
    epb(o, 0, 1800000004000005ULL, frame(6), 50);
    expect(DLT_NULL, 1800000004000005000LL, 50, 6);
}

static FILE *mem(const buf *o, size_t n)
{
    return fmemopen((void *)o->b, n, "rb");
}

static void test_routes_in_file_order(void)
{
    static buf o;
    char err[256];
    build(&o);
    pc_route *rt = pc_route_open(mem(&o, o.n), err, sizeof err);
    CHECK(rt != NULL, "open: %s", err);
    if (!rt)
        return;
    struct pcap_pkthdr *h;
    const u_char *d;
    int dlt, rc, i = 0;
    while ((rc = pc_route_next(rt, &h, &d, &dlt)) == 1 && i < NW) {
        int64_t ts = (int64_t)h->ts.tv_sec * 1000000000LL + h->ts.tv_usec;
        CHECK(dlt == W[i].dlt && ts == W[i].ts_ns && h->caplen == W[i].caplen && h->len == W[i].caplen &&
                  d[0] == W[i].first && d[h->caplen - 1] == 0xEE,
              "packet %d: dlt %d ts %lld caplen %u first %u", i, dlt, (long long)ts, h->caplen, d[0]);
        i++;
    }
    CHECK(rc == 0 && i == NW && pc_route_error(rt)[0] == 0, "end: rc %d after %d of %d: %s", rc, i, NW,
          pc_route_error(rt));
    CHECK(pc_route_next(rt, &h, &d, &dlt) == 0, "the end stays the end");
    pc_route_close(rt);
}

/* Cut after every byte: the packets of the whole blocks before the cut, then 0 at a block end or -1. */
static void test_every_cut(void)
{
    static buf o;
    build(&o);
    int bad = 0;
    for (size_t n = 1; n < o.n; n++) {
        char err[256];
        pc_route *rt = pc_route_open(mem(&o, n), err, sizeof err);
        if (!rt) {
            bad++;
            continue;
        }
        int whole = 0, boundary = 0;
        for (int b = 0; b < o.nends; b++) {
            if (o.ends[b] <= n)
                whole = o.packets_before[b];
            boundary |= o.ends[b] == n;
        }
        struct pcap_pkthdr *h;
        const u_char *d;
        int dlt, rc, got = 0;
        while ((rc = pc_route_next(rt, &h, &d, &dlt)) == 1)
            got++;
        if (got != whole || rc != (boundary ? 0 : -1) || (rc == -1) != (pc_route_error(rt)[0] != 0)) {
            if (bad++ < 5)
                printf("cut at %zu: %d packets (want %d), rc %d: %s\n", n, got, whole, rc, pc_route_error(rt));
        }
        pc_route_close(rt);
    }
    CHECK(bad == 0, "%d of %zu cuts wrong", bad, o.n - 1);
}

static void test_limits(void)
{
    static buf o;
    char err[256];
    memset(&o, 0, sizeof o);
    shb(&o, 0);
    for (int i = 0; i < PC_ROUTE_MAX_IFACES; i++)
        idb(&o, i % 2 ? 101 : 1, 65535, 0);
    epb(&o, PC_ROUTE_MAX_IFACES - 1, 5, frame(9), 20);
    idb(&o, 1, 65535, 0); /* one more than the limit */
    epb(&o, 0, 6, frame(10), 20);
    pc_route *rt = pc_route_open(mem(&o, o.n), err, sizeof err);
    struct pcap_pkthdr *h;
    const u_char *d;
    int dlt;
    CHECK(rt && pc_route_next(rt, &h, &d, &dlt) == 1 && dlt == DLT_RAW && d[0] == 9, "the 64th interface is read");
    CHECK(rt && pc_route_next(rt, &h, &d, &dlt) == -1 && strstr(pc_route_error(rt), "more than 64 interfaces"),
          "the 65th is refused: %s", rt ? pc_route_error(rt) : "");
    pc_route_close(rt);

    /* a packet naming an interface the section does not have */
    memset(&o, 0, sizeof o);
    shb(&o, 0);
    idb(&o, 1, 65535, 0);
    epb(&o, 3, 5, frame(9), 20);
    rt = pc_route_open(mem(&o, o.n), err, sizeof err);
    CHECK(rt && pc_route_next(rt, &h, &d, &dlt) == -1 && strstr(pc_route_error(rt), "interface 3"),
          "unknown interface: %s", rt ? pc_route_error(rt) : "");
    pc_route_close(rt);
    pc_route_close(NULL);
}

/* Allocation failures: libpcap's own allocations are not routed through pc_alloc, ours are. */
static void test_alloc_failure(void)
{
    static buf o;
    char err[256];
    build(&o);
    pc_alloc_fail_after(0);
    pc_route *rt = pc_route_open(mem(&o, o.n), err, sizeof err);
    pc_alloc_fail_after(-1);
    CHECK(rt == NULL && strstr(err, "out of memory"), "open without memory: %s", err);
}

/* The whole reader: the plain handle delivers frame 1 and stops at the second interface; the router
 * reads the file again, skips frame 1 and delivers the rest once. */
static void test_reader_falls_back(void)
{
    static buf o;
    char path[] = "/tmp/test_pcapng_route.XXXXXX", err[256];
    build(&o);
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, o.b, o.n) == (ssize_t)o.n, "temp file");
    if (fd < 0)
        return;
    close(fd);
    for (int cut = 0; cut < 2; cut++) {
        if (cut && truncate(path, (off_t)o.ends[o.nends - 1] - 5) != 0)
            break;
        pc_reader *r = NULL;
        CHECK(pc_reader_open_file(&r, path, NULL, err, sizeof err) == PC_OK && pc_reader_linktype(r) == DLT_EN10MB,
              "open: %s", err);
        if (!r)
            continue;
        pc_event ev[64];
        static uint8_t sb[1 << 12];
        while (pc_reader_next(r, ev, 64, sb, sizeof sb) > 0)
            ;
        pc_stats st;
        pc_reader_stats(r, &st);
        if (!cut)
            CHECK(pc_reader_status(r) == PC_EOF && st.packets == (uint64_t)NW,
                  "read: status %d, %llu packets of %d: %s", pc_reader_status(r), (unsigned long long)st.packets, NW,
                  pc_reader_error(r));
        else
            CHECK(pc_reader_status(r) == PC_ERR_TRUNCATED && st.packets == (uint64_t)NW - 1 &&
                      strstr(pc_reader_error(r), "damaged after frame 5"),
                  "cut: status %d, %llu packets: %s", pc_reader_status(r), (unsigned long long)st.packets,
                  pc_reader_error(r));
        pc_reader_free(r);
    }
    unlink(path);
}

int main(void)
{
    test_routes_in_file_order();
    test_every_cut();
    test_limits();
    test_alloc_failure();
    test_reader_falls_back();
    return check_report("test_pcapng_route");
}
