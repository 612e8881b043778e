/*
 * test_engine.c - the packet path, end to end: crafted frames go in through
 * a feed reader, events come out of pc_reader_next(). Payloads are DNS
 * queries (UDP and DNS-over-TCP framing) and an HTTP request, so the real
 * parsers (dispatch.c, dns.c, http.c) report what the packet path delivered:
 * the expected names are the ones the test put in, byte for byte.
 * Then real files from the shared corpus, with counts taken from capinfos
 * and tshark by hand (each number says where it came from).
 *
 * Exits non-zero when a check fails; the last line is the tally.
 *
 * Long (~1,500 lines) because it is the one end-to-end test of the packet
 * path: every scenario (link types, tunnels, TCP, flows, the queue,
 * allocation failures, real files) uses the same frame builders and event
 * collector at the top; split by layer, each part would carry them again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "reader.h"


#define NS 1000000000LL

/* ---- frame builders ------------------------------------------------------ */

static void wr16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* A DNS query for name (type A), as dns.c expects it. */
static size_t dns_query(uint8_t *o, uint16_t id, const char *name)
{
    size_t n = 0;
    wr16(o, id); wr16(o + 2, 0x0100); wr16(o + 4, 1); wr16(o + 6, 0); wr16(o + 8, 0); wr16(o + 10, 0);
    n = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        o[n++] = (uint8_t)l;
        memcpy(o + n, p, l);
        n += l;
        p += l;
        if (*p == '.')
            p++;
    }
    o[n++] = 0;
    wr16(o + n, 1); wr16(o + n + 2, 1);
    return n + 4;
}

static size_t udp_hdr(uint8_t *o, uint16_t sp, uint16_t dp, const uint8_t *pl, size_t n)
{
    wr16(o, sp); wr16(o + 2, dp); wr16(o + 4, (unsigned)(n + 8)); wr16(o + 6, 0);
    memcpy(o + 8, pl, n);
    return n + 8;
}

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

static size_t tcp_hdr(uint8_t *o, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack, uint8_t fl,
                      const uint8_t *pl, size_t n)
{
    memset(o, 0, 20);
    wr16(o, sp); wr16(o + 2, dp); wr32(o + 4, seq); wr32(o + 8, ack);
    o[12] = 5 << 4; o[13] = fl; wr16(o + 14, 65535);
    if (n)
        memcpy(o + 20, pl, n);
    return n + 20;
}

/* IPv4 header + payload; fo = flags/fragment-offset field (host order). */
static size_t ip4(uint8_t *o, const uint8_t *s, const uint8_t *d, uint8_t proto, uint16_t id, uint16_t fo,
                  const uint8_t *pl, size_t n)
{
    memset(o, 0, 20);
    o[0] = 0x45; wr16(o + 2, (unsigned)(n + 20)); wr16(o + 4, id); wr16(o + 6, fo);
    o[8] = 64; o[9] = proto;
    memcpy(o + 12, s, 4); memcpy(o + 16, d, 4);
    memcpy(o + 20, pl, n);
    return n + 20;
}

/* IPv6 header + payload (pl already holds any extension headers). */
static size_t ip6(uint8_t *o, const uint8_t *s, const uint8_t *d, uint8_t nh, const uint8_t *pl, size_t n)
{
    memset(o, 0, 40);
    o[0] = 0x60; wr16(o + 4, (unsigned)n); o[6] = nh; o[7] = 64;
    memcpy(o + 8, s, 16); memcpy(o + 24, d, 16);
    memcpy(o + 40, pl, n);
    return n + 40;
}

static const uint8_t MAC_C[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t MAC_S[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};

static size_t eth(uint8_t *o, const uint8_t *dst, const uint8_t *src, uint16_t et, const uint8_t *pl, size_t n)
{
    memcpy(o, dst, 6); memcpy(o + 6, src, 6); wr16(o + 12, et);
    memcpy(o + 14, pl, n);
    return n + 14;
}

static const uint8_t A4[4] = {192, 168, 4, 10}, B4[4] = {9, 9, 9, 9};
static const uint8_t A6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a};
static const uint8_t B6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53};

/* ---- reading events back -------------------------------------------------- */

#define MAXEV 4096
typedef struct got {
    int n;
    pc_event ev[MAXEV];
    char name[MAXEV][256];
    int status;
} got;

static got G;

/* Drains every event now available (after finish: all of them). */
static void collect(pc_reader *r, got *g, size_t cap, size_t strcap)
{
    static pc_event ev[256];
    static uint8_t sb[1 << 16];
    if (cap > 256)
        cap = 256;
    if (strcap > sizeof sb)
        strcap = sizeof sb;
    for (int guard = 0; guard < 100000; guard++) {
        int n = pc_reader_next(r, ev, cap, sb, strcap);
        if (n < 0) {
            g->status = n;
            return;
        }
        for (int i = 0; i < n && g->n < MAXEV; i++) {
            g->ev[g->n] = ev[i];
            size_t l = ev[i].name.len < 255 ? ev[i].name.len : 255;
            memcpy(g->name[g->n], sb + ev[i].name.off, l);
            g->name[g->n][l] = 0;
            g->n++;
        }
        if (n == 0)
            break;
    }
    g->status = pc_reader_status(r);
}

static int count_kind(const got *g, uint32_t kind)
{
    int c = 0;
    for (int i = 0; i < g->n; i++)
        c += g->ev[i].kind == kind;
    return c;
}

static int find_name(const got *g, uint32_t kind, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (g->ev[i].kind == kind && !strcmp(g->name[i], name))
            return i;
    return -1;
}

static pc_reader *feed_reader(const pc_limits *lim)
{
    pc_reader *r = NULL;
    int rc = pc_reader_open_feed(&r, lim);
    if (rc != PC_OK) {
        printf("FATAL: pc_reader_open_feed: %d\n", rc);
        exit(2);
    }
    memset(&G, 0, sizeof G);
    return r;
}

static void finish_collect(pc_reader *r)
{
    pc_reader_finish(r);
    collect(r, &G, 256, 1 << 16);
}

/* An IPv4 UDP DNS query for name, client A4:40000 -> B4:53. */
static size_t v4_dns(uint8_t *o, const char *name, uint16_t sport)
{
    uint8_t q[512], u[600];
    size_t n = dns_query(q, 0x1234, name);
    n = udp_hdr(u, sport, 53, q, n);
    return ip4(o, A4, B4, 17, 1, 0, u, n);
}

