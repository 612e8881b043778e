/*
 * pocketcheck.h - the capture core: packets in, the names a phone reveals out.
 *
 * Plain C99, no Python. libpcap reads files (pcap, pcapng) and live
 * interfaces through one code path; the core decodes link, IP, UDP and TCP,
 * reassembles what it must within fixed bounds, and turns DNS, TLS, QUIC,
 * HTTP and DHCP payloads into events.
 *
 * Ownership, in one place:
 *  - A pc_reader is an opaque handle. The caller creates it with one of the
 *    pc_reader_open_*() functions and frees it with pc_reader_free().
 *  - Events are delivered in batches into memory the caller owns (an array of
 *    pc_event and one byte buffer for their strings). The core never keeps a
 *    pointer into caller memory after a call returns.
 *
 * Status: functions return PC_OK (0) or a negative PC_ERR_* code; a
 * non-negative return that is not a status is a count. pc_strerror() turns a
 * code into a short English phrase.
 */
#ifndef POCKETCHECK_H
#define POCKETCHECK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------ */
#define PC_OK             0
#define PC_EOF            1   /* pc_reader_status(): input ended cleanly */
#define PC_ERR_NOMEM     -1   /* an allocation failed */
#define PC_ERR_ARG       -2   /* a bad argument (NULL, zero capacity...) */
#define PC_ERR_OPEN      -3   /* file or interface could not be opened */
#define PC_ERR_FORMAT    -4   /* the file is not a capture libpcap can read */
#define PC_ERR_TRUNCATED -5   /* the capture ends in damage; events before it were delivered */
#define PC_ERR_IO        -6   /* a read or write failed */
#define PC_ERR_STATE     -7   /* the call is not legal in the handle's current state */
#define PC_ERR_FILTER    -8   /* the BPF filter does not compile */
#define PC_ERR_CORRUPT   -9   /* a compiled file is damaged or of another version */
#define PC_ERR_LIMIT    -10   /* a fixed bound was reached */

/* Returns a static string for any status code (never NULL). */
const char *pc_strerror(int status);

/* ---- events ------------------------------------------------------------ */
#define PC_EV_DNS_QUERY    1  /* name = question name, rrtype = question type */
#define PC_EV_DNS_ANSWER   2  /* name = owner, data = A/AAAA address text or CNAME target, rrtype, ttl */
#define PC_EV_MDNS_QUERY   3  /* as DNS_QUERY, on port 5353 */
#define PC_EV_LLMNR_QUERY  4  /* as DNS_QUERY, on port 5355 */
#define PC_EV_TLS_SNI      5  /* ClientHello over TCP: name = SNI (may be empty), s1 = JA4, s2 = JA3 (md5 hex), s3 = ALPN list "h2,http/1.1" */
#define PC_EV_QUIC_SNI     6  /* ClientHello from QUIC Initial packets, same fields as TLS_SNI */
#define PC_EV_HTTP_HOST    7  /* name = Host without port, data = path, s1 = method, s2 = User-Agent */
#define PC_EV_TLS_CERT     8  /* data = one DER certificate, index = position in the chain (0 = leaf) */
#define PC_EV_FLOW         9  /* a flow ended or was evicted: pkts/bytes/first/last/tcp_state valid */
#define PC_EV_DHCP        10  /* a DHCP client message: name = host name option, data = requested/assigned IPv4 text, mac = client */
#define PC_EV_DNS_RESPONSE_QUESTION 11  /* as DNS_QUERY, but the question echoed in a DNS response (port 53):
                                         * src, sport and mac are the response's destination (the asker), dst
                                         * the server, whichever side the flow saw first */
#define PC_EV_KIND_MAX    11

/*
 * The name of an event kind as the extract output and the Python layer spell
 * it ("dns.query", "tls.sni", ...): a static string, never to be freed.
 * Returns "" for 0 (no kind) and NULL above PC_EV_KIND_MAX. This table is
 * the one list of the names; appliance/native.py builds its own from it.
 */
const char *pc_kind_name(uint32_t kind);

/* pc_event.flags */
#define PC_EVF_PARTIAL   0x1  /* parsed from incomplete data (missing segment, snaplen, bound) */
#define PC_EVF_EVICTED   0x2  /* PC_EV_FLOW: ended by the eviction policy, not by FIN/RST/end of input */

/* pc_event.tcp_state bits (PC_EV_FLOW) */
#define PC_TCP_SYN       0x01
#define PC_TCP_SYNACK    0x02
#define PC_TCP_ESTABLISHED 0x04
#define PC_TCP_FIN       0x08
#define PC_TCP_RST       0x10

/* A string of an event: a slice of the caller's string buffer. */
typedef struct pc_str {
    uint32_t off;
    uint32_t len;
} pc_str;

