/*
 * test_dns.c - DNS / mDNS / LLMNR / DHCP parsing through a real feed reader.
 * Messages are written by hand below; every expected value is derived by
 * hand from the bytes (RFC 1035 layout), not taken from the parser.
 */
#include "parser_harness.h"

/* ---- a tiny message writer -------------------------------------------- */
typedef struct wbuf { uint8_t b[70000]; size_t n; } wbuf;
static wbuf W;

static void w_reset(void) { W.n = 0; }
static void w8(unsigned v) { W.b[W.n++] = (uint8_t)v; }
static void w16(unsigned v) { w8(v >> 8); w8(v & 0xff); }
static void w32(unsigned long v) { w16((unsigned)(v >> 16)); w16((unsigned)(v & 0xffff)); }
static void wbytes(const void *p, size_t n) { memcpy(W.b + W.n, p, n); W.n += n; }
/* Writes "www.example.com" as labels, ending with the root byte. */
static void wname(const char *dotted)
{
    while (*dotted) {
        const char *dot = strchr(dotted, '.');
        size_t l = dot ? (size_t)(dot - dotted) : strlen(dotted);
        w8((unsigned)l);
        wbytes(dotted, l);
        dotted += l + (dot ? 1 : 0);
    }
    w8(0);
}
static void wheader(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
    w16(id); w16(flags); w16(qd); w16(an); w16(ns); w16(ar);
}

static void run_udp(uint16_t sport, uint16_t dport)
{
    pc_meta m = h_meta(17, sport, dport, 1);
    pc_udp_app *app = NULL;
    pc_app_udp(h_cx, &m, &app, W.b, W.n);
    pc_app_udp_end(h_cx, &m, &app);
    h_drain();
}

/*
 * A response's question and answers name the asker (the response's
 * destination) as src, sport and mac, whichever side the flow saw first;
 * a query keeps the flow's client.
 */
static void test_response_names_the_asker(void)
{
    static const uint8_t phone_mac[6] = { 2, 0, 0, 0, 0, 0x11 }, server_mac[6] = { 2, 0, 0, 0, 0, 0x22 };
    static const uint8_t a[4] = { 192, 0, 2, 80 };
    pc_udp_app *app = NULL;
    pc_meta m;
    h_ev *q, *ans;

    for (int picked_up_at_response = 0; picked_up_at_response < 2; picked_up_at_response++) {
        h_open();
        w_reset();
        wheader(7, 0x8180, 1, 1, 0, 0);
        wname("asked.example"); w16(1); w16(1);
        w16(0xC00C); w16(1); w16(1); w32(30); w16(4); wbytes(a, 4);
        if (picked_up_at_response) {
            /* The response is the flow's first packet: its sender (the server) is the flow's client. */
            m = h_meta(17, 53, 40000, 1);
            memcpy(m.src, (const uint8_t[4]){ 192, 0, 2, 1 }, 4);
            memcpy(m.dst, (const uint8_t[4]){ 192, 168, 4, 2 }, 4);
            memcpy(m.mac, server_mac, 6);
            memcpy(m.pkt_src_mac, server_mac, 6);
            memcpy(m.pkt_dst_mac, phone_mac, 6);
        } else {
            m = h_meta(17, 40000, 53, 0);  /* the phone's query came first */
            memcpy(m.mac, phone_mac, 6);
            memcpy(m.pkt_src_mac, server_mac, 6);
            memcpy(m.pkt_dst_mac, phone_mac, 6);
        }
        m.has_mac = 1;
        pc_app_udp(h_cx, &m, &app, W.b, W.n);
        pc_app_udp_end(h_cx, &m, &app);
        h_drain();
        q = h_get(PC_EV_DNS_RESPONSE_QUESTION, 0);
        ans = h_get(PC_EV_DNS_ANSWER, 0);
        CHECK(q && ans && h_count(PC_EV_DNS_QUERY) == 0, "response question and answer (%d)", picked_up_at_response);
        if (!q || !ans)
            continue;
        CHECK(strcmp(q->name, "asked.example") == 0 && strcmp(ans->data, "192.0.2.80") == 0, "names kept");
        for (int k = 0; k < 2; k++) {
            const pc_event *e = k ? &ans->ev : &q->ev;
            CHECK(e->src[0] == 192 && e->src[1] == 168 && e->src[2] == 4 && e->src[3] == 2
                      && e->dst[0] == 192 && e->dst[1] == 0 && e->dst[3] == 1,
                  "src is the asker (%d)", picked_up_at_response);
            CHECK(e->sport == 40000 && e->dport == 53 && memcmp(e->mac, phone_mac, 6) == 0,
                  "sport and mac are the asker's (%d)", picked_up_at_response);
        }
    }
    h_close();
}

