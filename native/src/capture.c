/*
 * capture.c - libpcap glue: capture files and live interfaces as a packet
 * source for the engine (reader.c, through reader.h). Files and live
 * interfaces share one read path (pcap_next_ex); every packet read gets the
 * next frame number, so frame numbers match tshark's.
 *
 * libpcap 1.10 facts this file relies on (checked with tcpdump/libpcap
 * 1.10.3 on the shared captures):
 *  - pcap_next_ex() returns -1 with "truncated dump file; ..." when a file
 *    ends in the middle of a record: the packets before it were returned.
 *  - for pcapng, libpcap exposes one link type (the first interface's). When
 *    it meets an interface description block whose link type OR snapshot
 *    length differs from the first one, pcap_next_ex() fails with "an
 *    interface has a type N different from the type of the first
 *    interface" (or "... a snapshot length ..."); a second section in the
 *    other byte order fails too (as "... sections with different byte
 *    orders" or, its length read in the first section's order, "pcapng block
 *    size N > maximum"). So after any pcapng read error the file is read
 *    again through pcapng_route.c (one handle per interface, packets in the
 *    same file order), skipping the packets the first handle delivered: the
 *    engine sees one pass. A damaged file stops the router at the same block
 *    (its cost: the packets before the damage are read twice, not decoded
 *    twice). Normal files never pay: the router starts only on an error.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "pcapng_route.h"
#include "reader.h"

/* Live reads return after this long without packets, so callers can poll. */
#define LIVE_TIMEOUT_MS 100
/* Enough for any frame on the Pi's Wi-Fi (and for GRO'd frames in tests). */
#define LIVE_SNAPLEN 65535
/* stdio buffer for capture files. */
#define FILE_BUFFER_BYTES (256 << 10)
/* Kernel ring for bursts while Python handles a batch. */
#define LIVE_BUFFER_BYTES (4 << 20)

typedef struct pc_pcapsrc {
    pcap_t *p;          /* NULL once route took over */
    pc_route *route;    /* a pcapng file one handle could not read */
    uint64_t skip;      /* route: packets the first handle already delivered */
    pcap_dumper_t *dump;
    int dirty;          /* dump has unflushed packets */
    int live;
    int linktype;
    int64_t ts_mult;    /* 1: tv_usec holds nanoseconds; 1000: microseconds */
    int fd;             /* live: pollable descriptor of the nonblocking handle */
} pc_pcapsrc;

static void copy_err(char *errbuf, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (!errbuf || !errlen)
        return;
    snprintf(errbuf, errlen, fmt, a, b);
    for (char *c = errbuf; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

/* Decodes one packet read by libpcap (from the handle or the router). */
static inline void deliver(pc_reader *r, pc_pcapsrc *s, int linktype, const struct pcap_pkthdr *h, const u_char *data)
{
    /* Nanosecond precision: tv_usec holds nanoseconds (ts_mult 1). A pcapng
     * timestamp is 64 bits of any unit: past year 2262 (or before 1678) it
     * does not fit in int64 nanoseconds, so it saturates instead of overflowing. */
    int64_t ts, sec = (int64_t)h->ts.tv_sec;
    if (sec > INT64_MAX / 1000000000LL - 1)
        ts = INT64_MAX;
    else if (sec < INT64_MIN / 1000000000LL + 1)
        ts = INT64_MIN;
    else
        ts = sec * 1000000000LL + (int64_t)h->ts.tv_usec * s->ts_mult;
    if (s->dump) {
        pcap_dump((u_char *)s->dump, h, data);
        s->dirty = 1;
    }
    pc_engine_packet(r, linktype, ts, data, h->caplen, h->len);
}

static int route_next(pc_reader *r, pc_pcapsrc *s)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int linktype, rc;
    while ((rc = pc_route_next(s->route, &h, &data, &linktype)) == 1 && s->skip > 0)
        s->skip--;
    if (rc == 1) {
        deliver(r, s, linktype, h, data);
        return PC_SRC_PACKET;
    }
    if (rc == 0)
        return PC_EOF;
    pc_engine_set_error(r, "the capture is damaged after frame %llu: %s",
                        (unsigned long long)pc_engine_frames(r), pc_route_error(s->route));
    return PC_ERR_TRUNCATED;
}

/*
 * The pcapng file's one handle stopped with msg (its interfaces may differ):
 * reads it again from its start through the router, on a duplicate of the
 * same descriptor (the same file, whatever happened to its name since).
 */
static int start_route(pc_reader *r, pc_pcapsrc *s, const char *msg)
{
    char err[PCAP_ERRBUF_SIZE] = "";
    FILE *fp = NULL;
    int fd = dup(fileno(pcap_file(s->p)));
    if (fd >= 0 && !(fp = fdopen(fd, "rb")))
        close(fd);
    if (fp) {
        setvbuf(fp, NULL, _IOFBF, FILE_BUFFER_BYTES);
        s->route = pc_route_open(fp, err, sizeof err);
    }
    if (!s->route) {
        pc_engine_set_error(r, "the capture is damaged after frame %llu: %s (reading it again with one "
                            "libpcap handle per interface failed: %s)",
                            (unsigned long long)pc_engine_frames(r), msg, fp ? err : strerror(errno));
        return PC_ERR_TRUNCATED;
    }
    s->skip = pc_engine_frames(r);
    pcap_close(s->p);
    s->p = NULL;
    return route_next(r, s);
}

static int src_next(pc_reader *r, void *vs, int wait)
{
    pc_pcapsrc *s = vs;
    struct pcap_pkthdr *h;
    const u_char *data;
    if (s->route)
        return route_next(r, s);
    int rc = pcap_next_ex(s->p, &h, &data);
    if (rc == 0 && s->live && wait && s->fd >= 0) {
        /* Nonblocking handle: wait here, bounded, then try once more. A
         * blocking pcap_next_ex() on Linux (TPACKET_V3) may never return
         * while no packet arrives, whatever the timeout. */
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, LIVE_TIMEOUT_MS) > 0)
            rc = pcap_next_ex(s->p, &h, &data);
    }
    if (rc == 1) {
        deliver(r, s, s->linktype, h, data);
        return PC_SRC_PACKET;
    }
    if (rc == 0)
        return 0;
    if (rc == PCAP_ERROR_BREAK)
        return PC_EOF;
    const char *msg = pcap_geterr(s->p);
    uint64_t n = pc_engine_frames(r);
    if (s->live) {
        pc_engine_set_error(r, "capture stopped after %llu packets: %s", (unsigned long long)n, msg);
        return PC_ERR_IO;
    }
    /* Any pcapng error (major version 1; pcap files are 2) goes to the router:
     * a section in the other byte order fails as "different byte orders" or,
     * its length read in the wrong order, as "pcapng block size N > maximum";
     * real damage stops the router at the same block, with the same packets. */
    if (pcap_major_version(s->p) == 1)
        return start_route(r, s, msg);
    pc_engine_set_error(r, "the capture is damaged after frame %llu: %s", (unsigned long long)n, msg);
    return PC_ERR_TRUNCATED;
}

