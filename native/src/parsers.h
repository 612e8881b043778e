/*
 * parsers.h - the payload parsers (dns.c, tls.c, hello.c, http.c, quic.c,
 * dhcp.c) and the per-direction state the packet path keeps for them. A
 * parser includes this header, events.h (through it) and text.h, never the
 * packet path's (engine.h, flow.h, reader.h) nor dispatch.h: it is called,
 * it does not call back up. dispatch.c chooses among them; the C unit
 * tests and fuzz harnesses include this header to reach the pieces directly.
 */
#ifndef PC_PARSERS_H
#define PC_PARSERS_H

#include "events.h"

/* Parser ids stored in pc_dirstate.app (0 = not chosen yet). */
#define PC_APP_NONE 0
#define PC_APP_TLS  1
#define PC_APP_HTTP 2
#define PC_APP_DNS  3
#define PC_APP_SKIP 4
#define PC_APP_SOCKS 5
#define PC_APP_HTTPRESP 6
#define PC_APP_MYSQL 7
#define PC_APP_STARTTLS 8

/* ---- state the packet path keeps for the parsers ------------------------ */
/*
 * Per-flow state a UDP parser may hang on a flow (QUIC CRYPTO reassembly).
 * The packet path stores the pointer in the flow, passes it back on every
 * datagram of the flow, and calls pc_app_udp_end() (dispatch.h) exactly
 * once when the flow ends (end of input, idle, eviction), which frees it.
 */
typedef struct pc_udp_app pc_udp_app;   /* defined in quic.c (the only UDP parser with state) */

/* Small per-direction parser state kept by the packet path inside the flow. */
typedef struct pc_dirstate {
    uint8_t  app;        /* which parser owns this direction (0 = not chosen yet) */
    uint8_t  done;       /* 1: the parser wants no more bytes */
    uint16_t u16;
    uint32_t u32[4];
} pc_dirstate;

/* Returns of the stream parsers (the pc_app_tcp contract in dispatch.h). */
#define PC_STREAM_MORE 0
#define PC_STREAM_DONE 1

/* ---- DNS (dns.c) ---------------------------------------------------------- */
/* One DNS message (UDP payload or one TCP-framed message without its length). */
void pc_dns_message(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len);

/*
 * Longest presentation name pc_dns_name() writes: 255 wire bytes of which
 * every label byte may take 4 characters ("\DDD").
 */
#define PC_DNS_NAME_MAX 1024

/*
 * Reads the (possibly compressed) name at msg[off] into out (PC_DNS_NAME_MAX
 * bytes) in presentation form: labels joined by '.', no trailing dot, the
 * root as "."; a label byte outside 0x21..0x7e becomes "\DDD" (decimal, as
 * in RFC 1035 master files), a '.' or '\' inside a label is preceded by '\'.
 * Compression pointers must point strictly before the place the previous
 * jump landed (so they cannot loop) and at most 64 are followed; a label
 * longer than 63 bytes, a wire name longer than 255 bytes, the reserved
 * label types 0x40/0x80 and any read past len are errors.
 * On success returns the name length (>= 1) and sets *next to the offset just
 * after the name at off (after its first pointer, if any); -1 on error.
 */
int pc_dns_name(const uint8_t *msg, size_t len, size_t off, char *out, size_t *next);

/*
 * One DNS-format message (DNS, mDNS, LLMNR). answers = 1 (DNS): every
 * question of a query becomes an event of kind qkind, every question of a
 * response PC_EV_DNS_RESPONSE_QUESTION, and the A, AAAA and CNAME answers
 * PC_EV_DNS_ANSWER (a response's events name its destination as src).
 * answers = 0 (mDNS, LLMNR): only the questions of queries (QR = 0) become
 * events of kind qkind. A damaged message yields the events before the
 * damage and counts as malformed.
 */
void pc_dns_message_kind(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len,
                         uint32_t qkind, int answers);

/* DNS over TCP on one direction (2-byte length framing); pc_app_tcp contract. */
int pc_dns_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
               const uint8_t *data, size_t len, int final, size_t *consumed);

/* ---- TLS ClientHello and fingerprints (hello.c; TCP and QUIC) ------------- */
/*
 * One TLS handshake message of type ClientHello, starting at its 4-byte
 * handshake header (type 1, 24-bit length). len may be shorter than the
 * message (truncated = 1): report what is there. kind is PC_EV_TLS_SNI or
 * PC_EV_QUIC_SNI (JA4 starts with 't' or 'q'). Returns PC_OK or PC_ERR_FORMAT.
 */
int pc_tls_client_hello(pc_ctx *cx, const pc_meta *m, uint32_t kind,
                        const uint8_t *hs, size_t len, int truncated);