/* A plain query: one question event with the name and type as written. */
static void test_query(void)
{
    h_open();
    w_reset();
    wheader(0x1234, 0x0100, 1, 0, 0, 0);
    wname("www.Example.com");
    w16(28); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 1, "one event, got %d", h_nev);
    CHECK(h_count(PC_EV_DNS_QUERY) == 1, "a dns query");
    if (h_nev == 1) {
        CHECK(strcmp(h_evs[0].name, "www.Example.com") == 0, "case kept: %s", h_evs[0].name);
        CHECK(h_evs[0].ev.rrtype == 28, "qtype %u", h_evs[0].ev.rrtype);
        CHECK(h_evs[0].ev.flow_id == 1 && h_evs[0].ev.dport == 53, "flow fields copied");
    }
    CHECK(h_malformed() == 0, "not malformed");
}

/*
 * A response with compression: question www.example.com; answers
 *   www.example.com CNAME cdn.example.net (target partly compressed)
 *   cdn.example.net CNAME edge.cdn.example.net (pointer to the previous target)
 *   edge.cdn.example.net A 93.184.216.34 (owner = pointer)
 *   edge.cdn.example.net AAAA 2001:db8::1
 *   edge.cdn.example.net AAAA 2001:db8:0:1:0:0:0:1 (first zero run only)
 *   a TXT record (not reported)
 */
static void test_response_chain(void)
{
    size_t q, t1, t2;
    static const uint8_t a[4] = { 93, 184, 216, 34 };
    static const uint8_t aaaa[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const uint8_t aaaa2[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };

    h_open();
    w_reset();
    wheader(0x1234, 0x8180, 1, 6, 0, 0);
    q = W.n;
    wname("www.example.com");
    w16(1); w16(1);
    /* 1: owner = pointer to the question, CNAME cdn.example.net */
    w16(0xC000 | (unsigned)q); w16(5); w16(1); w32(300);
    w16(17);
    t1 = W.n;
    wname("cdn.example.net");       /* 3 cdn 7 example 3 net 0 = 17 bytes */
    /* 2: owner = pointer to t1, CNAME "edge" + pointer to t1 */
    w16(0xC000 | (unsigned)t1); w16(5); w16(1); w32(60);
    w16(7);
    t2 = W.n;
    w8(4); wbytes("edge", 4); w16(0xC000 | (unsigned)t1);
    /* 3: A */
    w16(0xC000 | (unsigned)t2); w16(1); w16(1); w32(20);
    w16(4); wbytes(a, 4);
    /* 4, 5: AAAA */
    w16(0xC000 | (unsigned)t2); w16(28); w16(1); w32(21);
    w16(16); wbytes(aaaa, 16);
    w16(0xC000 | (unsigned)t2); w16(28); w16(1); w32(22);
    w16(16); wbytes(aaaa2, 16);
    /* 6: TXT */
    w16(0xC000 | (unsigned)t2); w16(16); w16(1); w32(23);
    w16(3); w8(2); wbytes("hi", 2);
    run_udp(40000, 53);

    CHECK(h_count(PC_EV_DNS_RESPONSE_QUESTION) == 1 && h_count(PC_EV_DNS_QUERY) == 0,
          "question of a response reported once, as a response's question");
    CHECK(h_count(PC_EV_DNS_ANSWER) == 5, "5 answers (TXT left out), got %d", h_count(PC_EV_DNS_ANSWER));
    if (h_count(PC_EV_DNS_ANSWER) == 5) {
        h_ev *e;
        e = h_get(PC_EV_DNS_ANSWER, 0);
        CHECK(!strcmp(e->name, "www.example.com") && !strcmp(e->data, "cdn.example.net")
              && e->ev.rrtype == 5 && e->ev.ttl == 300, "cname 1: %s -> %s", e->name, e->data);
        e = h_get(PC_EV_DNS_ANSWER, 1);
        CHECK(!strcmp(e->name, "cdn.example.net") && !strcmp(e->data, "edge.cdn.example.net")
              && e->ev.ttl == 60, "cname 2: %s -> %s", e->name, e->data);
        e = h_get(PC_EV_DNS_ANSWER, 2);
        CHECK(!strcmp(e->name, "edge.cdn.example.net") && !strcmp(e->data, "93.184.216.34")
              && e->ev.rrtype == 1 && e->ev.ttl == 20, "A: %s = %s", e->name, e->data);
        e = h_get(PC_EV_DNS_ANSWER, 3);
        CHECK(!strcmp(e->data, "2001:db8::1") && e->ev.rrtype == 28, "AAAA text %s", e->data);
        e = h_get(PC_EV_DNS_ANSWER, 4);
        CHECK(!strcmp(e->data, "2001:db8:0:1::1"), "AAAA longest zero run %s", e->data);
    }
    CHECK(h_malformed() == 0, "not malformed");
}

/* The root name is reported as "." (tshark shows "<Root>"). */
static void test_root(void)
{
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(0); w16(2); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, ".") && h_evs[0].ev.rrtype == 2, "root query");
}