typedef struct pc_event {
    uint64_t frame;       /* 1-based frame number, as tshark numbers the frames of the input */
    int64_t  ts_ns;       /* packet time, nanoseconds since the Unix epoch */
    uint64_t flow_id;     /* unique per reader; every event of a flow carries it; 0 = none */
    int64_t  first_ns;    /* PC_EV_FLOW: first and last packet times */
    int64_t  last_ns;
    uint64_t pkts[2];     /* PC_EV_FLOW: [0] client->server, [1] server->client */
    uint64_t bytes[2];    /* PC_EV_FLOW: IP bytes each way */
    uint32_t kind;        /* PC_EV_* */
    uint32_t flags;       /* PC_EVF_* */
    uint32_t ttl;         /* DNS answers */
    uint32_t index;       /* TLS_CERT: position in the chain */
    uint32_t tcp_state;   /* PC_EV_FLOW: PC_TCP_* bits seen */
    uint16_t rrtype;      /* DNS */
    uint16_t sport;       /* ports and addresses of the flow, client (initiator) first */
    uint16_t dport;
    uint8_t  ipver;       /* 4 or 6; 0 when the event has no IP flow */
    uint8_t  proto;       /* 6 = TCP, 17 = UDP */
    uint8_t  src[16];     /* client address; IPv4 uses the first 4 bytes */
    uint8_t  dst[16];     /* server address */
    uint8_t  mac[6];      /* the client's MAC address (which device), when the link has one */
    uint8_t  has_mac;
    uint8_t  reserved;
    pc_str   name;
    pc_str   data;
    pc_str   s1;
    pc_str   s2;
    pc_str   s3;
} pc_event;

/* ---- bounds ------------------------------------------------------------ */
/*
 * Every structure that grows with the input has a bound here; pc_limits_default()
 * fills the values the appliance uses (documented in native/README.md with the
 * eviction policy). Zero in a field means "use the default".
 */
typedef struct pc_limits {
    uint32_t max_flows;         /* flow table entries */
    uint32_t flow_idle_s;       /* a flow idle this long is ended */
    uint32_t max_stream_bytes;  /* buffered, not yet parsed bytes per TCP direction */
    uint32_t max_ooo_segments;  /* out-of-order TCP segments held per direction */
    uint32_t max_frag_bytes;    /* all IP fragment buffers together */
    uint32_t max_queue_events;  /* events held inside the reader between calls */
} pc_limits;

void pc_limits_default(pc_limits *out);

/* ---- statistics -------------------------------------------------------- */
typedef struct pc_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t events;
    uint64_t unknown_linktype;  /* packets skipped for a link type the core does not decode */
    uint64_t malformed;         /* packets or payloads that failed to decode */
    uint64_t fragments;         /* IP fragments seen */
    uint64_t frag_dropped;      /* fragments dropped by the reassembly bound */
    uint64_t flows;             /* flows created */
    uint64_t flows_evicted;     /* flows ended by the table bound or the idle timeout */
    uint64_t stream_gaps;       /* TCP directions that lost a segment */
    uint64_t stream_overflow;   /* TCP directions that hit max_stream_bytes */
    uint64_t events_dropped;    /* events lost to an allocation failure */
    uint64_t pcap_dropped;      /* live capture: packets the kernel dropped */
} pc_stats;

/* ---- the reader -------------------------------------------------------- */
typedef struct pc_reader pc_reader;

/*
 * Opens a capture file (pcap or pcapng, any byte order or timestamp
 * precision). On failure returns PC_ERR_OPEN or PC_ERR_FORMAT and writes a
 * one-line reason into errbuf (errlen bytes, always NUL-terminated).
 * limits may be NULL for the defaults. *out is owned by the caller.
 */
int pc_reader_open_file(pc_reader **out, const char *path, const pc_limits *limits,
                        char *errbuf, size_t errlen);

/*
 * Opens a live interface with an optional BPF filter (NULL = everything).
 * When dump_path is not NULL every captured packet is also written there as
 * pcap as it arrives (flushed after each batch). Same errors as above, plus
 * PC_ERR_FILTER.
 */
int pc_reader_open_live(pc_reader **out, const char *iface, const char *bpf,
                        const char *dump_path, const pc_limits *limits,
                        char *errbuf, size_t errlen);

/*
 * Opens a reader fed by the caller through pc_reader_feed() (tests, fuzzing).
 */
int pc_reader_open_feed(pc_reader **out, const pc_limits *limits);

/*
 * Decodes one packet of the given DLT link type on a feed reader; events go
 * to the reader's queue and come out of pc_reader_next(). The core does not
 * keep data after the call returns. Returns PC_OK or PC_ERR_STATE on a
 * reader that is not a feed reader.
 */
int pc_reader_feed(pc_reader *r, int linktype, int64_t ts_ns,
                   const uint8_t *data, size_t caplen, size_t wirelen);

/*
 * Ends the input of a feed reader: open flows and partial streams are
 * flushed into events (as at the end of a file).
 */
int pc_reader_finish(pc_reader *r);

/*
 * Fills at most cap events into ev and their strings into strbuf (strcap
 * bytes; each pc_str is an offset into it). Reads packets as needed.
 * Returns the number of events written (>= 0) or a negative status.
 * 0 means: nothing more now. For a file, or a finished feed reader, check
 * pc_reader_status(): PC_EOF or PC_ERR_TRUNCATED mean the input is over
 * and all flows have been flushed. A live reader returns 0 after its read
 * timeout when no packet came; call again.
 * An event whose strings cannot fit into an empty strbuf has its longest
 * strings cut and PC_EVF_PARTIAL set, so progress is always made.
 */
