/*
 * test_http.c - HTTP/1.x requests on the client side of a TCP stream and
 * SSDP over UDP: Host without port, path, method, User-Agent, pipelining,
 * bodies, bounds. Expected values are read off the request text by hand.
 */
#include "parser_harness.h"

static int feed(const char *text, size_t n, size_t step, int fin)
{
    pc_dirstate ds;
    pc_meta m = h_meta(6, 50000, 80, 1);
    int r;
    memset(&ds, 0, sizeof ds);
    h_open();
    r = h_stream(&m, &ds, (const uint8_t *)text, n, step, fin);
    h_drain();
    return r;
}

/* One GET: every field as written, the port gone from the Host. */
static void test_simple(void)
{
    static const char req[] =
        "GET /track?id=7&x=%20 HTTP/1.1\r\n"
        "host:  Tracker.Example.com:8080 \r\n"
        "User-Agent: Dalvik/2.1.0 (Linux; U; Android 14)\r\n"
        "Accept: */*\r\n\r\n";
    int r = feed(req, sizeof req - 1, sizeof req, 0);
    CHECK(r == PC_STREAM_MORE && h_nev == 1, "one event, waits for more (%d)", h_nev);
    if (h_nev == 1) {
        h_ev *e = &h_evs[0];
        CHECK(e->ev.kind == PC_EV_HTTP_HOST, "kind");
        CHECK(!strcmp(e->name, "Tracker.Example.com"), "host %s", e->name);
        CHECK(!strcmp(e->data, "/track?id=7&x=%20"), "path %s", e->data);
        CHECK(!strcmp(e->s1, "GET"), "method %s", e->s1);
        CHECK(!strcmp(e->s2, "Dalvik/2.1.0 (Linux; U; Android 14)"), "ua %s", e->s2);
        CHECK(e->ev.flags == 0, "complete");
    }
}