/* Compression loops and forward pointers are refused without reading past the end. */
static void test_loops(void)
{
    /* pointer to itself */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w16(0xC00C); w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "self pointer: %d events, malformed %llu",
          h_nev, (unsigned long long)h_malformed());

    /* two names pointing at each other: name1 at 12 = "a" + ptr(19); name2 at 19 = "b" + ptr(12) */
    h_open();
    w_reset();
    wheader(1, 0x0100, 2, 0, 0, 0);
    w8(1); w8('a'); w16(0xC000 | 19); w16(1); w16(1);   /* 12..18 */
    w8(1); w8('b'); w16(0xC000 | 12); w16(1); w16(1);   /* 19.. */
    run_udp(40000, 53);
    /* name 1 jumps forward (19 > 12): refused at once; nothing emitted */
    CHECK(h_nev == 0 && h_malformed() == 1, "mutual pointers refused");

    /* pointer into the pointer's own name after a label: a -> ptr(12) at offset 14 */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(1); w8('a'); w16(0xC000 | 12); w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "pointer back to its own start refused");

    /* a pointer cut in half at the end of the message */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(0xC0);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "half pointer");
}

/* Label and name length limits (63 / 255) and the reserved label types. */
static void test_lengths(void)
{
    char lab[64];
    char name[400];

    memset(lab, 'x', 63);
    lab[63] = 0;
    /* 3 x 63 + 61: wire 64*3 + 62 + 1 = 255: accepted */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    for (int i = 0; i < 3; i++) { w8(63); wbytes(lab, 63); }
    w8(61); wbytes(lab, 61); w8(0);
    w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 1 && strlen(h_evs[0].name) == 63 * 3 + 61 + 3, "255-byte name accepted");

    /* 4 x 63: wire 257: refused */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    for (int i = 0; i < 4; i++) { w8(63); wbytes(lab, 63); }
    w8(0); w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "257-byte name refused");

    /* label length 64 (= type bits 01): refused */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(64); memset(name, 'y', 64); wbytes(name, 64); w8(0); w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "64-byte label refused");

    /* a label running past the end */
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(10); wbytes("abc", 3);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "label past the end");

    /* qdcount says 3, one question present: one event, then malformed */
    h_open();
    w_reset();
    wheader(1, 0x0100, 3, 0, 0, 0);
    wname("one.example"); w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 1 && h_malformed() == 1, "events before the damage kept");

    /* an answer whose RDLENGTH runs past the end: question reported, answer not */
    h_open();
    w_reset();
    wheader(1, 0x8180, 1, 1, 0, 0);
    wname("two.example"); w16(1); w16(1);
    w16(0xC00C); w16(1); w16(1); w32(5); w16(4); w8(1); w8(2);
    run_udp(40000, 53);
    CHECK(h_count(PC_EV_DNS_RESPONSE_QUESTION) == 1 && h_count(PC_EV_DNS_ANSWER) == 0 && h_malformed() == 1,
          "cut rdata");

    /* an A record with RDLENGTH 5 is not an address: skipped, parsing goes on */
    h_open();
    w_reset();
    wheader(1, 0x8180, 1, 2, 0, 0);
    wname("three.example"); w16(1); w16(1);
    w16(0xC00C); w16(1); w16(1); w32(5); w16(5); w32(0x01020304); w8(5);
    w16(0xC00C); w16(1); w16(1); w32(5); w16(4); w32(0x0a000001);
    run_udp(40000, 53);
    CHECK(h_count(PC_EV_DNS_ANSWER) == 1 && !strcmp(h_get(PC_EV_DNS_ANSWER, 0)->data, "10.0.0.1"),
          "odd A length skipped");

    /* shorter than a header */
    h_open();
    w_reset();
    w16(1); w16(0);
    run_udp(40000, 53);
    CHECK(h_nev == 0 && h_malformed() == 1, "short message");
}