static size_t v6_dns(uint8_t *o, const char *name, uint16_t sport)
{
    uint8_t q[512], u[600];
    size_t n = dns_query(q, 0x1234, name);
    n = udp_hdr(u, sport, 53, q, n);
    return ip6(o, A6, B6, 17, u, n);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_link_types(void)
{
    uint8_t ip[700], f[800];
    size_t n;
    pc_reader *r = feed_reader(NULL);
    int64_t t = 1000 * NS;

    /* Ethernet, IPv4 */
    n = v4_dns(ip, "eth.example", 1001);
    size_t fl = eth(f, MAC_S, MAC_C, 0x0800, ip, n);
    pc_reader_feed(r, 1, t, f, fl, fl);
    /* 802.1Q */
    n = v4_dns(ip, "vlan.example", 1002);
    memcpy(f, MAC_S, 6); memcpy(f + 6, MAC_C, 6);
    wr16(f + 12, 0x8100); wr16(f + 14, 11); wr16(f + 16, 0x0800); memcpy(f + 18, ip, n);
    pc_reader_feed(r, 1, t, f, n + 18, n + 18);
    /* 802.1ad + 802.1Q + 802.1Q (three tags) */
    n = v4_dns(ip, "qinq.example", 1003);
    wr16(f + 12, 0x88a8); wr16(f + 14, 100); wr16(f + 16, 0x8100); wr16(f + 18, 200);
    wr16(f + 20, 0x8100); wr16(f + 22, 300); wr16(f + 24, 0x0800); memcpy(f + 26, ip, n);
    pc_reader_feed(r, 1, t, f, n + 26, n + 26);
    /* Ethernet, IPv6 */
    n = v6_dns(ip, "eth6.example", 1004);
    fl = eth(f, MAC_S, MAC_C, 0x86dd, ip, n);
    pc_reader_feed(r, 1, t, f, fl, fl);
    /* Linux SLL: packet type 4 (outgoing), ARPHRD_ETHER, 6-byte address */
    n = v4_dns(ip, "sll.example", 1005);
    memset(f, 0, 16); wr16(f, 4); wr16(f + 2, 1); wr16(f + 4, 6); memcpy(f + 6, MAC_C, 6); wr16(f + 14, 0x0800);
    memcpy(f + 16, ip, n);
    pc_reader_feed(r, 113, t, f, n + 16, n + 16);
    /* Linux SLL2 */
    n = v6_dns(ip, "sll2.example", 1006);
    memset(f, 0, 20); wr16(f, 0x86dd); wr32(f + 4, 3); wr16(f + 8, 1); f[10] = 4; f[11] = 6; memcpy(f + 12, MAC_C, 6);
    memcpy(f + 20, ip, n);
    pc_reader_feed(r, 276, t, f, n + 20, n + 20);
    /* raw IP: DLT 12, 14, LINKTYPE_RAW 101 (v4 and v6), 228, 229 */
    n = v4_dns(ip, "raw12.example", 1007);
    pc_reader_feed(r, 12, t, ip, n, n);
    n = v6_dns(ip, "raw14.example", 1008);
    pc_reader_feed(r, 14, t, ip, n, n);
    n = v4_dns(ip, "raw101.example", 1009);
    pc_reader_feed(r, 101, t, ip, n, n);
    n = v6_dns(ip, "raw101v6.example", 1010);
    pc_reader_feed(r, 101, t, ip, n, n);
    n = v4_dns(ip, "ipv4.example", 1011);
    pc_reader_feed(r, 228, t, ip, n, n);
    n = v6_dns(ip, "ipv6.example", 1012);
    pc_reader_feed(r, 229, t, ip, n, n);
    /* 228 with an IPv6 packet inside is malformed, not decoded */
    pc_reader_feed(r, 228, t, ip, n, n);
    /* BSD NULL: AF_INET little-endian, AF_INET6 24/28/30 both byte orders; LOOP big-endian */
    static const struct { int dlt; uint32_t fam; int be; int v6; const char *name; } nulls[] = {
        {0, 2, 0, 0, "null-le-v4.example"},   {0, 2, 1, 0, "null-be-v4.example"},
        {0, 24, 0, 1, "null-24.example"},     {0, 28, 1, 1, "null-28-be.example"},
        {0, 30, 0, 1, "null-30.example"},     {108, 2, 1, 0, "loop-v4.example"},
        {108, 30, 1, 1, "loop-30.example"},
    };
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        n = nulls[i].v6 ? v6_dns(ip, nulls[i].name, (uint16_t)(1100 + i)) : v4_dns(ip, nulls[i].name, (uint16_t)(1100 + i));
        if (nulls[i].be)
            wr32(f, nulls[i].fam);
        else {
            f[0] = (uint8_t)nulls[i].fam; f[1] = f[2] = f[3] = 0;
        }
        memcpy(f + 4, ip, n);
        pc_reader_feed(r, nulls[i].dlt, t, f, n + 4, n + 4);
    }
    /* PPPoE session (0x8864) carrying IPv4 (PPP protocol 0x0021) */
    n = v4_dns(ip, "pppoe.example", 1200);
    memcpy(f, MAC_S, 6); memcpy(f + 6, MAC_C, 6); wr16(f + 12, 0x8864);
    f[14] = 0x11; f[15] = 0; wr16(f + 16, 0x1234); wr16(f + 18, (unsigned)(n + 2)); wr16(f + 20, 0x0021);
    memcpy(f + 22, ip, n);
    pc_reader_feed(r, 1, t, f, n + 22, n + 22);
    /* Unknown link types are counted and skipped: USER0 (147), 802.11 (105) */
    pc_reader_feed(r, 147, t, ip, n, n);
    pc_reader_feed(r, 105, t, ip, n, n);
    /* An ARP frame: not IP, not malformed, no event */
    memset(ip, 0, 28);
    fl = eth(f, MAC_S, MAC_C, 0x0806, ip, 28);
    pc_reader_feed(r, 1, t, f, fl, fl);
    finish_collect(r);

    static const char *names[] = {"eth.example", "vlan.example", "qinq.example", "eth6.example",
                                  "sll.example", "sll2.example", "raw12.example", "raw14.example",
                                  "raw101.example", "raw101v6.example", "ipv4.example", "ipv6.example",
                                  "null-le-v4.example", "null-be-v4.example", "null-24.example",
                                  "null-28-be.example", "null-30.example", "loop-v4.example",
                                  "loop-30.example", "pppoe.example"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(find_name(&G, PC_EV_DNS_QUERY, names[i]) >= 0, "link: no DNS query event for %s", names[i]);
    CHECK(count_kind(&G, PC_EV_DNS_QUERY) == (int)(sizeof names / sizeof names[0]),
          "link: %d DNS events, want %zu", count_kind(&G, PC_EV_DNS_QUERY), sizeof names / sizeof names[0]);
    int i = find_name(&G, PC_EV_DNS_QUERY, "eth.example");
    CHECK(i >= 0 && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6), "link: Ethernet client MAC");
    CHECK(i >= 0 && G.ev[i].ipver == 4 && G.ev[i].proto == 17 && G.ev[i].sport == 1001 && G.ev[i].dport == 53 &&
              !memcmp(G.ev[i].src, A4, 4) && !memcmp(G.ev[i].dst, B4, 4),
          "link: flow fields of the IPv4 event");
    CHECK(i >= 0 && G.ev[i].frame == 1, "link: first frame is number 1");
    i = find_name(&G, PC_EV_DNS_QUERY, "sll.example");
    CHECK(i >= 0 && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6), "link: SLL sender MAC");
    i = find_name(&G, PC_EV_DNS_QUERY, "sll2.example");
    CHECK(i >= 0 && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6) && G.ev[i].ipver == 6, "link: SLL2 MAC, IPv6");
    i = find_name(&G, PC_EV_DNS_QUERY, "raw12.example");
    CHECK(i >= 0 && !G.ev[i].has_mac, "link: raw IP has no MAC");
    i = find_name(&G, PC_EV_DNS_QUERY, "ipv6.example");
    CHECK(i >= 0 && G.ev[i].frame == 12 && !memcmp(G.ev[i].src, A6, 16), "link: frame 12, IPv6 address");
    i = find_name(&G, PC_EV_DNS_QUERY, "loop-30.example");
    CHECK(i >= 0 && G.ev[i].frame == 20, "link: frames numbered across link types (got %llu)",
          i >= 0 ? (unsigned long long)G.ev[i].frame : 0ULL);
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.packets == 24, "link: packets %llu", (unsigned long long)st.packets);
    CHECK(st.unknown_linktype == 2, "link: unknown_linktype %llu", (unsigned long long)st.unknown_linktype);
    CHECK(st.malformed == 1, "link: malformed %llu (the IPv6 packet under LINKTYPE_IPV4)", (unsigned long long)st.malformed);
    CHECK(G.status == PC_EOF, "link: status %d", G.status);
    CHECK(pc_reader_linktype(r) == -1, "link: feed reader link type is -1");
    pc_reader_free(r);
}

/* Appends one NFLOG TLV (length includes the 4-byte header; padded to 4) in either byte order. */
static size_t nflog_tlv(uint8_t *o, size_t at, int be, unsigned type, const uint8_t *v, size_t vlen)
{
    size_t len = 4 + vlen, padded = (len + 3) & ~(size_t)3;

    if (be) {
        wr16(o + at, (unsigned)len); wr16(o + at + 2, type);
    } else {
        o[at] = (uint8_t)len; o[at + 1] = (uint8_t)(len >> 8); o[at + 2] = (uint8_t)type; o[at + 3] = (uint8_t)(type >> 8);
    }
    memcpy(o + at + 4, v, vlen);
    memset(o + at + len, 0, padded - len);
    return at + padded;
}

/* An NFLOG frame: header (family, version 0, resource id 1), a packet-header TLV (type 1), a prefix
 * TLV of 6 bytes (padding), the sender's MAC (NFULA_HWADDR), then NFULA_PAYLOAD with ip. */
static size_t nflog_frame(uint8_t *f, int be, uint8_t family, const uint8_t *ip, size_t n)
{
    static const uint8_t hdr[4] = { 0x08, 0x00, 0x01, 0x00 };
    uint8_t hw[12] = { 0, 6, 0, 0 };
    size_t at;

    memcpy(hw + 4, MAC_C, 6);
    f[0] = family; f[1] = 0; f[2] = 0; f[3] = 1;
    at = nflog_tlv(f, 4, be, 1, hdr, 4);
    at = nflog_tlv(f, at, be, 10, (const uint8_t *)"pfx", 2);
    at = nflog_tlv(f, at, be, 8, hw, 12);
    return nflog_tlv(f, at, be, 9, ip, n);
}

/*
 * NFLOG (239): the IP packet of NFULA_PAYLOAD, TLV lengths in little- or
 * big-endian order, the sender's MAC from NFULA_HWADDR; damaged TLVs are
 * malformed, a frame the snapshot cut is not, a frame without payload
 * TLV gives nothing.
 */
static void test_nflog(void)
{
    uint8_t ip[700], f[900];
    size_t n, fl;
    pc_reader *r = feed_reader(NULL);
    pc_stats st;
    int i;

    n = v4_dns(ip, "nflog.example", 1301);
    fl = nflog_frame(f, 0, 2, ip, n);
    pc_reader_feed(r, 239, NS, f, fl, fl);
    n = v6_dns(ip, "nflog-be.example", 1302);
    fl = nflog_frame(f, 1, 10, ip, n);
    pc_reader_feed(r, 239, NS, f, fl, fl);
    /* cut by the snapshot length inside the payload: what is there, not malformed */
    n = v4_dns(ip, "nflog-cut.example", 1303);
    fl = nflog_frame(f, 0, 2, ip, n);
    pc_reader_feed(r, 239, NS, f, fl - 3, fl);
    /* no payload TLV: nothing */
    fl = nflog_tlv(f, 4, 0, 1, (const uint8_t *)"\x08\x00\x01\x00", 4);
    pc_reader_feed(r, 239, NS, f, fl, fl);
    finish_collect(r);
    pc_reader_stats(r, &st);
    i = find_name(&G, PC_EV_DNS_QUERY, "nflog.example");
    CHECK(i >= 0 && G.ev[i].ipver == 4 && G.ev[i].sport == 1301 && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6),
          "nflog: little-endian TLVs, IPv4, sender MAC");
    i = find_name(&G, PC_EV_DNS_QUERY, "nflog-be.example");
    CHECK(i >= 0 && G.ev[i].ipver == 6 && !memcmp(G.ev[i].src, A6, 16), "nflog: big-endian TLVs, IPv6");
    CHECK(st.malformed == 0 && st.unknown_linktype == 0, "nflog: malformed %llu unknown %llu",
          (unsigned long long)st.malformed, (unsigned long long)st.unknown_linktype);
    pc_reader_free(r);

    /* Damage, one frame per reader: version 1, a TLV shorter than its header, a payload past an uncut
     * frame, a payload TLV with no bytes, a frame shorter than the header. */
    for (int k = 0; k < 5; k++) {
        r = feed_reader(NULL);
        n = v4_dns(ip, "nflog-bad.example", 1304);
        fl = nflog_frame(f, 0, 2, ip, n);
        if (k == 0)
            f[1] = 1;
        else if (k == 1)
            f[4] = 2;
        else if (k == 2)
            fl -= 3;
        else if (k == 3)
            fl = nflog_tlv(f, 4, 0, 9, ip, 0);
        else
            fl = 3;
        pc_reader_feed(r, 239, NS, f, fl, fl);
        finish_collect(r);
        pc_reader_stats(r, &st);
        CHECK(st.malformed == 1 && count_kind(&G, PC_EV_DNS_QUERY) == 0, "nflog: damage %d malformed %llu", k,
              (unsigned long long)st.malformed);
        pc_reader_free(r);
    }
}

/*
 * A DNS response that starts a UDP flow (its query was not captured): the
 * receiver is the flow's client, as for a SYN-ACK, with the MAC the response
 * was sent to; its question is a response question naming the asker.
 */
static void test_dns_response_starts_flow(void)
{
    uint8_t q[512], u[600], ip[700], f[800];
    size_t n;
    pc_reader *r = feed_reader(NULL);
    int i;

    n = dns_query(q, 0x4242, "reply-first.example");
    q[2] |= 0x80;                                  /* QR: a response */
    n = udp_hdr(u, 53, 40100, q, n);
    n = ip4(ip, B4, A4, 17, 1, 0, u, n);           /* server B4:53 -> phone A4:40100 */
    n = eth(f, MAC_C, MAC_S, 0x0800, ip, n);
    pc_reader_feed(r, 1, NS, f, n, n);
    finish_collect(r);
    i = find_name(&G, PC_EV_DNS_RESPONSE_QUESTION, "reply-first.example");
    CHECK(i >= 0 && !memcmp(G.ev[i].src, A4, 4) && G.ev[i].sport == 40100 && G.ev[i].dport == 53
              && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6),
          "response first: the question names the asker");
    for (i = 0; i < G.n && G.ev[i].kind != PC_EV_FLOW; i++)
        ;
    CHECK(i < G.n && !memcmp(G.ev[i].src, A4, 4) && !memcmp(G.ev[i].dst, B4, 4) && G.ev[i].sport == 40100
              && G.ev[i].has_mac && !memcmp(G.ev[i].mac, MAC_C, 6) && G.ev[i].pkts[0] == 0 && G.ev[i].pkts[1] == 1,
          "response first: the flow's client is the asker, the response counted server to client");
    pc_reader_free(r);
}

