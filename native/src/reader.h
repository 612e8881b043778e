/*
 * reader.h - the reader's private side: the seam between the packet path
 * (reader.c and below; no libpcap) and capture.c (libpcap files and live
 * interfaces), plus one door for the C unit tests. reader.c owns the
 * reader; a packet source plugs into it through a small table of
 * functions, so the ARM cross-build and the unit tests can run the whole
 * packet path without libpcap (feed readers). Parsers never include it.
 */
#ifndef PC_READER_H
#define PC_READER_H

#include "events.h"

/* pc_source_ops.next(): a packet was read (distinct from PC_EOF, which is 1). */
#define PC_SRC_PACKET 2

/* What a packet source (capture.c) provides; all called with its src pointer. */
typedef struct pc_source_ops {
    /*
     * Reads one packet and hands it to pc_engine_packet(). Returns
     * PC_SRC_PACKET when a packet was read, 0 when none is available now
     * (live: none within the read timeout, or none at once when wait is 0),
     * PC_EOF at a clean end, or a negative PC_ERR_* after setting the
     * reason with pc_engine_set_error(). wait is 0 when the reader already
     * has events to return, so a live source must not block.
     */
    int (*next)(pc_reader *r, void *src, int wait);
    /* End of a pc_reader_next() batch: flush the dump file. May be NULL. */
    void (*flush)(void *src);
    /* pc_reader_stop(): interrupt a blocking read (pcap_breakloop). May be NULL. */
    void (*stop)(void *src);
    /* Adds the source's own counters (kernel drops) to *st. May be NULL. */
    void (*stats)(void *src, pc_stats *st);
    /* Frees the source. */
    void (*close)(void *src);
} pc_source_ops;

/*
 * Creates a reader around a source (ops and src may be NULL for a feed
 * reader). On success the reader owns src and closes it in pc_reader_free();
 * on failure src is untouched and the caller closes it.
 * Returns PC_OK or PC_ERR_NOMEM.
 */
int pc_engine_new(pc_reader **out, const pc_limits *limits, const pc_source_ops *ops,
                  void *src, int linktype);

/*
 * Decodes one packet of the given DLT link type: counts it, numbers it (the
 * next 1-based frame number) and queues whatever events it completes.
 */
void pc_engine_packet(pc_reader *r, int linktype, int64_t ts_ns,
                      const uint8_t *data, size_t caplen, size_t wirelen);

/* Sets the reader's one-line error message (printf format). */
void pc_engine_set_error(pc_reader *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The number of frames read so far (the last frame's number). */
uint64_t pc_engine_frames(const pc_reader *r);

/*
 * For C unit tests of one parser: the state of a feed reader, so a test can
 * call pc_dns_message() and friends directly and read the events back with
 * pc_reader_next(). NULL for NULL.
 */
pc_ctx *pc_reader_ctx(pc_reader *r);

#endif