/* Non-printable bytes, dots and backslashes inside labels are escaped. */
static void test_escapes(void)
{
    static const uint8_t lab[] = { 'a', 0x01, '.', '\\', ' ', 0xff };
    h_open();
    w_reset();
    wheader(1, 0x0100, 1, 0, 0, 0);
    w8(sizeof lab); wbytes(lab, sizeof lab); w8(3); wbytes("com", 3); w8(0);
    w16(1); w16(1);
    run_udp(40000, 53);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "a\\001\\.\\\\\\032\\255.com"),
          "escaped: %s", h_nev ? h_evs[0].name : "-");
}

/* mDNS and LLMNR: questions of queries only, answers never. */
static void test_mdns_llmnr(void)
{
    h_open();
    w_reset();
    wheader(0, 0x0000, 2, 0, 0, 0);
    wname("_googlecast._tcp.local"); w16(12); w16(0x8001);
    wname("printer.local"); w16(1); w16(1);
    run_udp(5353, 5353);
    CHECK(h_count(PC_EV_MDNS_QUERY) == 2 && h_nev == 2, "mdns questions");
    CHECK(h_nev == 2 && !strcmp(h_evs[0].name, "_googlecast._tcp.local") && h_evs[0].ev.rrtype == 12,
          "mdns name/type");

    /* an mDNS response with a question and an answer: nothing */
    h_open();
    w_reset();
    wheader(0, 0x8400, 1, 1, 0, 0);
    wname("printer.local"); w16(1); w16(1);
    w16(0xC00C); w16(1); w16(0x8001); w32(120); w16(4); w32(0xc0a80105);
    run_udp(5353, 5353);
    CHECK(h_nev == 0, "mdns response ignored (%d)", h_nev);

    h_open();
    w_reset();
    wheader(7, 0x0000, 1, 0, 0, 0);
    wname("wpad"); w16(1); w16(1);
    run_udp(50000, 5355);
    CHECK(h_nev == 1 && h_count(PC_EV_LLMNR_QUERY) == 1 && !strcmp(h_evs[0].name, "wpad"), "llmnr");
}