static void test_padding_and_truncation(void)
{
    uint8_t ip[700], f[800];
    pc_reader *r = feed_reader(NULL);
    /* IPv6 DNS query in an Ethernet frame with 30 bytes of trailing padding. */
    size_t n = v6_dns(ip, "padded.example", 2000);
    size_t fl = eth(f, MAC_S, MAC_C, 0x86dd, ip, n);
    memset(f + fl, 0xee, 30);
    pc_reader_feed(r, 1, NS, f, fl + 30, fl + 30);
    /* IPv4 the same way. */
    n = v4_dns(ip, "padded4.example", 2001);
    fl = eth(f, MAC_S, MAC_C, 0x0800, ip, n);
    memset(f + fl, 0xee, 18);
    pc_reader_feed(r, 1, NS, f, fl + 18, fl + 18);
    /* A frame cut by the snapshot length inside the UDP payload. */
    n = v4_dns(ip, "cut-by-snaplen.example", 2002);
    fl = eth(f, MAC_S, MAC_C, 0x0800, ip, n);
    pc_reader_feed(r, 1, NS, f, fl - 10, fl);
    /* An IPv4 packet whose total length exceeds the frame, not cut: malformed. */
    n = v4_dns(ip, "lies.example", 2003);
    wr16(ip + 2, (unsigned)(n + 100));
    pc_reader_feed(r, 12, NS, ip, n, n);
    finish_collect(r);
    int i = find_name(&G, PC_EV_DNS_QUERY, "padded.example");
    CHECK(i >= 0 && !(G.ev[i].flags & PC_EVF_PARTIAL), "padding: IPv6 query found, not partial");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "padded4.example") >= 0, "padding: IPv4 query found");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "lies.example") < 0, "padding: bad total length not decoded");
    /* The FLOW of the IPv6 query counts IP bytes (40 + 8 + DNS), not frame bytes. */
    for (int k = 0; k < G.n; k++)
        if (G.ev[k].kind == PC_EV_FLOW && G.ev[k].sport == 2000)
            CHECK(G.ev[k].bytes[0] == v6_dns(ip, "padded.example", 2000), "padding: flow bytes %llu",
                  (unsigned long long)G.ev[k].bytes[0]);
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.malformed == 1, "padding: malformed %llu", (unsigned long long)st.malformed);
    pc_reader_free(r);
}

/* IPv6 UDP wrapped in extension headers; count of them may exceed the walk bound. */
static void test_ipv6_ext(void)
{
    uint8_t q[300], u[400], pl[600], ip[700];
    pc_reader *r = feed_reader(NULL);
    size_t qn = dns_query(q, 1, "ext.example");
    size_t un = udp_hdr(u, 3000, 53, q, qn);
    /* hop-by-hop (8) -> destination options (16) -> routing (8) -> AH (12+4) -> UDP */
    size_t o = 0;
    memset(pl, 0, sizeof pl);
    pl[o] = 60; pl[o + 1] = 0; pl[o + 2] = 1; pl[o + 3] = 4; o += 8;  /* HBH, PadN */
    pl[o] = 43; pl[o + 1] = 1; pl[o + 2] = 1; pl[o + 3] = 12; o += 16; /* dest opts, 16 bytes */
    pl[o] = 51; pl[o + 1] = 0; pl[o + 2] = 0; pl[o + 3] = 0; o += 8;  /* routing, segments left 0 */
    pl[o] = 17; pl[o + 1] = 2; o += 16;                                /* AH: (2+2)*4 = 16 bytes */
    memcpy(pl + o, u, un);
    size_t n = ip6(ip, A6, B6, 0, pl, o + un);
    pc_reader_feed(r, 229, NS, ip, n, n);

    /* Nine destination-options headers: past the walk bound -> malformed. */
    qn = dns_query(q, 1, "deep.example");
    un = udp_hdr(u, 3001, 53, q, qn);
    o = 0;
    for (int k = 0; k < 9; k++) {
        memset(pl + o, 0, 8);
        pl[o] = k == 8 ? 17 : 60;
        o += 8;
    }
    memcpy(pl + o, u, un);
    n = ip6(ip, A6, B6, 60, pl, o + un);
    pc_reader_feed(r, 229, NS, ip, n, n);
    /* An extension header longer than the packet -> malformed. */
    memset(pl, 0, 8); pl[0] = 17; pl[1] = 200;
    n = ip6(ip, A6, B6, 60, pl, 8);
    pc_reader_feed(r, 229, NS, ip, n, n);
    /* No next header (59): nothing, not malformed. */
    n = ip6(ip, A6, B6, 59, pl, 0);
    pc_reader_feed(r, 229, NS, ip, n, n);
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "ext.example") >= 0, "v6 ext: query behind HBH/DST/RT/AH");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "deep.example") < 0, "v6 ext: nine headers not walked");
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.malformed == 2, "v6 ext: malformed %llu", (unsigned long long)st.malformed);
    pc_reader_free(r);
}

/* ---- fragments ---- */

typedef struct frag {
    uint32_t off;
    uint32_t len;
    int more;
} frag;

/* The transport bytes (UDP + DNS) of a query long enough to fragment. */
static const char *LONGNAME =
    "a123456789012345678901234567890.b123456789012345678901234567890."
    "c123456789012345678901234567890.d123456789012345678901234567890.frag.example";

static size_t long_udp(uint8_t *u, const char *name, uint16_t sport)
{
    uint8_t q[512];
    size_t qn = dns_query(q, 7, name);
    return udp_hdr(u, sport, 53, q, qn);
}

static void feed_frag4(pc_reader *r, int64_t t, uint16_t id, const uint8_t *u, uint32_t off, uint32_t len, int more)
{
    uint8_t ip[200];
    size_t n = ip4(ip, A4, B4, 17, id, (uint16_t)((more ? 0x2000 : 0) | (off / 8)), u + off, len);
    pc_reader_feed(r, 228, t, ip, n, n);
}

/* Splits u[0..n) into 48-byte fragments; order[] gives the sending order. */
static int split48(frag *fr, size_t n)
{
    int k = 0;
    for (uint32_t off = 0; off < n; off += 48, k++) {
        fr[k].off = off;
        fr[k].len = (uint32_t)(n - off < 48 ? n - off : 48);
        fr[k].more = off + 48 < n;
    }
    return k;
}

static void test_frag4(void)
{
    uint8_t u[600];
    frag fr[32];
    size_t un = long_udp(u, LONGNAME, 4000);
    int nf = split48(fr, un);
    CHECK(nf >= 4, "frag4: the datagram needs several fragments (%d)", nf);

    /* in order */
    pc_reader *r = feed_reader(NULL);
    for (int k = 0; k < nf; k++)
        feed_frag4(r, NS, 1, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0, "frag4: in-order reassembly");
    int i = find_name(&G, PC_EV_DNS_QUERY, LONGNAME);
    CHECK(i >= 0 && G.ev[i].frame == (uint64_t)nf, "frag4: event carries the completing frame");
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.fragments == (uint64_t)nf && st.frag_dropped == 0, "frag4: fragments %llu dropped %llu",
          (unsigned long long)st.fragments, (unsigned long long)st.frag_dropped);
    pc_reader_free(r);

    /* reversed */
    r = feed_reader(NULL);
    for (int k = nf - 1; k >= 0; k--)
        feed_frag4(r, NS, 2, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0, "frag4: reversed reassembly");
    pc_reader_free(r);

    /* overlapping: a forged fragment rewriting bytes 8..48 comes after the
     * real first fragment; the first copy must win. Also a duplicate. */
    r = feed_reader(NULL);
    uint8_t forged[600];
    memcpy(forged, u, un);
    memset(forged + 8, 'X', 88);
    feed_frag4(r, NS, 3, u, fr[0].off, fr[0].len, 1);
    feed_frag4(r, NS, 3, forged, 8, 40, 1);
    for (int k = 1; k < nf; k++)
        feed_frag4(r, NS, 3, u, fr[k].off, fr[k].len, fr[k].more);
    feed_frag4(r, NS, 3, u, fr[1].off, fr[1].len, fr[1].more); /* late duplicate: a new datagram, never completes */
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0, "frag4: overlap keeps the first data");
    CHECK(count_kind(&G, PC_EV_DNS_QUERY) == 1, "frag4: one query from the overlapped datagram");
    pc_reader_free(r);

    /* the policy's other side: forged bytes 56..80 arriving BEFORE the real
     * fragment are the first copy, so they are what the parser sees */
    r = feed_reader(NULL);
    feed_frag4(r, NS, 8, forged, 56, 24, 1); /* inside the second label */
    for (int k = 0; k < nf; k++)
        feed_frag4(r, NS, 8, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    i = -1;
    for (int k = 0; k < G.n; k++)
        if (G.ev[k].kind == PC_EV_DNS_QUERY)
            i = k;
    CHECK(i >= 0 && strcmp(G.name[i], LONGNAME) != 0 && strstr(G.name[i], "XXXX") != NULL,
          "frag4: the first copy wins even when it is the forged one (%s)", i >= 0 ? G.name[i] : "-");
    pc_reader_free(r);

    /* over the bound: max_frag_bytes smaller than one datagram's bookkeeping */
    pc_limits lim = {0};
    lim.max_frag_bytes = 512;
    r = feed_reader(&lim);
    for (int k = 0; k < nf; k++)
        feed_frag4(r, NS, 4, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    pc_reader_stats(r, &st);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) < 0, "frag4: over the bound, nothing reassembled");
    CHECK(st.frag_dropped == (uint64_t)nf, "frag4: all %d fragments dropped (got %llu)", nf,
          (unsigned long long)st.frag_dropped);
    pc_reader_free(r);

    /* many datagrams pending at once: the oldest go first, memory stays bounded */
    lim.max_frag_bytes = 8192;
    r = feed_reader(&lim);
    for (int id = 0; id < 200; id++)
        feed_frag4(r, NS, (uint16_t)(100 + id), u, fr[0].off, fr[0].len, 1);
    /* the last datagram can still complete */
    for (int k = 1; k < nf; k++)
        feed_frag4(r, NS, 299, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    pc_reader_stats(r, &st);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0, "frag4: newest datagram completes under pressure");
    CHECK(st.frag_dropped == 199, "frag4: 199 incomplete first fragments dropped (got %llu)",
          (unsigned long long)st.frag_dropped);
    pc_reader_free(r);

    /* a missing middle fragment never completes; a timed-out one is dropped */
    r = feed_reader(NULL);
    for (int k = 0; k < nf; k++)
        if (k != 1)
            feed_frag4(r, NS, 5, u, fr[k].off, fr[k].len, fr[k].more);
    feed_frag4(r, 100 * NS, 6, u, fr[0].off, fr[0].len, 1); /* 99 s later: id 5 timed out */
    pc_reader_stats(r, &st);
    CHECK(st.frag_dropped == (uint64_t)(nf - 1), "frag4: timed-out datagram dropped (%llu)",
          (unsigned long long)st.frag_dropped);
    finish_collect(r);
    CHECK(count_kind(&G, PC_EV_DNS_QUERY) == 0, "frag4: nothing from an incomplete datagram");
    pc_reader_free(r);

    /* inconsistent: a second "last" fragment with another end drops the datagram */
    r = feed_reader(NULL);
    feed_frag4(r, NS, 7, u, fr[nf - 1].off, fr[nf - 1].len, 0);
    feed_frag4(r, NS, 7, u, fr[nf - 1].off, fr[nf - 1].len > 8 ? fr[nf - 1].len - 8 : 1, 0);
    for (int k = 0; k < nf - 1; k++)
        feed_frag4(r, NS, 7, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) < 0, "frag4: inconsistent lengths are not reassembled");
    pc_reader_free(r);
}