/* Bounds on the lists kept from one ClientHello (real ones have < 100). */
#define PC_HELLO_MAX_LIST 256

/* The fields of one ClientHello that the events and fingerprints need. */
typedef struct pc_hello {
    uint16_t legacy_version;
    uint16_t ciphers[PC_HELLO_MAX_LIST];      size_t n_ciphers;
    uint16_t exts[PC_HELLO_MAX_LIST];         size_t n_exts;
    uint16_t groups[PC_HELLO_MAX_LIST];       size_t n_groups;
    uint8_t  pointfmts[PC_HELLO_MAX_LIST];    size_t n_pointfmts;
    uint16_t sigalgs[PC_HELLO_MAX_LIST];      size_t n_sigalgs;
    uint16_t versions[PC_HELLO_MAX_LIST];     size_t n_versions;  /* supported_versions */
    int      has_sni;                         /* server_name extension present */
    const uint8_t *sni;  size_t sni_len;      /* first host_name entry (points into hs) */
    const uint8_t *alpn; size_t alpn_len;     /* ALPN protocol_name_list body (points into hs) */
    int      partial;                         /* cut short or over a bound */
} pc_hello;

/*
 * Parses the ClientHello handshake message hs (from its 4-byte header; len
 * may be shorter than the message). Fills *h with what is present; pointers
 * in *h point into hs. Returns PC_OK, or PC_ERR_FORMAT when hs is not a
 * ClientHello or ends before the cipher suites.
 */
int pc_hello_parse(const uint8_t *hs, size_t len, pc_hello *h);

/*
 * Writes the JA3 string ("771,4865-4866,0-23,29-23,0", GREASE removed) of h
 * into out (cap bytes, NUL-terminated, cut if too small); returns its length.
 */
size_t pc_ja3_string(const pc_hello *h, char *out, size_t cap);

/* Writes the 32 hex digits of MD5(JA3 string) + NUL into out[33]. */
void pc_ja3_hash(const pc_hello *h, char out[33]);

/*
 * Writes the JA4 fingerprint ("t13d1516h2_8daaf6152771_e5627efa2ab1") of h
 * into out[37] (36 characters + NUL); proto is 't' (TCP) or 'q' (QUIC).
 * raw: when not NULL, the unhashed "a_ciphers_exts_sigalgs" form
 * (JA4_r) goes there (rawcap bytes, NUL-terminated, cut if too small).
 */
void pc_ja4(const pc_hello *h, char proto, char out[37], char *raw, size_t rawcap);

/* ---- TLS over TCP (tls.c) ------------------------------------------------ */
/* The TLS record stream of one TCP direction; pc_app_tcp contract. */
int pc_tls_stream(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
                  const uint8_t *data, size_t len, int final, size_t *consumed);

/* ---- HTTP (http.c) -------------------------------------------------------- */
/* Bound on one request's request line + headers. */
#define PC_HTTP_MAX_HEAD 8192

/*
 * Returns 1 when data starts with an HTTP/1.x method and a space, 0 when it
 * cannot, -1 when data is too short to tell (a prefix of a method).
 */
int pc_http_is_request(const uint8_t *data, size_t len);

/* Same for the server side: "HTTP/1.x " (1), not (0), too short (-1). */
int pc_http_is_response(const uint8_t *data, size_t len);

/*
 * The server side of an HTTP connection: a 2xx answer without a body (the
 * answer to CONNECT) is consumed and the direction handed back to the
 * dispatcher (ds->app = PC_APP_NONE) for the tunnel; anything else is done.
 */
int pc_http_response(pc_dirstate *ds, const uint8_t *data, size_t len, int final, size_t *consumed);

/*
 * The client side of an HTTP/1.x connection; pc_app_tcp contract. After a
 * CONNECT request the direction is handed back to the dispatcher
 * (ds->app = PC_APP_NONE) for the tunnel.
 */
int pc_http_stream(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
                   const uint8_t *data, size_t len, int final, size_t *consumed);

/* An HTTP-format request in one UDP datagram (SSDP, port 1900). */
void pc_http_datagram(pc_ctx *cx, const pc_meta *m, const uint8_t *data, size_t len);

/* ---- QUIC (quic.c) -------------------------------------------------------- */
/* A QUIC long-header datagram (client or server); per-flow state in *app. */
void pc_quic_datagram(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len);

/* The flow ends: report what a partial CRYPTO stream allows, free *app, set it to NULL. */
void pc_quic_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app);

/* ---- DHCP (dhcp.c) -------------------------------------------------------- */
/* One BOOTP/DHCP datagram (ports 67/68); client messages become PC_EV_DHCP. */
void pc_dhcp_message(pc_ctx *cx, const pc_meta *m, const uint8_t *data, size_t len);

#endif