/* DNS over TCP: several messages in one chunk, one message over many chunks, a cut tail. */
static void test_tcp(void)
{
    static uint8_t stream[4096];
    size_t n = 0, m1;
    pc_dirstate ds;
    pc_meta m = h_meta(6, 40000, 53, 1);
    int r;

    /* three framed queries */
    const char *names[3] = { "a.example", "bb.example", "ccc.example" };
    for (int i = 0; i < 3; i++) {
        w_reset();
        wheader((unsigned)i, 0x0100, 1, 0, 0, 0);
        wname(names[i]); w16(1); w16(1);
        stream[n++] = (uint8_t)(W.n >> 8);
        stream[n++] = (uint8_t)W.n;
        memcpy(stream + n, W.b, W.n);
        n += W.n;
        if (i == 0)
            m1 = n;
    }
    (void)m1;

    /* all in one chunk */
    h_open();
    memset(&ds, 0, sizeof ds);
    r = h_stream(&m, &ds, stream, n, n, 0);
    h_drain();
    CHECK(r == PC_STREAM_MORE && h_nev == 3, "3 messages in one segment: %d", h_nev);
    for (int i = 0; i < 3 && i < h_nev; i++)
        CHECK(!strcmp(h_evs[i].name, names[i]), "order %d: %s", i, h_evs[i].name);

    /* one byte at a time: the same three, each once */
    h_open();
    memset(&ds, 0, sizeof ds);
    r = h_stream(&m, &ds, stream, n, 1, 1);
    h_drain();
    CHECK(r == PC_STREAM_DONE && h_nev == 3, "byte by byte: %d events", h_nev);

    /* the server side of port 53 too (response direction) */
    h_open();
    memset(&ds, 0, sizeof ds);
    m.from_client = 0;
    r = h_stream(&m, &ds, stream, n, 7, 1);
    h_drain();
    CHECK(h_nev == 3, "server direction: %d", h_nev);
    m.from_client = 1;

    /* the stream ends inside the third message's name: two whole + a partial nothing */
    h_open();
    memset(&ds, 0, sizeof ds);
    r = h_stream(&m, &ds, stream, n - 10, 5, 1);
    h_drain();
    CHECK(h_nev == 2 && r == PC_STREAM_DONE, "cut third message: %d events", h_nev);

    /* the stream ends after the third message's question name but before qclass end */
    h_open();
    memset(&ds, 0, sizeof ds);
    r = h_stream(&m, &ds, stream, n - 1, 64, 1);
    h_drain();
    CHECK(h_nev == 2, "qclass cut: question not reported (%d)", h_nev);
}

/*
 * DHCP DISCOVER (RFC 2131 layout): host name option 12 "Pixel-7",
 * requested address option 50 = 192.168.4.23, chaddr 02:11:22:33:44:55.
 */
static void test_dhcp(void)
{
    static const uint8_t mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
    h_open();
    w_reset();
    w8(1); w8(1); w8(6); w8(0);           /* op, htype, hlen, hops */
    w32(0xdeadbeef); w16(0); w16(0x8000);  /* xid, secs, flags */
    w32(0); w32(0); w32(0); w32(0);        /* ciaddr yiaddr siaddr giaddr */
    wbytes(mac, 6); for (int i = 0; i < 10; i++) w8(0);
    for (int i = 0; i < 192; i++) w8(0);   /* sname + file */
    w32(0x63825363);
    w8(53); w8(1); w8(1);                  /* DISCOVER */
    w8(0);                                 /* a pad */
    w8(12); w8(7); wbytes("Pixel-7", 7);
    w8(50); w8(4); w8(192); w8(168); w8(4); w8(23);
    w8(255);
    run_udp(68, 67);
    CHECK(h_nev == 1 && h_count(PC_EV_DHCP) == 1, "one dhcp event (%d)", h_nev);
    if (h_nev == 1) {
        CHECK(!strcmp(h_evs[0].name, "Pixel-7"), "host name %s", h_evs[0].name);
        CHECK(!strcmp(h_evs[0].data, "192.168.4.23"), "requested ip %s", h_evs[0].data);
        CHECK(h_evs[0].ev.has_mac && !memcmp(h_evs[0].ev.mac, mac, 6), "mac from chaddr");
    }

    /* the server's OFFER (op 2): nothing */
    W.b[0] = 2;
    W.b[242] = 2;
    h_open();
    run_udp(67, 68);
    CHECK(h_nev == 0, "offer ignored");

    /* an option running past the end: malformed, no event */
    h_open();
    W.b[0] = 1;
    W.b[242] = 1;
    W.n -= 3;                               /* cut option 50 and the end */
    run_udp(68, 67);
    CHECK(h_malformed() == 1, "cut option malformed");
}

int main(void)
{
    test_query();
    test_response_chain();
    test_response_names_the_asker();
    test_root();
    test_loops();
    test_lengths();
    test_escapes();
    test_mdns_llmnr();
    test_tcp();
    test_dhcp();
    h_close();
    return check_report("test_dns");
}