static void feed_frag6(pc_reader *r, int64_t t, uint32_t id, const uint8_t *u, uint32_t off, uint32_t len, int more)
{
    uint8_t pl[300], ip[400];
    memset(pl, 0, 8);
    pl[0] = 17;
    wr16(pl + 2, (unsigned)(off | (more ? 1 : 0)));
    wr32(pl + 4, id);
    memcpy(pl + 8, u + off, len);
    size_t n = ip6(ip, A6, B6, 44, pl, len + 8);
    uint8_t f[500];
    size_t fl = eth(f, MAC_S, MAC_C, 0x86dd, ip, n);
    pc_reader_feed(r, 1, t, f, fl, fl);
}

static void test_frag6(void)
{
    uint8_t u[600];
    frag fr[32];
    size_t un = long_udp(u, LONGNAME, 4100);
    int nf = split48(fr, un);
    pc_reader *r = feed_reader(NULL);
    /* out of order: odd ones first, then even ones backwards */
    for (int k = 1; k < nf; k += 2)
        feed_frag6(r, 5 * NS, 0xabcdef01u, u, fr[k].off, fr[k].len, fr[k].more);
    for (int k = (nf - 1) & ~1; k >= 0; k -= 2)
        feed_frag6(r, 5 * NS, 0xabcdef01u, u, fr[k].off, fr[k].len, fr[k].more);
    /* an atomic fragment (offset 0, M=0) is an ordinary packet */
    uint8_t u2[600];
    size_t un2 = long_udp(u2, "atomic.example", 4101);
    feed_frag6(r, 5 * NS, 9, u2, 0, (uint32_t)un2, 0);
    finish_collect(r);
    int i = find_name(&G, PC_EV_DNS_QUERY, LONGNAME);
    CHECK(i >= 0 && G.ev[i].ipver == 6 && G.ev[i].has_mac, "frag6: IPv6 reassembly out of order");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "atomic.example") >= 0, "frag6: atomic fragment decoded");
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.fragments == (uint64_t)nf, "frag6: %llu fragments counted", (unsigned long long)st.fragments);
    pc_reader_free(r);
}

/* ---- tunnels ---- */

static void test_tunnels(void)
{
    uint8_t in6[700], o4[800], u[800], f[900];
    pc_reader *r = feed_reader(NULL);
    /* 6in4: IPv4 protocol 41 carrying IPv6/UDP/DNS */
    size_t n = v6_dns(in6, "sixinfour.example", 5000);
    size_t n4 = ip4(o4, A4, B4, 41, 9, 0, in6, n);
    size_t fl = eth(f, MAC_S, MAC_C, 0x0800, o4, n4);
    pc_reader_feed(r, 1, NS, f, fl, fl);
    /* Teredo: IPv4/UDP port 3544 carrying IPv6/UDP/DNS */
    n = v6_dns(in6, "teredo.example", 5001);
    size_t un = udp_hdr(u, 51000, 3544, in6, n);
    n4 = ip4(o4, A4, B4, 17, 10, 0, u, un);
    pc_reader_feed(r, 228, NS, o4, n4, n4);
    /* Teredo with an origin indication header (0x0000 + port + address) */
    uint8_t oi[800];
    memset(oi, 0, 8);
    memcpy(oi + 8, in6, n);
    n = v6_dns(in6, "teredo-oi.example", 5002);
    memcpy(oi + 8, in6, n);
    un = udp_hdr(u, 3544, 51001, oi, n + 8);
    n4 = ip4(o4, B4, A4, 17, 11, 0, u, un);
    pc_reader_feed(r, 228, NS, o4, n4, n4);
    /* IPv4-in-IPv4 */
    uint8_t in4[700];
    n = v4_dns(in4, "ipip.example", 5003);
    n4 = ip4(o4, A4, B4, 4, 12, 0, in4, n);
    pc_reader_feed(r, 228, NS, o4, n4, n4);
    /* Nesting bound: 6in4 inside 6in4 inside 6in4 inside 6in4 (4 levels) is not followed */
    uint8_t a[900], b[900];
    n = v6_dns(a, "too-deep.example", 5004);
    for (int k = 0; k < 4; k++) {
        n = ip6(b, A6, B6, 41, a, n);
        memcpy(a, b, n);
    }
    pc_reader_feed(r, 229, NS, a, n, n);
    finish_collect(r);
    int i = find_name(&G, PC_EV_DNS_QUERY, "sixinfour.example");
    CHECK(i >= 0 && G.ev[i].ipver == 6 && G.ev[i].sport == 5000 && !memcmp(G.ev[i].src, A6, 16),
          "tunnel: 6in4 inner flow");
    i = find_name(&G, PC_EV_DNS_QUERY, "teredo.example");
    CHECK(i >= 0 && G.ev[i].ipver == 6 && G.ev[i].sport == 5001, "tunnel: Teredo inner flow");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "teredo-oi.example") >= 0, "tunnel: Teredo with origin indication");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "ipip.example") >= 0, "tunnel: IPv4 in IPv4");
    CHECK(find_name(&G, PC_EV_DNS_QUERY, "too-deep.example") < 0, "tunnel: depth bound");
    pc_reader_free(r);
}

/* ---- TCP ---- */

/* A DNS-over-TCP stream: n length-prefixed queries q<k>.tcp.example. */
static size_t dns_tcp_stream(uint8_t *s, int nq, const char *tag)
{
    size_t o = 0;
    for (int k = 0; k < nq; k++) {
        char name[64];
        snprintf(name, sizeof name, "q%d.%s.example", k, tag);
        size_t l = dns_query(s + o + 2, (uint16_t)k, name);
        wr16(s + o, (unsigned)l);
        o += 2 + l;
    }
    return o;
}

typedef struct tcpconv {
    pc_reader *r;
    uint32_t cseq, sseq;
    uint16_t cport;
    int64_t t;
} tcpconv;

static void tcp_send(tcpconv *c, int from_client, uint32_t seq, uint8_t fl, const uint8_t *pl, size_t n)
{
    uint8_t seg[2000], ip[2100], f[2200];
    size_t sn = from_client ? tcp_hdr(seg, c->cport, 53, seq, c->sseq, fl, pl, n)
                            : tcp_hdr(seg, 53, c->cport, seq, c->cseq, fl, pl, n);
    size_t in = from_client ? ip4(ip, A4, B4, 6, 1, 0, seg, sn) : ip4(ip, B4, A4, 6, 1, 0, seg, sn);
    size_t fl2 = from_client ? eth(f, MAC_S, MAC_C, 0x0800, ip, in) : eth(f, MAC_C, MAC_S, 0x0800, ip, in);
    c->t += 1000;
    pc_reader_feed(c->r, 1, c->t, f, fl2, fl2);
}

static void handshake(tcpconv *c)
{
    tcp_send(c, 1, c->cseq, TH_SYN, NULL, 0);
    tcp_send(c, 0, c->sseq, TH_SYN | TH_ACK, NULL, 0);
    c->cseq++;
    c->sseq++;
    tcp_send(c, 1, c->cseq, TH_ACK, NULL, 0);
}

/* Sends stream s in segments of seglen, in the order given by perm (NULL = in order). */
static int send_segments(tcpconv *c, const uint8_t *s, size_t n, size_t seglen, const int *perm, int skip)
{
    int nseg = (int)((n + seglen - 1) / seglen);
    for (int k = 0; k < nseg; k++) {
        int j = perm ? perm[k] : k;
        if (j == skip)
            continue;
        size_t off = (size_t)j * seglen;
        size_t l = n - off < seglen ? n - off : seglen;
        tcp_send(c, 1, c->cseq + (uint32_t)off, TH_ACK | TH_PSH, s + off, l);
    }
    return nseg;
}

static int names_in_order(const got *g, int nq, const char *tag, int upto)
{
    int k = 0;
    for (int i = 0; i < g->n; i++) {
        if (g->ev[i].kind != PC_EV_DNS_QUERY)
            continue;
        char want[64];
        snprintf(want, sizeof want, "q%d.%s.example", k, tag);
        if (strcmp(g->name[i], want) != 0)
            return -1 - k;
        k++;
    }
    return k == (upto < 0 ? nq : upto) ? 0 : -1000 - k;
}

static const pc_event *flow_event(const got *g, uint16_t sport)
{
    for (int i = 0; i < g->n; i++)
        if (g->ev[i].kind == PC_EV_FLOW && (g->ev[i].sport == sport || g->ev[i].dport == sport))
            return &g->ev[i];
    return NULL;
}