/* Host forms: [v6]:port, [v6], bare v6 literal, name without port. */
static void test_host_forms(void)
{
    static const struct { const char *host, *want; } cases[] = {
        { "[2001:db8::1]:8443", "2001:db8::1" }, { "[fe80::1]", "fe80::1" },
        { "2001:db8::2", "2001:db8::2" }, { "example.org", "example.org" }, { "10.0.0.1:80", "10.0.0.1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[256];
        int n = snprintf(req, sizeof req, "HEAD / HTTP/1.1\r\nHost: %s\r\n\r\n", cases[i].host);
        feed(req, (size_t)n, 5, 1);
        CHECK(h_nev == 1 && !strcmp(h_evs[0].name, cases[i].want), "host %s -> %s", cases[i].host,
              h_nev ? h_evs[0].name : "-");
    }
}

/* Pipelined requests with a Content-Length body between them, byte by byte and whole. */
static void test_pipelined(void)
{
    static const char reqs[] =
        "POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 27\r\n\r\n"
        "GET /not-a-request HTTP/1.1"                       /* 27 bytes of body */
        "GET /second HTTP/1.1\r\nHost: b.example\r\nUser-Agent: x\r\n\r\n"
        "PUT /third HTTP/1.0\nHost: c.example\n\n";          /* bare LF line ends */
    size_t steps[3] = { sizeof reqs, 1, 13 };
    for (int s = 0; s < 3; s++) {
        feed(reqs, sizeof reqs - 1, steps[s], 1);
        CHECK(h_nev == 3, "three requests (step %zu): %d", steps[s], h_nev);
        if (h_nev == 3) {
            CHECK(!strcmp(h_evs[0].name, "a.example") && !strcmp(h_evs[0].s1, "POST"), "first");
            CHECK(!strcmp(h_evs[1].name, "b.example") && !strcmp(h_evs[1].data, "/second")
                  && !strcmp(h_evs[1].s2, "x"), "second (body skipped)");
            CHECK(!strcmp(h_evs[2].name, "c.example") && !strcmp(h_evs[2].s1, "PUT"), "third, LF only");
        }
    }
}

/* Limits and refusals: no Host, chunked body, oversized head, not HTTP, cut head. */
static void test_bounds(void)
{
    static char big[PC_HTTP_MAX_HEAD + 200];
    int n, r;

    feed("GET / HTTP/1.0\r\n\r\n", 18, 100, 1);
    CHECK(h_nev == 0, "no Host: no event");

    {
        static const char chunked[] =
            "POST /a HTTP/1.1\r\nHost: one.example\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nGET /\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: two.example\r\n\r\n";
        r = feed(chunked, sizeof chunked - 1, 1000, 0);
        CHECK(r == PC_STREAM_DONE && h_nev == 1 && !strcmp(h_evs[0].name, "one.example"), "chunked: stop after it");
    }

    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: big.example\r\nX-Pad: ");
    memset(big + n, 'a', sizeof big - (size_t)n - 1);
    big[sizeof big - 1] = 0;
    r = feed(big, sizeof big - 1, 512, 0);
    CHECK(r == PC_STREAM_DONE, "head over 8 KB: gives up");
    CHECK(h_nev == 1 && (h_evs[0].ev.flags & PC_EVF_PARTIAL) && !strcmp(h_evs[0].name, "big.example"),
          "oversized head: partial event with the Host seen");

    r = feed("\x16\x03\x01garbage", 10, 100, 0);
    CHECK(r == PC_STREAM_DONE && h_nev == 0, "TLS bytes are not HTTP");
    r = feed("GETX / HTTP/1.1\r\n", 17, 100, 0);
    CHECK(r == PC_STREAM_DONE && h_nev == 0, "GETX is not a method");
    r = feed("GE", 2, 1, 0);
    CHECK(r == PC_STREAM_MORE, "a method prefix waits");

    r = feed("GET /cut HTTP/1.1\r\nHost: cut.example\r\nUser-Ag", 46, 7, 1);
    CHECK(r == PC_STREAM_DONE && h_nev == 1 && (h_evs[0].ev.flags & PC_EVF_PARTIAL)
          && !strcmp(h_evs[0].name, "cut.example"), "cut head reported as partial");

    /* a Content-Length that is not a number stops the direction after the request */
    r = feed("POST / HTTP/1.1\r\nHost: x.example\r\nContent-Length: 12a\r\n\r\nGET / HTTP/1.1\r\nHost: y\r\n\r\n",
             82, 1000, 0);
    CHECK(r == PC_STREAM_DONE && h_nev == 1, "bad Content-Length");

    /* the server side is never parsed as requests */
    {
        pc_dirstate ds;
        pc_meta m = h_meta(6, 50000, 80, 0);
        memset(&ds, 0, sizeof ds);
        h_open();
        r = h_stream(&m, &ds, (const uint8_t *)"GET / HTTP/1.1\r\nHost: s\r\n\r\n", 28, 100, 0);
        h_drain();
        CHECK(r == PC_STREAM_DONE && h_nev == 0, "server direction ignored");
    }

    /* a keep-alive byte (0x00) in front of a request picked up mid-flow is stepped over */
    r = feed("\0GET /k HTTP/1.1\r\nHost: ka.example\r\n\r\n", 38, 1, 0);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "ka.example"), "keep-alive byte skipped (%d)", h_nev);
    r = feed("\0\0GET / HTTP/1.1\r\nHost: no.example\r\n\r\n", 38, 100, 0);
    CHECK(r == PC_STREAM_DONE && h_nev == 0, "two zero bytes: not HTTP");

    /* non-printable bytes in the Host are escaped */
    feed("GET / HTTP/1.1\r\nHost: a\x01\xff" "b\r\n\r\n", 27, 100, 1);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "a\\x01\\xffb"), "escaped host %s", h_nev ? h_evs[0].name : "-");
}

/* SSDP M-SEARCH over UDP 1900: the Host without port, bracketed v6 too. */
static void test_ssdp(void)
{
    static const char msearch[] =
        "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n";
    static const char v6[] = "NOTIFY * HTTP/1.1\r\nHost: [FF02::C]:1900\r\nNT: upnp:rootdevice\r\n";
    static const char reply[] = "HTTP/1.1 200 OK\r\nST: x\r\n\r\n";
    pc_meta m = h_meta(17, 50000, 1900, 1);
    pc_udp_app *app = NULL;

    h_open();
    pc_app_udp(h_cx, &m, &app, (const uint8_t *)msearch, sizeof msearch - 1);
    pc_app_udp(h_cx, &m, &app, (const uint8_t *)v6, sizeof v6 - 1);
    pc_app_udp(h_cx, &m, &app, (const uint8_t *)reply, sizeof reply - 1);
    pc_app_udp_end(h_cx, &m, &app);
    h_drain();
    CHECK(h_nev == 2, "two ssdp requests (%d)", h_nev);
    if (h_nev == 2) {
        CHECK(!strcmp(h_evs[0].name, "239.255.255.250") && !strcmp(h_evs[0].s1, "M-SEARCH")
              && !strcmp(h_evs[0].data, "*"), "m-search");
        CHECK(!strcmp(h_evs[1].name, "FF02::C"), "v6 host %s", h_evs[1].name);
    }
}

int main(void)
{
    test_simple();
    test_host_forms();
    test_pipelined();
    test_bounds();
    test_ssdp();
    h_close();
    return check_report("test_http");
}