int pc_reader_next(pc_reader *r, pc_event *ev, size_t cap, uint8_t *strbuf, size_t strcap);

/*
 * PC_OK while input may still come, PC_EOF when it ended cleanly,
 * PC_ERR_TRUNCATED (or another error) when it ended in damage.
 */
int pc_reader_status(const pc_reader *r);

/* A one-line description of the last problem (empty string if none). */
const char *pc_reader_error(const pc_reader *r);

/* Copies the reader's counters. */
void pc_reader_stats(const pc_reader *r, pc_stats *out);

/* The DLT link type of the first interface (files and live), -1 for feed readers. */
int pc_reader_linktype(const pc_reader *r);

/*
 * Live readers: makes the reader stop reading; the next pc_reader_next()
 * calls flush flows and then the status becomes PC_EOF. Safe from a signal
 * handler or another thread.
 */
void pc_reader_stop(pc_reader *r);

/* Frees the reader and everything it owns. NULL is allowed. */
void pc_reader_free(pc_reader *r);

/* ---- extract output ------------------------------------------------------ */
#define PC_FMT_JSONL 1
#define PC_FMT_TSV   2

/*
 * Writes the `pocketcheck extract` lines of events ev[0..n) (one batch of
 * pc_reader_next(), with its strbuf) into out (outcap bytes), exactly as
 * appliance/extract.py would. file is the file field already escaped for
 * fmt (JSON: quoted). Flow events are skipped unless flows is 1.
 * Stops before an event the caller must format itself (a certificate, a
 * string with bytes outside printable ASCII) or one that does not fit.
 * *done is the number of events handled (written or skipped). Returns the
 * number of bytes written, or PC_ERR_ARG.
 */
int pc_format_events(const pc_event *ev, size_t n, const uint8_t *strbuf, int fmt, int flows,
                     const char *file, size_t file_len, char *out, size_t outcap, size_t *done);

/* ---- indicator lists (native/src/matcher_build.c) ---------------------- */
/*
 * The bulk path of loading a big indicator list: the list stays one buffer
 * (values plus offsets) from the file to the matcher, with no object per
 * indicator on the caller's side.
 *
 * pc_domain_lines() reads the lines of buf[*pos .. len) that are clean domain
 * indicators and appends each one, ASCII case folded, to vals at *vlen: line
 * k stored becomes vals[off[*n] .. off[*n + 1]) and *n grows by one (off[0]
 * is the caller's, usually 0; off has cap entries). A clean line is at most
 * 253 bytes of labels of [A-Za-z0-9_-], each 1..63 bytes and neither starting
 * nor ending with '-', at least two labels, the last one not all digits; it
 * ends at '\n' (one '\r' before it is dropped) or at len. A one-name
 * hosts-file line ("0.0.0.0" or "127.0.0.1", blanks, a clean domain other
 * than localhost.localdomain, blanks) stores its name. Empty lines are
 * skipped. vals needs at most len - *pos bytes. Returns 0 when every line was
 * read (*pos == len), 1 when it stopped at the start of a line that is not
 * clean (*pos is there; the caller reads that line its own way, then calls
 * again after it), PC_ERR_LIMIT when off is full (*pos at the first line not
 * stored), PC_ERR_ARG (NULL pointers, *pos > len, len or *vlen >= 2^32).
 */
int pc_domain_lines(const uint8_t *buf, size_t len, size_t *pos, uint8_t *vals, size_t *vlen,
                    uint32_t *off, size_t cap, size_t *n);

/*
 * Sorts the n strings buf[off[i] .. off[i+1]), each with a small key[i]
 * (NULL: all 0), by (key, bytes), equal ones by index (a stable order), and
 * writes the sorted indexes into order[0 .. n). When dups is not NULL (room
 * for n), every position p of order whose string and key equal those at p-1
 * is written to dups. Returns the number of such duplicate positions (>= 0),
 * PC_ERR_ARG (NULL pointers, offsets decreasing, n > INT32_MAX) or
 * PC_ERR_NOMEM. Uses 24 bytes per string (16 on 32-bit hosts) while it runs.
 */
int pc_strings_sort(const uint8_t *buf, const uint32_t *off, const uint8_t *key, size_t n,
                    uint32_t *order, uint32_t *dups);

/*
 * Writes the strings buf[off[k] .. off[k+1]) (n strings, off has n+1
 * entries) for k = order[*next], order[*next + 1], ... (up to count) into
 * out, each followed by '\n', as many as fit in cap bytes, and advances
 * *next past them: the caller hashes out and calls again until *next ==
 * count, so a sorted million strings never need a second copy of them all.
 * Returns the bytes written, PC_ERR_LIMIT (the next string does not fit
 * even alone), or PC_ERR_ARG (NULL pointers, *next > count, an order entry
 * >= n, offsets decreasing, cap > INT32_MAX).
 */
int pc_strings_join(const uint8_t *buf, const uint32_t *off, size_t n, const uint32_t *order, size_t count,
                    size_t *next, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