static void test_tcp(void)
{
    static uint8_t s[8000];
    const int NQ = 40;

    /* in order, with handshake and FIN both ways: the FLOW event comes before finish */
    size_t n = dns_tcp_stream(s, NQ, "inorder");
    tcpconv c = {feed_reader(NULL), 1000, 50000, 40001, NS};
    handshake(&c);
    send_segments(&c, s, n, 100, NULL, -1);
    tcp_send(&c, 1, c.cseq + (uint32_t)n, TH_FIN | TH_ACK, NULL, 0);
    tcp_send(&c, 0, c.sseq, TH_FIN | TH_ACK, NULL, 0);
    tcp_send(&c, 1, c.cseq + (uint32_t)n + 1, TH_ACK, NULL, 0); /* last ACK: no new flow */
    collect(c.r, &G, 256, 1 << 16);
    const pc_event *fe = flow_event(&G, 40001);
    CHECK(fe != NULL, "tcp: FLOW event at FIN/FIN, before the input ends");
    CHECK(fe && fe->tcp_state == (PC_TCP_SYN | PC_TCP_SYNACK | PC_TCP_ESTABLISHED | PC_TCP_FIN),
          "tcp: state bits 0x%x", fe ? fe->tcp_state : 0);
    CHECK(fe && fe->sport == 40001 && fe->dport == 53 && !memcmp(fe->src, A4, 4) && fe->has_mac &&
              !memcmp(fe->mac, MAC_C, 6), "tcp: client is the SYN sender");
    int nseg = (int)((n + 99) / 100);
    CHECK(fe && fe->pkts[0] == (uint64_t)(2 + nseg + 1) && fe->pkts[1] == 2, "tcp: packets %llu/%llu",
          fe ? (unsigned long long)fe->pkts[0] : 0ULL, fe ? (unsigned long long)fe->pkts[1] : 0ULL);
    CHECK(fe && fe->flow_id == 1 && !(fe->flags & PC_EVF_EVICTED), "tcp: flow id 1, not evicted");
    pc_reader_finish(c.r);
    collect(c.r, &G, 256, 1 << 16);
    CHECK(names_in_order(&G, NQ, "inorder", -1) == 0, "tcp: in-order stream (%d)", names_in_order(&G, NQ, "inorder", -1));
    CHECK(count_kind(&G, PC_EV_FLOW) == 1, "tcp: the trailing ACK created no flow (%d flows)", count_kind(&G, PC_EV_FLOW));
    pc_reader_free(c.r);

    /* out of order within the window, plus retransmissions with other bytes */
    n = dns_tcp_stream(s, NQ, "ooo");
    c = (tcpconv){feed_reader(NULL), 0xfffffe00u, 7, 40002, NS}; /* the stream wraps the sequence space */
    handshake(&c);
    int perm[200];
    int ns = (int)((n + 149) / 150);
    for (int k = 0; k < ns; k++)
        perm[k] = k;
    /* swap neighbours pairwise and move segment 1 after segment 6 */
    for (int k = 2; k + 1 < ns; k += 2) {
        int t = perm[k]; perm[k] = perm[k + 1]; perm[k + 1] = t;
    }
    send_segments(&c, s, n, 150, perm, -1);
    /* forged retransmission of segment 3 with other bytes: the first copy stays */
    uint8_t junk[150];
    memset(junk, 'Z', sizeof junk);
    tcp_send(&c, 1, c.cseq + 450, TH_ACK, junk, 150);
    finish_collect(c.r);
    CHECK(names_in_order(&G, NQ, "ooo", -1) == 0, "tcp: out-of-order + wraparound + retransmission (%d)",
          names_in_order(&G, NQ, "ooo", -1));
    pc_stats st;
    pc_reader_stats(c.r, &st);
    CHECK(st.stream_gaps == 0, "tcp: no gap (%llu)", (unsigned long long)st.stream_gaps);
    pc_reader_free(c.r);

    /* segments held on both sides of the sequence wraparound at once: the
     * hold list must sort them modulo 2^32 */
    n = dns_tcp_stream(s, NQ, "wrap");
    c = (tcpconv){feed_reader(NULL), 0xfffffea1u, 9, 40009, NS}; /* after the SYN: wrap inside segment 3 */
    handshake(&c);
    {
        int order[64];
        int nsg = (int)((n + 99) / 100), o = 0;
        order[o++] = 0;
        for (int k = 2; k < nsg && k < 6; k++)
            order[o++] = k;
        order[o++] = 1;
        for (int k = 6; k < nsg; k++)
            order[o++] = k;
        send_segments(&c, s, n, 100, order, -1);
    }
    finish_collect(c.r);
    CHECK(names_in_order(&G, NQ, "wrap", -1) == 0, "tcp: held segments across the wraparound (%d)",
          names_in_order(&G, NQ, "wrap", -1));
    pc_reader_free(c.r);

    /* forged overlap arriving BEFORE the real data is held out of order; the
     * in-order copy reaches the parser first, so the forged bytes never do */
    n = dns_tcp_stream(s, 4, "ovl");
    c = (tcpconv){feed_reader(NULL), 100, 200, 40007, NS};
    handshake(&c);
    tcp_send(&c, 1, c.cseq + 10, TH_ACK, junk, 40);
    tcp_send(&c, 1, c.cseq, TH_ACK, s, n);
    finish_collect(c.r);
    CHECK(names_in_order(&G, 4, "ovl", -1) == 0, "tcp: held overlap trimmed (%d)", names_in_order(&G, 4, "ovl", -1));
    pc_reader_free(c.r);

    /* a gap that never fills: queries before it come out, the rest do not */
    n = dns_tcp_stream(s, NQ, "gap");
    c = (tcpconv){feed_reader(NULL), 5, 6, 40003, NS};
    handshake(&c);
    int skip = 10;
    send_segments(&c, s, n, 100, NULL, skip);
    finish_collect(c.r);
    /* queries wholly inside the first 1000 bytes survive: count them by hand */
    int before = 0;
    {
        size_t o = 0;
        for (int k = 0; k < NQ; k++) {
            size_t l = 2 + pc_rd16(s + o);
            if (o + l <= (size_t)skip * 100)
                before++;
            o += l;
        }
    }
    CHECK(names_in_order(&G, NQ, "gap", before) == 0, "tcp: gap keeps the %d queries before it (%d)", before,
          names_in_order(&G, NQ, "gap", before));
    pc_reader_stats(c.r, &st);
    CHECK(st.stream_gaps == 1, "tcp: one gap counted (%llu)", (unsigned long long)st.stream_gaps);
    pc_reader_free(c.r);

    /* the out-of-order window bound: more held segments than max_ooo_segments */
    pc_limits lim = {0};
    lim.max_ooo_segments = 4;
    n = dns_tcp_stream(s, NQ, "window");
    c = (tcpconv){feed_reader(&lim), 5, 6, 40004, NS};
    handshake(&c);
    send_segments(&c, s, n, 100, NULL, 3); /* segment 3 missing; 4,5,6,7 held, 8 overflows */
    collect(c.r, &G, 256, 1 << 16);
    pc_reader_stats(c.r, &st);
    CHECK(st.stream_gaps == 1, "tcp: window exceeded -> gap before the input ends (%llu)",
          (unsigned long long)st.stream_gaps);
    pc_reader_free(c.r);

    /* no SYN captured: the stream starts at the first data segment */
    n = dns_tcp_stream(s, 10, "nosyn");
    c = (tcpconv){feed_reader(NULL), 123456, 654321, 40005, NS};
    send_segments(&c, s, n, 64, NULL, -1);
    finish_collect(c.r);
    CHECK(names_in_order(&G, 10, "nosyn", -1) == 0, "tcp: mid-stream start (%d)", names_in_order(&G, 10, "nosyn", -1));
    fe = flow_event(&G, 40005);
    CHECK(fe && fe->sport == 40005 && fe->tcp_state == 0, "tcp: first sender is the client without SYN");
    pc_reader_free(c.r);

    /* a segment cut by the snapshot length: its captured bytes go out, then
     * the direction ends as a gap (the rest of the segment is lost) */
    n = dns_tcp_stream(s, 6, "snap");
    c = (tcpconv){feed_reader(NULL), 900, 901, 40008, NS};
    handshake(&c);
    {
        uint8_t seg[2000], ipb[2100];
        size_t sn = tcp_hdr(seg, c.cport, 53, c.cseq, c.sseq, TH_ACK, s, n);
        size_t in = ip4(ipb, A4, B4, 6, 1, 0, seg, sn);
        size_t keep = in - 20; /* the last 20 bytes (inside query 5) not captured */
        pc_reader_feed(c.r, 228, 2 * NS, ipb, keep, in);
    }
    finish_collect(c.r);
    CHECK(names_in_order(&G, 6, "snap", 5) == 0, "tcp: snaplen cut keeps the 5 whole queries (%d)",
          names_in_order(&G, 6, "snap", 5));
    pc_reader_stats(c.r, &st);
    CHECK(st.stream_gaps == 1, "tcp: the cut counts as a gap (%llu)", (unsigned long long)st.stream_gaps);
    pc_reader_free(c.r);

    /* the SYN missed, the SYN-ACK seen: its receiver is the client */
    c = (tcpconv){feed_reader(NULL), 10, 20, 40006, NS};
    tcp_send(&c, 0, c.sseq, TH_SYN | TH_ACK, NULL, 0);
    c.sseq++;
    c.cseq++;
    tcp_send(&c, 1, c.cseq, TH_ACK, NULL, 0);
    tcp_send(&c, 1, c.cseq, TH_RST, NULL, 0);
    collect(c.r, &G, 256, 1 << 16);
    fe = flow_event(&G, 40006);
    CHECK(fe && fe->sport == 40006 && fe->pkts[0] == 2 && fe->pkts[1] == 1 &&
              fe->tcp_state == (PC_TCP_SYNACK | PC_TCP_ESTABLISHED | PC_TCP_RST),
          "tcp: SYN-ACK receiver is the client; RST ends the flow (state 0x%x)", fe ? fe->tcp_state : 0);
    pc_reader_free(c.r);
}

/* An HTTP request split into three segments sent last-first. */
static void test_http_reversed(void)
{
    const char *req = "GET /where/is/it HTTP/1.1\r\nHost: tracker.example:8080\r\nUser-Agent: t\r\n\r\n";
    size_t n = strlen(req);
    pc_reader *r = feed_reader(NULL);
    uint8_t seg[300], ip[400];
    uint32_t isn = 77;
    size_t cut1 = 10, cut2 = 40;
    size_t offs[3] = {cut2, cut1, 0}, ends[3] = {n, cut2, cut1};
    size_t sn = tcp_hdr(seg, 41000, 80, isn, 0, TH_SYN, NULL, 0);
    size_t in = ip6(ip, A6, B6, 6, seg, sn);
    pc_reader_feed(r, 229, NS, ip, in, in);
    for (int k = 0; k < 3; k++) {
        sn = tcp_hdr(seg, 41000, 80, isn + 1 + (uint32_t)offs[k], 1, TH_ACK, (const uint8_t *)req + offs[k],
                     ends[k] - offs[k]);
        in = ip6(ip, A6, B6, 6, seg, sn);
        pc_reader_feed(r, 229, NS, ip, in, in);
    }
    finish_collect(r);
    int i = find_name(&G, PC_EV_HTTP_HOST, "tracker.example");
    CHECK(i >= 0 && G.ev[i].ipver == 6 && G.ev[i].frame == 4, "http: request reassembled from reversed segments");
    pc_reader_free(r);
}