static void src_flush(void *vs)
{
    pc_pcapsrc *s = vs;
    if (s->dump && s->dirty) {
        pcap_dump_flush(s->dump);
        s->dirty = 0;
    }
}

static void src_stop(void *vs)
{
    pc_pcapsrc *s = vs;
    if (s->p) /* route: file reads do not block, and the reader checks its stop flag */
        pcap_breakloop(s->p);
}

static void src_stats(void *vs, pc_stats *st)
{
    pc_pcapsrc *s = vs;
    struct pcap_stat ps;
    if (s->live && pcap_stats(s->p, &ps) == 0)
        st->pcap_dropped = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
}

static void src_close(void *vs)
{
    pc_pcapsrc *s = vs;
    if (!s)
        return;
    if (s->dump) {
        pcap_dump_flush(s->dump);
        pcap_dump_close(s->dump);
    }
    if (s->p)
        pcap_close(s->p);
    pc_route_close(s->route);
    pc_free(s);
}

static const pc_source_ops pcap_ops = {src_next, src_flush, src_stop, src_stats, src_close};

/*
 * The common start of the two openers: clears errbuf, refuses a missing out
 * or name (PC_ERR_ARG with the message missing), sets *out to NULL.
 */
static int open_start(pc_reader **out, const char *name, const char *missing, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = 0;
    if (!out || !name) {
        copy_err(errbuf, errlen, "%s%s", missing, "");
        return PC_ERR_ARG;
    }
    *out = NULL;
    return PC_OK;
}

/*
 * Opens a capture file (see pocketcheck.h). The file is opened with fopen
 * first so that "cannot open" (PC_ERR_OPEN) and "not a capture"
 * (PC_ERR_FORMAT) are told apart; libpcap then sniffs pcap or pcapng from
 * the magic number, whatever the file name says.
 */