/* Request headers that never end grow the stream buffer up to its bound:
 * the parser then gets what fits, final and truncated, and the direction
 * stops (stats.stream_overflow). */
static void test_stream_overflow(void)
{
    static char req[4000];
    pc_limits lim = {0};
    lim.max_stream_bytes = 512;
    pc_reader *r = feed_reader(&lim);
    int o = snprintf(req, sizeof req, "GET /x HTTP/1.1\r\nHost: overflow.example\r\n");
    while (o < 3000)
        o += snprintf(req + o, sizeof req - (size_t)o, "X-Pad-%d: %s\r\n", o, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    uint8_t seg[300], ip[400];
    uint32_t seq = 1000;
    size_t sn = tcp_hdr(seg, 42000, 80, seq++, 0, TH_SYN, NULL, 0);
    size_t in = ip4(ip, A4, B4, 6, 1, 0, seg, sn);
    pc_reader_feed(r, 228, NS, ip, in, in);
    for (int off = 0; off < o; off += 200) {
        size_t l = (size_t)(o - off < 200 ? o - off : 200);
        sn = tcp_hdr(seg, 42000, 80, seq + (uint32_t)off, 1, TH_ACK, (const uint8_t *)req + off, l);
        in = ip4(ip, A4, B4, 6, 1, 0, seg, sn);
        pc_reader_feed(r, 228, NS, ip, in, in);
    }
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.stream_overflow == 1, "overflow: one direction hit max_stream_bytes (%llu)",
          (unsigned long long)st.stream_overflow);
    finish_collect(r);
    int i = find_name(&G, PC_EV_HTTP_HOST, "overflow.example");
    CHECK(i < 0 || (G.ev[i].flags & PC_EVF_PARTIAL), "overflow: an event from cut headers is flagged partial");
    const pc_event *fe = flow_event(&G, 42000);
    CHECK(fe && fe->pkts[0] == (uint64_t)(1 + (o + 199) / 200), "overflow: packets still counted after the stop");
    pc_reader_free(r);

    /* pc_emit argument checks */
    r = feed_reader(NULL);
    pc_meta m;
    pc_out out;
    memset(&m, 0, sizeof m);
    memset(&out, 0, sizeof out);
    out.kind = PC_EV_DNS_QUERY;
    out.name.n = 3; /* length without a pointer */
    CHECK(pc_emit(pc_reader_ctx(r), &m, &out) == PC_ERR_ARG, "emit: a string without bytes is refused");
    CHECK(pc_emit(pc_reader_ctx(r), NULL, &out) == PC_ERR_ARG, "emit: NULL meta");
    out.name.p = (const uint8_t *)"abc";
    CHECK(pc_emit(pc_reader_ctx(r), &m, &out) == PC_OK, "emit: a good event");
    CHECK(pc_reader_ctx(NULL) == NULL, "ctx: NULL reader");
    pc_reader_free(r);
    pc_reader_free(NULL);
    CHECK(strcmp(pc_strerror(PC_ERR_TRUNCATED), "unknown status") != 0 && strcmp(pc_strerror(12345), "unknown status") == 0,
          "strerror: known and unknown codes");
    for (int code = PC_ERR_LIMIT; code <= PC_EOF; code++)
        CHECK(strcmp(pc_strerror(code), "unknown status") != 0, "strerror: code %d has a phrase", code);
}

/* ---- flows: eviction, idle, ids, frames ---- */

static void test_flows(void)
{
    uint8_t ip[700];
    pc_limits lim = {0};
    lim.max_flows = 4;
    lim.flow_idle_s = 30;
    pc_reader *r = feed_reader(&lim);
    for (int k = 0; k < 10; k++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.example", k);
        size_t n = v4_dns(ip, name, (uint16_t)(6000 + k));
        pc_reader_feed(r, 12, NS + k, ip, n, n);
    }
    collect(r, &G, 256, 1 << 16);
    int evicted = 0;
    for (int i = 0; i < G.n; i++)
        if (G.ev[i].kind == PC_EV_FLOW) {
            evicted += (G.ev[i].flags & PC_EVF_EVICTED) != 0;
            CHECK(G.ev[i].sport == 6000 + evicted - 1, "flows: LRU order of eviction (port %u)", G.ev[i].sport);
        }
    CHECK(evicted == 6, "flows: 6 of 10 flows evicted under max_flows 4 (%d)", evicted);
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.flows == 10 && st.flows_evicted == 6, "flows: stats %llu/%llu", (unsigned long long)st.flows,
          (unsigned long long)st.flows_evicted);
    /* a reply refreshes flow 6 (LRU), so the next new flow evicts flow 7 */
    {
        uint8_t q[300], u[400];
        size_t qn = dns_query(q, 1, "f6.example");
        size_t un = udp_hdr(u, 53, 6006, q, qn);
        size_t n = ip4(ip, B4, A4, 17, 1, 0, u, un);
        pc_reader_feed(r, 12, NS + 20, ip, n, n);
        n = v4_dns(ip, "f10.example", 6010);
        pc_reader_feed(r, 12, NS + 21, ip, n, n);
    }
    /* idle: 31 s later every open flow is idle longer than 30 s */
    size_t n = v4_dns(ip, "late.example", 6020);
    pc_reader_feed(r, 12, 32 * NS, ip, n, n);
    memset(&G, 0, sizeof G);
    collect(r, &G, 256, 1 << 16);
    int first_flow = -1;
    for (int i = 0; i < G.n && first_flow < 0; i++)
        if (G.ev[i].kind == PC_EV_FLOW)
            first_flow = i;
    CHECK(first_flow >= 0 && G.ev[first_flow].sport == 6007 && (G.ev[first_flow].flags & PC_EVF_EVICTED),
          "flows: the LRU flow (7) is the victim, not the refreshed one (6)");
    const pc_event *f6 = flow_event(&G, 6006);
    CHECK(f6 && (f6->flags & PC_EVF_EVICTED) && f6->pkts[0] == 1 && f6->pkts[1] == 1 && f6->flow_id == 7,
          "flows: flow 6 idle-ended with one packet each way, id 7");
    pc_reader_finish(r);
    memset(&G, 0, sizeof G);
    collect(r, &G, 256, 1 << 16);
    const pc_event *fl = flow_event(&G, 6020);
    CHECK(G.n == 1 && fl && !(fl->flags & PC_EVF_EVICTED) && fl->flow_id == 12 && fl->frame == 13,
          "flows: end of input flushes without EVICTED (n %d)", G.n);
    CHECK(G.status == PC_EOF, "flows: EOF after flush");
    CHECK(pc_reader_feed(r, 12, 0, ip, n, n) == PC_ERR_STATE, "flows: feed after finish is refused");
    pc_reader_free(r);
}

/* The eviction victim is the least recently used flow over TCP and UDP together. */
static void test_evict_mixed(void)
{
    uint8_t ip[700];
    pc_limits lim = {0};
    lim.max_flows = 3;
    pc_reader *r = feed_reader(&lim);
    tcpconv c = {r, 100, 200, 43000, NS};
    handshake(&c); /* the TCP flow: t = NS + 1..3 us */
    for (int k = 0; k < 3; k++) {
        size_t n = v4_dns(ip, "mixed.example", (uint16_t)(6200 + k));
        pc_reader_feed(r, 12, 2 * NS + k, ip, n, n);
    }
    collect(r, &G, 256, 1 << 16);
    int first = -1;
    for (int i = 0; i < G.n && first < 0; i++)
        if (G.ev[i].kind == PC_EV_FLOW)
            first = i;
    CHECK(first >= 0 && G.ev[first].proto == 6 && G.ev[first].sport == 43000 && (G.ev[first].flags & PC_EVF_EVICTED),
          "evict: the older TCP flow goes before the newer UDP flows");
    pc_reader_free(r);
}

/* With the default limits, UDP flows end after 60 s idle, TCP after 300 s. */
static void test_idle_defaults(void)
{
    uint8_t ip[700];
    pc_reader *r = feed_reader(NULL);
    tcpconv c = {r, 100, 200, 43100, 0};
    handshake(&c);
    size_t n = v4_dns(ip, "idle.example", 6300);
    pc_reader_feed(r, 12, 0, ip, n, n);
    n = v4_dns(ip, "wake.example", 6301);
    pc_reader_feed(r, 12, 100 * NS, ip, n, n);
    collect(r, &G, 256, 1 << 16);
    const pc_event *u = flow_event(&G, 6300), *t = flow_event(&G, 43100);
    CHECK(u && (u->flags & PC_EVF_EVICTED) && !t, "idle: the UDP flow ended after 100 s, the TCP flow did not");
    n = v4_dns(ip, "wake2.example", 6302);
    pc_reader_feed(r, 12, 301 * NS, ip, n, n);
    collect(r, &G, 256, 1 << 16);
    t = flow_event(&G, 43100);
    CHECK(t && (t->flags & PC_EVF_EVICTED), "idle: the TCP flow ended after 301 s");
    pc_reader_free(r);
}

/* Time going backwards (merged captures, clock steps) must not make new
 * flows look idle at once. */
static void test_time_backwards(void)
{
    uint8_t ip[700];
    pc_limits lim = {0};
    lim.flow_idle_s = 30;
    pc_reader *r = feed_reader(&lim);
    size_t n = v4_dns(ip, "later.example", 6100);
    pc_reader_feed(r, 12, 1000 * NS, ip, n, n);
    n = v4_dns(ip, "earlier.example", 6101);
    pc_reader_feed(r, 12, 10 * NS, ip, n, n);
    pc_reader_feed(r, 12, 11 * NS, ip, n, n);
    /* fragments stamped long before the latest packet still reassemble */
    uint8_t u[600];
    frag fr[32];
    size_t un = long_udp(u, LONGNAME, 6102);
    int nf = split48(fr, un);
    for (int k = 0; k < nf; k++)
        feed_frag4(r, 12 * NS + k, 77, u, fr[k].off, fr[k].len, fr[k].more);
    finish_collect(r);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0, "time: old-stamped fragments reassemble");
    const pc_event *fe = flow_event(&G, 6101);
    CHECK(count_kind(&G, PC_EV_FLOW) == 3 && fe && fe->pkts[0] == 2 && !(fe->flags & PC_EVF_EVICTED) &&
              fe->first_ns == 10 * NS && fe->last_ns == 11 * NS,
          "time: an older timestamp does not split the flow (%d flows)", count_kind(&G, PC_EV_FLOW));
    pc_reader_free(r);
}

/* ---- the queue and the caller's buffers ---- */

static void test_queue(void)
{
    uint8_t ip[700];
    pc_event ev[4];
    uint8_t sb[8];
    pc_reader *r = feed_reader(NULL);
    CHECK(pc_reader_next(r, ev, 0, sb, sizeof sb) == PC_ERR_ARG, "queue: cap 0 is an argument error");
    CHECK(pc_reader_next(NULL, ev, 4, sb, sizeof sb) == PC_ERR_ARG, "queue: NULL reader");
    for (int k = 0; k < 3; k++) {
        size_t n = v4_dns(ip, "a-rather-long-name.example", (uint16_t)(7000 + k));
        pc_reader_feed(r, 12, NS, ip, n, n);
    }
    /* strbuf of 8 bytes: each event is cut, flagged partial, one per call */
    int total = 0, partial = 0, calls = 0;
    for (;;) {
        int got_n = pc_reader_next(r, ev, 4, sb, sizeof sb);
        calls++;
        if (got_n <= 0)
            break;
        for (int i = 0; i < got_n; i++) {
            total++;
            partial += (ev[i].flags & PC_EVF_PARTIAL) != 0;
            CHECK(ev[i].name.off + ev[i].name.len <= sizeof sb, "queue: string inside strbuf");
            if (ev[i].kind == PC_EV_DNS_QUERY)
                CHECK(ev[i].name.len == 8 && !memcmp(sb + ev[i].name.off, "a-rather", 8), "queue: cut string keeps its start");
        }
    }
    CHECK(total == 3 && partial == 3, "queue: 3 events, all partial (%d, %d)", total, partial);
    CHECK(pc_reader_status(r) == PC_OK, "queue: feed reader still open");
    pc_reader_finish(r);
    memset(&G, 0, sizeof G);
    collect(r, &G, 1, 0); /* one event per call, no string buffer: FLOW events need none */
    CHECK(count_kind(&G, PC_EV_FLOW) == 3 && G.status == PC_EOF, "queue: flush one at a time (%d)", G.n);
    pc_reader_free(r);

    /* the queue bound: one packet cannot queue more than max_queue_events */
    pc_limits lim = {0};
    lim.max_queue_events = 16;
    lim.max_flows = 64;
    r = feed_reader(&lim);
    for (int k = 0; k < 60; k++) {
        size_t n = v4_dns(ip, "x.example", (uint16_t)(8000 + k));
        pc_reader_feed(r, 12, NS, ip, n, n);
    }
    pc_stats st;
    pc_reader_stats(r, &st);
    CHECK(st.events_dropped == 60 - 16, "queue: events beyond the bound dropped (%llu)",
          (unsigned long long)st.events_dropped);
    pc_reader_finish(r);
    memset(&G, 0, sizeof G);
    collect(r, &G, 256, 1 << 16);
    CHECK(count_kind(&G, PC_EV_FLOW) == 60, "queue: all 60 FLOW events come out at the end, in pieces (%d)",
          count_kind(&G, PC_EV_FLOW));
    pc_reader_free(r);
}

/* ---- allocation failures ---- */

static void scenario(pc_reader *r)
{
    uint8_t u[600], ip[700];
    static uint8_t s[4000];
    frag fr[32];
    size_t un = long_udp(u, LONGNAME, 4000);
    int nf = split48(fr, un);
    for (int k = nf - 1; k >= 0; k--)
        feed_frag4(r, NS, 1, u, fr[k].off, fr[k].len, fr[k].more);
    size_t n = dns_tcp_stream(s, 10, "alloc");
    tcpconv c = {r, 5, 6, 40100, NS};
    handshake(&c);
    int perm[64];
    int ns = (int)((n + 99) / 100);
    for (int k = 0; k < ns; k++)
        perm[k] = ns - 1 - k;
    send_segments(&c, s, n, 100, perm, -1);
    n = v6_dns(ip, "alloc6.example", 9000);
    pc_reader_feed(r, 229, NS, ip, n, n);
    pc_reader_finish(r);
}

static void test_alloc_failures(void)
{
    int opened = 0, clean = 0;
    for (long k = 0; k < 400; k++) {
        pc_reader *r = NULL;
        pc_alloc_fail_after(k);
        int rc = pc_reader_open_feed(&r, NULL);
        if (rc != PC_OK) {
            CHECK(rc == PC_ERR_NOMEM && r == NULL, "alloc: open fails cleanly at %ld (%d)", k, rc);
            pc_alloc_fail_after(-1);
            continue;
        }
        opened++;
        memset(&G, 0, sizeof G);
        scenario(r);
        collect(r, &G, 256, 1 << 16);
        clean += G.status == PC_EOF;
        pc_alloc_fail_after(-1);
        pc_reader_free(r);
    }
    pc_alloc_fail_after(-1);
    CHECK(opened > 300 && clean == opened, "alloc: %d runs opened, %d ended cleanly", opened, clean);
    /* and without failures the scenario gives all its events */
    pc_reader *r = feed_reader(NULL);
    scenario(r);
    collect(r, &G, 256, 1 << 16);
    CHECK(find_name(&G, PC_EV_DNS_QUERY, LONGNAME) >= 0 && find_name(&G, PC_EV_DNS_QUERY, "q0.alloc.example") >= 0 &&
              find_name(&G, PC_EV_DNS_QUERY, "q9.alloc.example") >= 0 && find_name(&G, PC_EV_DNS_QUERY, "alloc6.example") >= 0,
          "alloc: the scenario works without failures");
    pc_reader_free(r);
}

/* ---- real files ---- */

static char shared[512];

static int path_of(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/pcaps/%s", shared, name);
    return n > 0 && (size_t)n < cap;
}

typedef struct fileres {
    int open_rc;
    int status;
    pc_stats st;
    int kinds[PC_EV_KIND_MAX + 1];
    int64_t first_flow_first_ns;
    char err[256];
} fileres;

static void read_file(const char *name, const pc_limits *lim, fileres *fr)
{
    char path[700], err[256];
    pc_reader *r = NULL;
    memset(fr, 0, sizeof *fr);
    path_of(path, sizeof path, name);
    fr->open_rc = pc_reader_open_file(&r, path, lim, err, sizeof err);
    if (fr->open_rc != PC_OK) {
        snprintf(fr->err, sizeof fr->err, "%s", err);
        CHECK(r == NULL && strlen(err) > 0 && !strchr(err, '\n'), "file %s: one-line open error", name);
        return;
    }
    memset(&G, 0, sizeof G);
    collect(r, &G, 256, 1 << 16);
    fr->status = G.status;
    snprintf(fr->err, sizeof fr->err, "%s", pc_reader_error(r));
    pc_reader_stats(r, &fr->st);
    for (int i = 0; i < G.n; i++) {
        if (G.ev[i].kind <= PC_EV_KIND_MAX)
            fr->kinds[G.ev[i].kind]++;
        if (G.ev[i].kind == PC_EV_FLOW && G.ev[i].flow_id == 1)
            fr->first_flow_first_ns = G.ev[i].first_ns;
    }
    pc_reader_free(r);
}

/* Questions of DNS messages on port 53: the queries' and the responses' (one per message here). */
static int dns_questions(const fileres *fr)
{
    return fr->kinds[PC_EV_DNS_QUERY] + fr->kinds[PC_EV_DNS_RESPONSE_QUESTION];
}