int pc_reader_open_file(pc_reader **out, const char *path, const pc_limits *limits,
                        char *errbuf, size_t errlen)
{
    char pe[PCAP_ERRBUF_SIZE] = "";
    FILE *fp = NULL;
    pc_pcapsrc *s = NULL;
    struct stat sb;
    int rc;

    rc = open_start(out, path, "no reader or path given", errbuf, errlen);
    if (rc != PC_OK)
        return rc;
    fp = fopen(path, "rb");
    if (!fp) {
        copy_err(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        rc = PC_ERR_OPEN;
        goto fail;
    }
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        copy_err(errbuf, errlen, "cannot open %s: %s", path, "not a regular file");
        rc = PC_ERR_OPEN;
        goto fail;
    }
    if (sb.st_size == 0) {
        copy_err(errbuf, errlen, "%s is not a capture file: %s", path, "the file is empty");
        rc = PC_ERR_FORMAT;
        goto fail;
    }
    /* A larger stdio buffer: libpcap freads every record header and body,
     * and with the default 4 KiB most of those become read() calls. */
    setvbuf(fp, NULL, _IOFBF, FILE_BUFFER_BYTES);
    s = pc_calloc(1, sizeof *s);
    if (!s) {
        copy_err(errbuf, errlen, "%s%s", "out of memory", "");
        rc = PC_ERR_NOMEM;
        goto fail;
    }
    s->p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, pe);
    if (!s->p) {
        copy_err(errbuf, errlen, "%s is not a capture file libpcap can read: %s", path, pe);
        rc = PC_ERR_FORMAT;
        goto fail;
    }
    fp = NULL; /* pcap_close() closes it now */
    s->ts_mult = 1;
    s->linktype = pcap_datalink(s->p);
    rc = pc_engine_new(out, limits, &pcap_ops, s, s->linktype);
    if (rc != PC_OK) {
        copy_err(errbuf, errlen, "%s%s", "out of memory", "");
        goto fail;
    }
    return PC_OK;
fail:
    if (s && s->p)
        pcap_close(s->p);
    pc_free(s);
    if (fp)
        fclose(fp);
    return rc;
}

/*
 * Opens a live interface (see pocketcheck.h): pcap_create + options +
 * pcap_activate, so the buffer size and a short read timeout can be set
 * before activation; the filter is compiled against the interface's link
 * type. The dump file, when asked for, gets every packet as it is read.
 */
int pc_reader_open_live(pc_reader **out, const char *iface, const char *bpf,
                        const char *dump_path, const pc_limits *limits,
                        char *errbuf, size_t errlen)
{
    char pe[PCAP_ERRBUF_SIZE] = "";
    pc_pcapsrc *s = NULL;
    struct bpf_program prog;
    int rc;

    rc = open_start(out, iface, "no reader or interface given", errbuf, errlen);
    if (rc != PC_OK)
        return rc;
    s = pc_calloc(1, sizeof *s);
    if (!s) {
        copy_err(errbuf, errlen, "%s%s", "out of memory", "");
        rc = PC_ERR_NOMEM;
        goto fail;
    }
    s->live = 1;
    s->fd = -1;
    s->p = pcap_create(iface, pe);
    if (!s->p) {
        copy_err(errbuf, errlen, "cannot open interface %s: %s", iface, pe);
        rc = PC_ERR_OPEN;
        goto fail;
    }
    pcap_set_snaplen(s->p, LIVE_SNAPLEN);
    pcap_set_promisc(s->p, 0); /* the hotspot sees its clients' traffic anyway */
    pcap_set_timeout(s->p, LIVE_TIMEOUT_MS);
    pcap_set_buffer_size(s->p, LIVE_BUFFER_BYTES);
    pcap_set_tstamp_precision(s->p, PCAP_TSTAMP_PRECISION_NANO); /* falls back to micro if unsupported */
    int act = pcap_activate(s->p);
    if (act < 0) {
        const char *why = act == PCAP_ERROR ? pcap_geterr(s->p) : pcap_statustostr(act);
        copy_err(errbuf, errlen, "cannot capture on %s: %s", iface, why);
        rc = PC_ERR_OPEN;
        goto fail;
    }
    s->ts_mult = pcap_get_tstamp_precision(s->p) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
    if (bpf && *bpf) {
        if (pcap_compile(s->p, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            copy_err(errbuf, errlen, "capture filter \"%s\": %s", bpf, pcap_geterr(s->p));
            rc = PC_ERR_FILTER;
            goto fail;
        }
        int set = pcap_setfilter(s->p, &prog);
        pcap_freecode(&prog);
        if (set != 0) {
            copy_err(errbuf, errlen, "capture filter \"%s\": %s", bpf, pcap_geterr(s->p));
            rc = PC_ERR_FILTER;
            goto fail;
        }
    }
    s->linktype = pcap_datalink(s->p);
    if (pcap_setnonblock(s->p, 1, pe) != 0) {
        copy_err(errbuf, errlen, "cannot capture on %s: %s", iface, pe);
        rc = PC_ERR_OPEN;
        goto fail;
    }
    s->fd = pcap_get_selectable_fd(s->p);
    if (dump_path) {
        s->dump = pcap_dump_open(s->p, dump_path);
        if (!s->dump) {
            copy_err(errbuf, errlen, "cannot write %s: %s", dump_path, pcap_geterr(s->p));
            rc = PC_ERR_IO;
            goto fail;
        }
    }
    rc = pc_engine_new(out, limits, &pcap_ops, s, s->linktype);
    if (rc != PC_OK) {
        copy_err(errbuf, errlen, "%s%s", "out of memory", "");
        goto fail;
    }
    return PC_OK;
fail:
    src_close(s);
    return rc;
}