static void test_files(void)
{
    const char *env = getenv("POCKETCHECK_SHARED");
    snprintf(shared, sizeof shared, "%s", env && *env ? env : "../shared");
    char probe[700];
    path_of(probe, sizeof probe, "dnscap__dns.pcap");
    FILE *fp = fopen(probe, "rb");
    if (!fp) {
        printf("SKIP files: %s not found (set POCKETCHECK_SHARED)\n", probe);
        return;
    }
    fclose(fp);
    fileres fr;

    /* capinfos -c: 495 packets, all IPv4 fragments (LINKTYPE_IPV4);
     * tshark -Y dns: 82 DNS messages after reassembly; tshark -z conv,udp: 41. */
    read_file("dnscap__frags.pcap", NULL, &fr);
    CHECK(fr.status == PC_EOF && fr.st.packets == 495 && fr.st.fragments == 495, "frags.pcap: packets %llu",
          (unsigned long long)fr.st.packets);
    CHECK(dns_questions(&fr) == 82 && fr.kinds[PC_EV_FLOW] == 41 && fr.st.frag_dropped == 0,
          "frags.pcap: %d DNS, %d flows", dns_questions(&fr), fr.kinds[PC_EV_FLOW]);
    /* the same traffic unfragmented, and 802.1Q-tagged: 133 packets, 82 DNS, 41 UDP conversations */
    read_file("dnscap__dns.pcap", NULL, &fr);
    CHECK(fr.st.packets == 133 && dns_questions(&fr) == 82 && fr.kinds[PC_EV_FLOW] == 41, "dns.pcap");
    read_file("dnscap__vlan11.pcap", NULL, &fr);
    CHECK(fr.st.packets == 133 && dns_questions(&fr) == 82 && fr.kinds[PC_EV_FLOW] == 41, "vlan11.pcap");
    /* capinfos: 518 packets, LINUX_SLL; tshark -z conv: 15 UDP + 1 TCP conversations; 20 DNS */
    read_file("pcapplusplus__sll.pcap", NULL, &fr);
    CHECK(fr.st.packets == 518 && fr.kinds[PC_EV_FLOW] == 16 && dns_questions(&fr) == 20, "sll.pcap: %d flows",
          fr.kinds[PC_EV_FLOW]);
    /* capinfos: 100 packets, LINKTYPE_RAW v4+v6; tshark -z conv: 4 UDP + 6 TCP; 6 DNS messages */
    read_file("pcapplusplus__raw_ip.pcap", NULL, &fr);
    CHECK(fr.st.packets == 100 && fr.kinds[PC_EV_FLOW] == 10 && dns_questions(&fr) == 6, "raw_ip.pcap");
    /* capinfos: 36 IPv6 fragments of mDNS datagrams */
    read_file("pcapplusplus__ip6_fragments.pcap", NULL, &fr);
    CHECK(fr.st.packets == 36 && fr.st.fragments == 36 && fr.st.frag_dropped == 0 && fr.kinds[PC_EV_MDNS_QUERY] > 0,
          "ip6_fragments.pcap");
    /* classic pcap named .pcapng: 184 packets, 56 HTTP requests, 56 TCP conversations (tshark) */
    read_file("ja4__http1.pcapng", NULL, &fr);
    CHECK(fr.st.packets == 184 && fr.kinds[PC_EV_HTTP_HOST] == 56 && fr.kinds[PC_EV_FLOW] == 56, "http1.pcapng");
    /* big-endian nanosecond pcap: 10 packets; tshark frame.time_epoch of frame 1 = 1766361926.167647291 */
    read_file("pcapplusplus__nanosecs_big_endian.pcap", NULL, &fr);
    CHECK(fr.st.packets == 10 && fr.first_flow_first_ns == 1766361926167647291LL, "nanosecs: first_ns %lld",
          (long long)fr.first_flow_first_ns);
    /* capinfos: 7133 packets */
    read_file("mercury__emix.pcap", NULL, &fr);
    CHECK(fr.status == PC_EOF && fr.st.packets == 7133, "emix.pcap: %llu", (unsigned long long)fr.st.packets);
    /* NFLOG (239): 4 packets, 4 DNS responses (tshark -Y dns), 4 UDP conversations */
    read_file("tcpdump__nflog.pcap", NULL, &fr);
    CHECK(fr.status == PC_EOF && fr.st.packets == 4 && fr.st.unknown_linktype == 0 && fr.st.malformed == 0
              && dns_questions(&fr) == 4 && fr.kinds[PC_EV_FLOW] == 4,
          "nflog.pcap");
    /* truncated: 1 whole packet, then a cut record header */
    read_file("dpkt__truncated_dns_2.pcap", NULL, &fr);
    CHECK(fr.status == PC_ERR_TRUNCATED && fr.st.packets == 1 && dns_questions(&fr) == 1 &&
              strstr(fr.err, "after frame 1") != NULL,
          "truncated: status %d '%s'", fr.status, fr.err);
    /* corrupt headers: not captures */
    read_file("libpcap__pcap-invalid-version-1.pcap", NULL, &fr);
    CHECK(fr.open_rc == PC_ERR_FORMAT, "invalid version: %d", fr.open_rc);
    read_file("libpcap__shb-option-too-long.pcapng", NULL, &fr);
    CHECK(fr.open_rc == PC_ERR_FORMAT, "bad pcapng: %d '%s'", fr.open_rc, fr.err);
    read_file("SOURCES.md", NULL, &fr);
    CHECK(fr.open_rc == PC_ERR_FORMAT, "a text file: %d", fr.open_rc);
    read_file("no-such-file.pcap", NULL, &fr);
    CHECK(fr.open_rc == PC_ERR_OPEN, "missing file: %d", fr.open_rc);
    /* empty capture: header only */
    read_file("arkime__empty.pcap", NULL, &fr);
    CHECK(fr.open_rc == PC_OK && fr.status == PC_EOF && fr.st.packets == 0 && fr.kinds[PC_EV_FLOW] == 0, "empty.pcap");
    /* pcapng files whose interfaces differ (one libpcap handle stops at the second interface; the core
     * goes on through pcapng_route.c): every packet, as capinfos -c counts them */
    {
        static const struct { const char *name; uint64_t packets; } multi[] = {
            {"pcapplusplus__pcapng-example.pcapng", 159},   /* Ethernet + Linux SLL; 59 read before issue 11 */
            {"pcapplusplus__many_interfaces-1.pcapng", 64}, /* Ethernet, NULL, ... */
            {"gopacket__be_test202.pcapng", 8},             /* big-endian, Ethernet + NULL */
            {"pcapplusplus__dns_over_tcp.pcapng", 4},       /* snapshot lengths 4000 and 262144; 0 before */
        };
        for (size_t i = 0; i < sizeof multi / sizeof multi[0]; i++) {
            read_file(multi[i].name, NULL, &fr);
            CHECK(fr.status == PC_EOF && fr.st.packets == multi[i].packets && fr.err[0] == 0,
                  "%s: status %d, %llu packets '%s'", multi[i].name, fr.status, (unsigned long long)fr.st.packets,
                  fr.err);
        }
        read_file("pcapplusplus__dns_over_tcp.pcapng", NULL, &fr);
        CHECK(fr.kinds[PC_EV_DNS_QUERY] > 0 && fr.kinds[PC_EV_DNS_ANSWER] > 0, "dns_over_tcp: DNS read");
    }
    /* the same, with allocations failing while the router starts: a clean error, no leak */
    {
        char path[700], err[256];
        path_of(path, sizeof path, "pcapplusplus__pcapng-example.pcapng");
        int clean = 0, whole = 0;
        for (long k = 0; k < 40; k++) {
            pc_reader *r = NULL;
            pc_alloc_fail_after(k);
            if (pc_reader_open_file(&r, path, NULL, err, sizeof err) == PC_OK) {
                memset(&G, 0, sizeof G);
                collect(r, &G, 256, 1 << 16);
                pc_stats st;
                pc_reader_stats(r, &st);
                whole += G.status == PC_EOF && st.packets == 159;
                clean += G.status < 0 && strlen(pc_reader_error(r)) > 0;
                pc_reader_free(r);
            } else {
                clean++;
            }
            pc_alloc_fail_after(-1);
        }
        CHECK(whole > 0 && clean > 0 && whole + clean == 40, "multi-interface alloc: %d whole, %d clean", whole,
              clean);
    }
    /* allocation failures while opening and reading a real file: clean errors, no leaks */
    {
        char path[700], err[256];
        path_of(path, sizeof path, "arkime__tls-split-client-hello.pcap");
        int nomem = 0, ok = 0;
        for (long k = 0; k < 120; k++) {
            pc_reader *r = NULL;
            pc_alloc_fail_after(k);
            int rc = pc_reader_open_file(&r, path, NULL, err, sizeof err);
            if (rc == PC_OK) {
                memset(&G, 0, sizeof G);
                collect(r, &G, 256, 1 << 16);
                ok += G.status == PC_EOF;
                pc_reader_free(r);
            } else {
                nomem += rc == PC_ERR_NOMEM && r == NULL;
            }
            pc_alloc_fail_after(-1);
        }
        CHECK(nomem >= 2 && ok + nomem == 120, "file alloc: %d opens failed cleanly, %d read to EOF", nomem, ok);
    }
    /* a tiny flow table over a real capture: memory stays bounded, all flows still reported */
    pc_limits lim = {0};
    lim.max_flows = 8;
    read_file("mercury__emix.pcap", &lim, &fr);
    CHECK(fr.status == PC_EOF && fr.st.flows_evicted > 0 && (uint64_t)fr.kinds[PC_EV_FLOW] == fr.st.flows,
          "emix with 8 flows: %d FLOW events for %llu flows", fr.kinds[PC_EV_FLOW], (unsigned long long)fr.st.flows);
}

/* ---- live capture on the loopback interface (needs CAP_NET_RAW) ---- */

static void test_live(void)
{
    char err[256];
    pc_reader *r = NULL;
    const char *dump = "/tmp/pocketcheck-test-live.pcap";
    int rc = pc_reader_open_live(&r, "pc-no-such-if0", NULL, NULL, NULL, err, sizeof err);
    CHECK(rc == PC_ERR_OPEN && r == NULL && err[0], "live: unknown interface -> PC_ERR_OPEN (%d '%s')", rc, err);
    rc = pc_reader_open_live(&r, "lo", "udp and dst port 53 and dst host 127.0.0.1", dump, NULL, err, sizeof err);
    if (rc == PC_ERR_OPEN) {
        printf("SKIP live: %s\n", err);
        return;
    }
    CHECK(rc == PC_OK, "live: open lo (%d '%s')", rc, err);
    if (rc != PC_OK)
        return;
    pc_reader *bad = NULL;
    rc = pc_reader_open_live(&bad, "lo", "udp and port", NULL, NULL, err, sizeof err);
    CHECK(rc == PC_ERR_FILTER && bad == NULL, "live: bad filter -> PC_ERR_FILTER (%d '%s')", rc, err);
    CHECK(pc_reader_linktype(r) == 1, "live: lo is DLT_EN10MB (%d)", pc_reader_linktype(r));

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    to.sin_addr.s_addr = htonl(0x7f000001);
    uint8_t q[300];
    size_t qn = dns_query(q, 9, "live.example");
    int found = 0;
    memset(&G, 0, sizeof G);
    for (int tries = 0; tries < 20 && !found; tries++) {
        sendto(s, q, qn, 0, (struct sockaddr *)&to, sizeof to);
        /* also a packet the filter drops */
        to.sin_port = htons(53536);
        sendto(s, q, qn, 0, (struct sockaddr *)&to, sizeof to);
        to.sin_port = htons(53);
        collect(r, &G, 256, 1 << 16); /* returns after the 100 ms read timeout */
        found = find_name(&G, PC_EV_DNS_QUERY, "live.example") >= 0;
    }
    close(s);
    CHECK(found, "live: a query sent on lo comes out as an event");
    CHECK(pc_reader_status(r) == PC_OK, "live: still running");
    pc_reader_stop(r);
    memset(&G, 0, sizeof G);
    for (int k = 0; k < 50 && pc_reader_status(r) == PC_OK; k++)
        collect(r, &G, 256, 1 << 16);
    CHECK(pc_reader_status(r) == PC_EOF && count_kind(&G, PC_EV_FLOW) == 1, "live: stop flushes the flow, then EOF");
    pc_stats st;
    pc_reader_stats(r, &st);
    uint64_t live_pkts = st.packets;
    pc_reader_free(r);
    /* the dump file holds every packet the filter let through */
    fileres fr;
    char path[700];
    snprintf(path, sizeof path, "%s", dump);
    r = NULL;
    rc = pc_reader_open_file(&r, path, NULL, err, sizeof err);
    CHECK(rc == PC_OK, "live: dump file readable (%d '%s')", rc, err);
    if (rc == PC_OK) {
        memset(&G, 0, sizeof G);
        collect(r, &G, 256, 1 << 16);
        pc_reader_stats(r, &fr.st);
        CHECK(fr.st.packets == live_pkts && live_pkts > 0 && find_name(&G, PC_EV_DNS_QUERY, "live.example") >= 0,
              "live: dump has the %llu packets read (%llu)", (unsigned long long)live_pkts,
              (unsigned long long)fr.st.packets);
        pc_reader_free(r);
    }
    remove(dump);
}

int main(void)
{
    test_link_types();
    test_nflog();
    test_dns_response_starts_flow();
    test_padding_and_truncation();
    test_ipv6_ext();
    test_frag4();
    test_frag6();
    test_tunnels();
    test_tcp();
    test_http_reversed();
    test_stream_overflow();
    test_flows();
    test_time_backwards();
    test_evict_mixed();
    test_idle_defaults();
    test_queue();
    test_alloc_failures();
    test_files();
    test_live();
    return check_report("test_engine");
}
