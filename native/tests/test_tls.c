/*
 * test_tls.c - TLS over TCP: ClientHello (SNI, ALPN, JA3, JA4), split and
 * cut hellos, GREASE, the JA4 specification's own examples, server
 * certificates across records, TLS 1.3 and non-TLS streams.
 *
 * Oracles, all independent of this code:
 *  - three real ClientHellos, copied byte for byte (TCP payload: record
 *    header + handshake) from the shared captures with
 *    `tshark -r FILE -Y "frame.number==N" -T fields -e tcp.payload`;
 *    JA3 values from tshark 4.0.17 (`-e tls.handshake.ja3 -e
 *    tls.handshake.ja3_full`), JA4 values from the ja4plus 1.4.0 package
 *    (`ja4plus --format csv --types ja4 analyze FILE`), an independent
 *    Python implementation of the FoxIO specification;
 *  - the worked examples of the FoxIO JA4 specification
 *    (technical_details/JA4.md): t13d1516h2_8daaf6152771_e5627efa2ab1, the
 *    no-signature-algorithm hash 6d807ffa2a79 and the five ALPN hex cases;
 *  - hand-built certificate flights whose bytes the test knows.
 *
 * Long (~600 lines) mostly in data: real ClientHellos and certificate flights
 * copied byte for byte, next to the checks that read them.
 */
#include "parser_harness.h"

/* mercury__sll_tls.pcap (cisco/mercury, BSD-3-Clause), frame 1, 517 bytes.
 * tshark: SNI api.scarf.sh, ALPN http/1.1, ja3 331a436afb23d4e31134c11b301bdcb5,
 * ja3_full 771,4866-4867-4865-49196-49200-49195-49199-52393-52392-49188-49192-
 * 49187-49191-159-158-107-103-255,0-11-10-35-16-22-23-49-13-43-45-51-21,
 * 29-23-30-25-24-256-257-258-259-260,0-1-2.
 * ja4plus: t13d1813h1_85036bcba153_d339722ba4af, raw (JA4_r)
 * t13d1813h1_0067,006b,009e,009f,00ff,1301,1302,1303,c023,c024,c027,c028,
 * c02b,c02c,c02f,c030,cca8,cca9_000a,000b,000d,0015,0016,0017,0023,002b,002d,
 * 0031,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,
 * 0601,0303,0301,0302,0402,0502,0602 */
static const uint8_t hello_scarf[517] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xf1, 0xbb, 0xd6, 0x1d, 0xe7,
    0x18, 0x11, 0x50, 0xc3, 0xc5, 0x09, 0xc9, 0xc4, 0x6c, 0xee, 0xdb, 0xbd, 0xa0, 0xaa, 0x9b, 0x75,
    0x5e, 0x4d, 0xd7, 0xba, 0x20, 0x3f, 0x4c, 0x6b, 0xdf, 0xe3, 0xcd, 0x20, 0x2c, 0xef, 0xa3, 0xfd,
    0x9d, 0x1f, 0x0d, 0x90, 0x7f, 0xfb, 0xd7, 0x00, 0xa2, 0x87, 0x44, 0xe6, 0x1c, 0xd0, 0x2e, 0x94,
    0x21, 0x7d, 0xa2, 0xe5, 0xd7, 0x5d, 0xe1, 0xb7, 0xee, 0x2a, 0x4f, 0x26, 0x00, 0x24, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0xc0, 0x2b, 0xc0, 0x2f, 0xcc, 0xa9, 0xcc, 0xa8,
    0xc0, 0x24, 0xc0, 0x28, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x9f, 0x00, 0x9e, 0x00, 0x6b, 0x00, 0x67,
    0x00, 0xff, 0x01, 0x00, 0x01, 0x8f, 0x00, 0x00, 0x00, 0x11, 0x00, 0x0f, 0x00, 0x00, 0x0c, 0x61,
    0x70, 0x69, 0x2e, 0x73, 0x63, 0x61, 0x72, 0x66, 0x2e, 0x73, 0x68, 0x00, 0x0b, 0x00, 0x04, 0x03,
    0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
    0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00,
    0x00, 0x00, 0x10, 0x00, 0x0b, 0x00, 0x09, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a,
    0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a,
    0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03,
    0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x05, 0x04, 0x03,
    0x04, 0x03, 0x03, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
    0x1d, 0x00, 0x20, 0x99, 0x47, 0x59, 0xa3, 0x38, 0x44, 0x76, 0x93, 0x5e, 0x83, 0x8d, 0x90, 0x38,
    0x41, 0x40, 0xa9, 0x88, 0x6d, 0x22, 0xd0, 0xb3, 0xfc, 0x2c, 0x98, 0x7e, 0x3a, 0x92, 0xd4, 0xf8,
    0x62, 0xa1, 0x70, 0x00, 0x15, 0x00, 0xce, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

/* arkime__tls-alpn-h2.pcap (arkime/arkime, Apache-2.0), frame 4, 237 bytes.
 * tshark: SNI www.cloudflare.com, ALPN h2,http/1.1,
 * ja3 3faa4ad39f690c4ef1c3160caa375465. ja4plus: t12d4605h2_85626a9a5f7f_aaf95bb78ec9 */
static const uint8_t hello_cloudflare[237] = {
    0x16, 0x03, 0x01, 0x00, 0xe8, 0x01, 0x00, 0x00, 0xe4, 0x03, 0x03, 0x85, 0x82, 0x26, 0xc0, 0x4f,
    0xba, 0xed, 0xde, 0xf4, 0x24, 0x60, 0x93, 0xb4, 0xcf, 0xda, 0xb3, 0x8f, 0x9d, 0xcf, 0xef, 0x14,
    0x53, 0x60, 0xe4, 0x17, 0x68, 0x65, 0x75, 0xca, 0xc4, 0x9c, 0x70, 0x00, 0x00, 0x5c, 0xc0, 0x30,
    0xc0, 0x2c, 0xc0, 0x28, 0xc0, 0x24, 0xc0, 0x14, 0xc0, 0x0a, 0x00, 0x9f, 0x00, 0x6b, 0x00, 0x39,
    0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xff, 0x85, 0x00, 0xc4, 0x00, 0x88, 0x00, 0x81, 0x00, 0x9d,
    0x00, 0x3d, 0x00, 0x35, 0x00, 0xc0, 0x00, 0x84, 0xc0, 0x2f, 0xc0, 0x2b, 0xc0, 0x27, 0xc0, 0x23,
    0xc0, 0x13, 0xc0, 0x09, 0x00, 0x9e, 0x00, 0x67, 0x00, 0x33, 0x00, 0xbe, 0x00, 0x45, 0x00, 0x9c,
    0x00, 0x3c, 0x00, 0x2f, 0x00, 0xba, 0x00, 0x41, 0xc0, 0x11, 0xc0, 0x07, 0x00, 0x05, 0x00, 0x04,
    0xc0, 0x12, 0xc0, 0x08, 0x00, 0x16, 0x00, 0x0a, 0x00, 0xff, 0x01, 0x00, 0x00, 0x5f, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x15, 0x00, 0x00, 0x12, 0x77, 0x77, 0x77, 0x2e, 0x63, 0x6c, 0x6f, 0x75, 0x64,
    0x66, 0x6c, 0x61, 0x72, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, 0x00,
    0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x0d, 0x00, 0x1c, 0x00,
    0x1a, 0x06, 0x01, 0x06, 0x03, 0xef, 0xef, 0x05, 0x01, 0x05, 0x03, 0x04, 0x01, 0x04, 0x03, 0xee,
    0xee, 0xed, 0xed, 0x03, 0x01, 0x03, 0x03, 0x02, 0x01, 0x02, 0x03, 0x00, 0x10, 0x00, 0x0e, 0x00,
    0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
};

/* mercury__top_100_fingerprints.pcap (cisco/mercury, BSD-3-Clause), frame 14,
 * 284 bytes: Chrome with GREASE cipher 0x0a0a, extensions 2570 and 6682,
 * group 0x0a0a. tshark: SNI www.google.com, ja3 66918128f1b9b03303d77c6f2eefd128,
 * ja3_full 771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-
 * 156-157-47-53-10,0-23-65281-10-11-35-16-5-13-18-51-45-43-27-21,29-23-24,0.
 * ja4plus: t13d1615h2_46e7e9700bed_45f260be83e2 */
static const uint8_t hello_chrome_grease[284] = {
    0x16, 0x03, 0x01, 0x01, 0x17, 0x01, 0x00, 0x01, 0x13, 0x03, 0x03, 0xd7, 0x38, 0x6b, 0xc0, 0x6e,
    0x76, 0x64, 0x75, 0xfd, 0x25, 0xe3, 0xca, 0xa6, 0x6a, 0x70, 0x4d, 0x09, 0x6c, 0x0f, 0x17, 0xa1,
    0x3e, 0x9c, 0x59, 0x9d, 0x2b, 0xc2, 0xc7, 0x09, 0x4a, 0x83, 0x7a, 0x00, 0x00, 0x22, 0x0a, 0x0a,
    0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9,
    0xcc, 0xa8, 0xc0, 0x13, 0xc0, 0x14, 0x00, 0x9c, 0x00, 0x9d, 0x00, 0x2f, 0x00, 0x35, 0x00, 0x0a,
    0x01, 0x00, 0x00, 0xc8, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x11, 0x00, 0x00,
    0x0e, 0x77, 0x77, 0x77, 0x2e, 0x67, 0x6f, 0x6f, 0x67, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00,
    0x17, 0x00, 0x00, 0xff, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08, 0x0a, 0x0a,
    0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, 0x00, 0x23, 0x00, 0x00,
    0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31,
    0x2e, 0x31, 0x00, 0x05, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x14, 0x00,
    0x12, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06,
    0x01, 0x02, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x33, 0x00, 0x2b, 0x00, 0x29, 0x8a, 0x8a, 0x00,
    0x01, 0x00, 0x00, 0x1d, 0x00, 0x20, 0xa5, 0x3a, 0x83, 0x2d, 0x5d, 0x48, 0x13, 0xf5, 0x01, 0xf9,
    0x25, 0x05, 0x05, 0x26, 0x76, 0x58, 0x22, 0x8c, 0x67, 0x3f, 0xc5, 0x8b, 0xcb, 0x00, 0xb6, 0x4f,
    0x7e, 0xe3, 0xdd, 0xa2, 0x79, 0x32, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x2b, 0x00, 0x0b,
    0x0a, 0x0a, 0x0a, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x1b, 0x00, 0x03, 0x02,
    0x00, 0x02, 0x1a, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x15, 0x00, 0x01, 0x00,
};

/* ---- builders ------------------------------------------------------------ */
typedef struct buf { uint8_t b[200000]; size_t n; } buf;
static void b8(buf *x, unsigned v) { if (x->n >= sizeof x->b) abort(); x->b[x->n++] = (uint8_t)v; }
static void b16(buf *x, unsigned v) { b8(x, v >> 8); b8(x, v & 0xff); }
static void b24(buf *x, unsigned long v) { b8(x, (unsigned)(v >> 16)); b16(x, (unsigned)(v & 0xffff)); }
static void bput(buf *x, const void *p, size_t n) { if (n > sizeof x->b - x->n) abort(); memcpy(x->b + x->n, p, n); x->n += n; }

/* Cuts the handshake bytes hs into records of at most `max` payload bytes. */
static void records(buf *out, uint8_t type, const uint8_t *hs, size_t n, size_t max)
{
    for (size_t i = 0; i < n || n == 0; i += max) {
        size_t k = n - i < max ? n - i : max;
        b8(out, type); b16(out, 0x0303); b16(out, (unsigned)k);
        bput(out, hs + i, k);
        if (n == 0)
            break;
    }
}

static pc_meta client_meta(void) { return h_meta(6, 50000, 443, 1); }
static pc_meta server_meta(void) { return h_meta(6, 50000, 443, 0); }

/* Feeds data as the client side in chunks of step bytes, ending with final. */
static int feed_client(const uint8_t *data, size_t n, size_t step, int fin)
{
    pc_dirstate ds;
    pc_meta m = client_meta();
    int r;
    memset(&ds, 0, sizeof ds);
    h_open();
    r = h_stream(&m, &ds, data, n, step, fin);
    h_drain();
    return r;
}

static int feed_server(const uint8_t *data, size_t n, size_t step, int fin)
{
    pc_dirstate ds;
    pc_meta m = server_meta();
    int r;
    memset(&ds, 0, sizeof ds);
    h_open();
    r = h_stream(&m, &ds, data, n, step, fin);
    h_drain();
    return r;
}

/* ---- real hellos ---------------------------------------------------------- */
typedef struct real_case {
    const char *label;
    const uint8_t *bytes;
    size_t n;
    const char *sni, *alpn, *ja3, *ja3_full, *ja4;
} real_case;

static const real_case reals[] = {
    { "scarf", hello_scarf, sizeof hello_scarf, "api.scarf.sh", "http/1.1",
      "331a436afb23d4e31134c11b301bdcb5",
      "771,4866-4867-4865-49196-49200-49195-49199-52393-52392-49188-49192-49187-49191-159-158-107-103-255,"
      "0-11-10-35-16-22-23-49-13-43-45-51-21,29-23-30-25-24-256-257-258-259-260,0-1-2",
      "t13d1813h1_85036bcba153_d339722ba4af" },
    { "cloudflare", hello_cloudflare, sizeof hello_cloudflare, "www.cloudflare.com", "h2,http/1.1",
      "3faa4ad39f690c4ef1c3160caa375465", NULL, "t12d4605h2_85626a9a5f7f_aaf95bb78ec9" },
    { "chrome-grease", hello_chrome_grease, sizeof hello_chrome_grease, "www.google.com", NULL,
      "66918128f1b9b03303d77c6f2eefd128",
      "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53-10,"
      "0-23-65281-10-11-35-16-5-13-18-51-45-43-27-21,29-23-24,0",
      "t13d1615h2_46e7e9700bed_45f260be83e2" },
};

/* Each real hello, whole and one byte at a time, gives tshark's JA3 and ja4plus's JA4. */
static void test_real_hellos(void)
{
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        const real_case *c = &reals[i];
        size_t steps[2] = { c->n, 1 };
        for (int s = 0; s < 2; s++) {
            int r = feed_client(c->bytes, c->n, steps[s], 0);
            h_ev *e = h_get(PC_EV_TLS_SNI, 0);
            CHECK(r == PC_STREAM_MORE, "%s: waits for a possible second hello", c->label);
            CHECK(h_nev == 1 && e, "%s step %zu: one event (%d)", c->label, steps[s], h_nev);
            if (!e)
                continue;
            CHECK(!strcmp(e->name, c->sni), "%s: sni %s", c->label, e->name);
            CHECK(!strcmp(e->s2, c->ja3), "%s: ja3 %s", c->label, e->s2);
            CHECK(!strcmp(e->s1, c->ja4), "%s: ja4 %s", c->label, e->s1);
            if (c->alpn)
                CHECK(!strcmp(e->s3, c->alpn), "%s: alpn %s", c->label, e->s3);
            CHECK(e->ev.flags == 0, "%s: not partial", c->label);
        }
        if (c->ja3_full) {
            pc_hello h;
            char s[8192];
            CHECK(pc_hello_parse(c->bytes + 5, c->n - 5, &h) == PC_OK && !h.partial, "%s parses", c->label);
            pc_ja3_string(&h, s, sizeof s);
            CHECK(!strcmp(s, c->ja3_full), "%s: ja3 string %s", c->label, s);
        }
    }
    /* JA4_r of the scarf hello equals ja4plus's raw output */
    {
        pc_hello h;
        char ja4[37], raw[4096];
        pc_hello_parse(hello_scarf + 5, sizeof hello_scarf - 5, &h);
        pc_ja4(&h, 't', ja4, raw, sizeof raw);
        CHECK(!strcmp(raw, "t13d1813h1_0067,006b,009e,009f,00ff,1301,1302,1303,c023,c024,c027,c028,"
                           "c02b,c02c,c02f,c030,cca8,cca9_000a,000b,000d,0015,0016,0017,0023,002b,002d,"
                           "0031,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,"
                           "0601,0303,0301,0302,0402,0502,0602"), "ja4_r %s", raw);
    }
}

/* A hello whose handshake message is spread over several records gives the same fingerprints. */
static void test_split_records(void)
{
    static buf x;
    const size_t sizes[3] = { 100, 7, 1 };
    for (int k = 0; k < 3; k++) {
        x.n = 0;
        records(&x, 22, hello_scarf + 5, sizeof hello_scarf - 5, sizes[k]);
        feed_client(x.b, x.n, 13, 1);
        CHECK(h_nev == 1, "records of %zu: %d events", sizes[k], h_nev);
        if (h_nev == 1) {
            CHECK(!strcmp(h_evs[0].s1, reals[0].ja4) && !strcmp(h_evs[0].s2, reals[0].ja3)
                  && !strcmp(h_evs[0].name, "api.scarf.sh") && h_evs[0].ev.flags == 0,
                  "records of %zu: same values", sizes[k]);
        }
    }
}

static const uint8_t *find(const uint8_t *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (!memcmp(hay + i, needle, l))
            return hay + i;
    return NULL;
}

/* A cut hello reports what is there (SNI) with PC_EVF_PARTIAL and no fingerprints. */
static void test_truncated(void)
{
    const uint8_t *sni = find(hello_scarf, sizeof hello_scarf, "api.scarf.sh");
    size_t cut = (size_t)(sni - hello_scarf) + 12 + 3;
    int r = feed_client(hello_scarf, cut, 50, 1);
    CHECK(r == PC_STREAM_DONE && h_nev == 1, "cut hello: one event (%d)", h_nev);
    if (h_nev == 1) {
        CHECK(h_evs[0].ev.flags & PC_EVF_PARTIAL, "partial flag");
        CHECK(!strcmp(h_evs[0].name, "api.scarf.sh"), "sni of a cut hello: %s", h_evs[0].name);
        CHECK(h_evs[0].s1[0] == 0 && h_evs[0].s2[0] == 0, "no fingerprints");
    }
    /* cut inside the SNI: an event without a name */
    feed_client(hello_scarf, (size_t)(sni - hello_scarf) + 4, 50, 1);
    CHECK(h_nev == 1 && h_evs[0].name[0] == 0 && (h_evs[0].ev.flags & PC_EVF_PARTIAL), "cut inside sni");
    /* cut before the cipher suites: nothing */
    feed_client(hello_scarf, 5 + 4 + 20, 50, 1);
    CHECK(h_nev == 0, "cut in the random: no event");
    /* without final the parser keeps waiting and reports nothing yet */
    {
        pc_dirstate ds;
        pc_meta m = client_meta();
        size_t consumed = 99;
        memset(&ds, 0, sizeof ds);
        h_open();
        int rr = pc_app_tcp(h_cx, &m, &ds, hello_scarf, 300, 0, &consumed);
        h_drain();
        CHECK(rr == PC_STREAM_MORE && consumed == 0 && h_nev == 0, "waits: r=%d consumed=%zu", rr, consumed);
    }
}

/* Builds a ClientHello (handshake message) from lists; ext bodies are made for 0, 16, 13, 43. */
static size_t build_hello(buf *x, const uint16_t *ciphers, size_t nc, const uint16_t *exts, size_t ne,
                          const uint16_t *sigs, size_t ns, const uint8_t *alpn, size_t alpn_len)
{
    static buf e;
    e.n = 0;
    for (size_t i = 0; i < ne; i++) {
        b16(&e, exts[i]);
        switch (exts[i]) {
        case 0x0000:
            b16(&e, 2 + 3 + 11); b16(&e, 3 + 11); b8(&e, 0); b16(&e, 11); bput(&e, "example.org", 11);
            break;
        case 0x0010:
            b16(&e, (unsigned)(2 + 1 + alpn_len)); b16(&e, (unsigned)(1 + alpn_len)); b8(&e, (unsigned)alpn_len);
            bput(&e, alpn, alpn_len);
            break;
        case 0x000d:
            b16(&e, (unsigned)(2 + 2 * ns)); b16(&e, (unsigned)(2 * ns));
            for (size_t k = 0; k < ns; k++) b16(&e, sigs[k]);
            break;
        case 0x002b:
            b16(&e, 3); b8(&e, 2); b16(&e, 0x0304);
            break;
        default:
            b16(&e, 0);
            break;
        }
    }
    x->n = 0;
    b8(x, 1);
    b24(x, (unsigned long)(2 + 32 + 1 + 2 + 2 * nc + 2 + 2 + e.n));
    b16(x, 0x0303);
    for (int i = 0; i < 32; i++) b8(x, (unsigned)i);
    b8(x, 0);
    b16(x, (unsigned)(2 * nc));
    for (size_t i = 0; i < nc; i++) b16(x, ciphers[i]);
    b8(x, 1); b8(x, 0);
    b16(x, (unsigned)e.n);
    bput(x, e.b, e.n);
    return x->n;
}

/* The example of the JA4 specification, built from its lists, gives its fingerprint. */
static void test_ja4_spec(void)
{
    static const uint16_t ciphers[] = { 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                        0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035 };
    static const uint16_t exts[] = { 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
                                     0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015 };
    static const uint16_t sigs[] = { 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601 };
    /* the same with GREASE sprinkled in: must not change anything */
    static const uint16_t gciphers[] = { 0x5a5a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                         0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035 };
    static const uint16_t gexts[] = { 0xfafa, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
                                      0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x1a1a };
    static buf x;
    pc_hello h;
    char ja4[37];

    build_hello(&x, ciphers, 15, exts, 16, sigs, 8, (const uint8_t *)"h2", 2);
    CHECK(pc_hello_parse(x.b, x.n, &h) == PC_OK && !h.partial, "spec hello parses");
    pc_ja4(&h, 't', ja4, NULL, 0);
    CHECK(!strcmp(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1"), "spec ja4 %s", ja4);

    build_hello(&x, gciphers, 16, gexts, 18, sigs, 8, (const uint8_t *)"h2", 2);
    pc_hello_parse(x.b, x.n, &h);
    pc_ja4(&h, 't', ja4, NULL, 0);
    CHECK(!strcmp(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1"), "spec ja4 with GREASE %s", ja4);
    {
        char s[4096];
        pc_ja3_string(&h, s, sizeof s);
        CHECK(!strstr(s, "23130") && !strstr(s, "64250") && !strstr(s, "6682"), "GREASE out of JA3 %s", s);
    }
    /* through pc_tls_client_hello as QUIC: the same with 'q' */
    h_open();
    {
        pc_meta m = h_meta(17, 50000, 443, 1);
        CHECK(pc_tls_client_hello(h_cx, &m, PC_EV_QUIC_SNI, x.b, x.n, 0) == PC_OK, "quic hello ok");
    }
    h_drain();
    CHECK(h_nev == 1 && h_evs[0].ev.kind == PC_EV_QUIC_SNI && !strcmp(h_evs[0].s1, "q13d1516h2_8daaf6152771_e5627efa2ab1")
          && !strcmp(h_evs[0].name, "example.org") && !strcmp(h_evs[0].s3, "h2"), "quic event");

    /* no signature algorithms (extension present, empty list): the spec's 6d807ffa2a79 */
    build_hello(&x, ciphers, 15, exts, 16, sigs, 0, (const uint8_t *)"h2", 2);
    pc_hello_parse(x.b, x.n, &h);
    pc_ja4(&h, 't', ja4, NULL, 0);
    CHECK(!strcmp(ja4 + 24, "6d807ffa2a79"), "no sigalgs: %s", ja4);

    /* no ciphers, no extensions: zeros; no SNI: 'i'; no ALPN: "00"; legacy version 1.2 */
    build_hello(&x, ciphers, 0, exts, 0, sigs, 0, NULL, 0);
    pc_hello_parse(x.b, x.n, &h);
    pc_ja4(&h, 't', ja4, NULL, 0);
    CHECK(!strcmp(ja4, "t12i000000_000000000000_000000000000"), "empty hello %s", ja4);

    /* the ALPN cases of the specification */
    {
        static const struct { uint8_t v[4]; size_t n; const char *want; } cases[] = {
            { { 0xAB }, 1, "ab" }, { { 0xAB, 0xCD }, 2, "ad" }, { { 0x30, 0xAB }, 2, "3b" },
            { { 0x30, 0x31, 0xAB, 0xCD }, 4, "3d" }, { { 0x30, 0xAB, 0xCD, 0x31 }, 4, "01" },
            { { 'h' }, 1, "hh" }, { { 'h', '2' }, 2, "h2" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            static const uint16_t alpn_only[] = { 0x0010 };
            build_hello(&x, ciphers, 1, alpn_only, 1, sigs, 0, cases[i].v, cases[i].n);
            pc_hello_parse(x.b, x.n, &h);
            pc_ja4(&h, 't', ja4, NULL, 0);
            CHECK(ja4[8] == cases[i].want[0] && ja4[9] == cases[i].want[1], "alpn case %zu: %.2s", i, ja4 + 8);
        }
    }
}

/* A second ClientHello after a HelloRetryRequest (behind a ChangeCipherSpec) is reported; encrypted bytes are not. */
static void test_second_hello(void)
{
    static buf x;
    static const uint8_t ccs[6] = { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01 };
    x.n = 0;
    bput(&x, hello_scarf, sizeof hello_scarf);
    bput(&x, ccs, 6);
    bput(&x, hello_cloudflare, sizeof hello_cloudflare);
    for (size_t step = 1; step <= x.n; step += x.n - 1) {
        feed_client(x.b, x.n, step, 1);
        CHECK(h_nev == 2 && !strcmp(h_evs[0].name, "api.scarf.sh") && !strcmp(h_evs[1].name, "www.cloudflare.com"),
              "two hellos, step %zu: %d", step, h_nev);
    }
    /* TLS 1.2 resumption: CCS then an encrypted Finished that starts with 0x01 */
    x.n = 0;
    bput(&x, hello_scarf, sizeof hello_scarf);
    bput(&x, ccs, 6);
    b8(&x, 22); b16(&x, 0x0303); b16(&x, 40);
    b8(&x, 1); b24(&x, 36);
    for (int i = 0; i < 36; i++) b8(&x, (unsigned)(i * 37 + 11));
    feed_client(x.b, x.n, 17, 1);
    CHECK(h_nev == 1, "encrypted Finished not taken for a hello (%d)", h_nev);
}

/* Builds a TLS 1.2 (or 1.3) server flight: ServerHello, Certificate(certs), ServerHelloDone. */
static void server_flight(buf *hs, int tls13, const uint8_t *const *certs, const size_t *lens, size_t n)
{
    size_t list = 0;
    hs->n = 0;
    /* ServerHello */
    b8(hs, 2); b24(hs, tls13 ? 2 + 32 + 1 + 2 + 1 + 2 + 6 : 2 + 32 + 1 + 2 + 1);
    b16(hs, 0x0303);
    for (int i = 0; i < 32; i++) b8(hs, 0x42);
    b8(hs, 0); b16(hs, tls13 ? 0x1301 : 0xc02f); b8(hs, 0);
    if (tls13) { b16(hs, 6); b16(hs, 43); b16(hs, 2); b16(hs, 0x0304); }
    for (size_t i = 0; i < n; i++) list += 3 + lens[i];
    b8(hs, 11); b24(hs, (unsigned long)(3 + list)); b24(hs, (unsigned long)list);
    for (size_t i = 0; i < n; i++) { b24(hs, (unsigned long)lens[i]); bput(hs, certs[i], lens[i]); }
    b8(hs, 14); b24(hs, 0);
}

/* Certificates spanning records and segments come out whole, in order, with their index. */
static void test_certs(void)
{
    static uint8_t c0[300], c1[5000], c2[20000];
    const uint8_t *certs[3] = { c0, c1, c2 };
    size_t lens[3] = { sizeof c0, sizeof c1, sizeof c2 };
    static buf hs, x;
    const size_t recsz[3] = { 16384, 1000, 1 };

    for (size_t i = 0; i < sizeof c0; i++) c0[i] = (uint8_t)(0x30 + i);
    for (size_t i = 0; i < sizeof c1; i++) c1[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof c2; i++) c2[i] = (uint8_t)(i * 13 + 5);
    server_flight(&hs, 0, certs, lens, 3);
    for (int k = 0; k < 3; k++) {
        int r;
        x.n = 0;
        records(&x, 22, hs.b, hs.n, recsz[k]);
        b8(&x, 20); b16(&x, 0x0303); b16(&x, 1); b8(&x, 1);     /* CCS after */
        r = feed_server(x.b, x.n, k == 2 ? 4099 : 333, 0);
        CHECK(h_count(PC_EV_TLS_CERT) == 3, "records of %zu: %d certs", recsz[k], h_count(PC_EV_TLS_CERT));
        CHECK(r == PC_STREAM_DONE, "done at ServerHelloDone");
        for (int i = 0; i < 3; i++) {
            h_ev *e = h_get(PC_EV_TLS_CERT, i);
            CHECK(e && e->ev.index == (uint32_t)i && e->data_len == lens[i] && !memcmp(e->data, certs[i], lens[i]),
                  "cert %d intact (records of %zu)", i, recsz[k]);
        }
    }
    /* the stream ends inside the third certificate: the first two only */
    x.n = 0;
    records(&x, 22, hs.b, hs.n, 1000);
    feed_server(x.b, x.n - 3000, 500, 1);
    CHECK(h_count(PC_EV_TLS_CERT) == 2, "cut chain: %d certs", h_count(PC_EV_TLS_CERT));

    /* TLS 1.3 ServerHello: nothing after it is read */
    server_flight(&hs, 1, certs, lens, 2);
    x.n = 0;
    records(&x, 22, hs.b, hs.n, 16384);
    CHECK(feed_server(x.b, x.n, 100, 0) == PC_STREAM_DONE && h_nev == 0, "tls 1.3: no certs");

    /* a certificate whose length runs past its list: stop, nothing */
    server_flight(&hs, 0, certs, lens, 1);
    hs.b[2 + 4 + 32 + 4 + 4 + 3 + 1] = 0xff;          /* first cert length high byte */
    x.n = 0;
    records(&x, 22, hs.b, hs.n, 16384);
    feed_server(x.b, x.n, 100, 1);
    CHECK(h_count(PC_EV_TLS_CERT) == 0, "bad cert length");

    /* a client Certificate after the ClientHello (mutual TLS 1.2) */
    {
        static buf cm;
        cm.n = 0;
        b8(&cm, 11); b24(&cm, 3 + 3 + sizeof c0); b24(&cm, 3 + sizeof c0); b24(&cm, sizeof c0);
        bput(&cm, c0, sizeof c0);
        b8(&cm, 16); b24(&cm, 2); b16(&cm, 0);       /* ClientKeyExchange */
        x.n = 0;
        bput(&x, hello_cloudflare, sizeof hello_cloudflare);
        records(&x, 22, cm.b, cm.n, 16384);
        feed_client(x.b, x.n, 64, 1);
        CHECK(h_count(PC_EV_TLS_SNI) == 1 && h_count(PC_EV_TLS_CERT) == 1, "client cert: %d events", h_nev);
    }
}

/* Bytes that are not TLS, or TLS records with impossible lengths, end the direction quietly. */
static void test_not_tls(void)
{
    static const uint8_t junk[] = "SSH-2.0-OpenSSH_9.6\r\n";
    static const uint8_t bigrec[] = { 0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0x00, 0x10 };
    static const uint8_t notch[] = { 0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00 };
    CHECK(feed_client(junk, sizeof junk - 1, 100, 0) == PC_STREAM_DONE && h_nev == 0, "ssh banner");
    CHECK(feed_client(bigrec, sizeof bigrec, 100, 0) == PC_STREAM_DONE && h_nev == 0, "record too long");
    CHECK(feed_client(notch, sizeof notch, 100, 0) == PC_STREAM_DONE && h_nev == 0, "client sends a ServerHello");
    CHECK(feed_client(hello_scarf, 1, 1, 0) == PC_STREAM_MORE, "one byte 0x16: wait");
    CHECK(feed_client(hello_scarf, 0, 1, 1) == PC_STREAM_DONE, "empty final");
}

/* Feeds one direction of a flow on the given server port. */
static int feed_port(uint16_t port, int from_client, const uint8_t *data, size_t n, size_t step, int fin)
{
    pc_dirstate ds;
    pc_meta m = h_meta(6, 50000, port, from_client);
    int r;
    memset(&ds, 0, sizeof ds);
    h_open();
    r = h_stream(&m, &ds, data, n, step, fin);
    h_drain();
    return r;
}

/* TLS inside a SOCKS4a/SOCKS5 tunnel or after HTTP CONNECT is parsed like direct TLS, on both sides. */
static void test_tunnels(void)
{
    static buf x, hs;
    static const uint8_t socks5_client[] = {
        5, 2, 0, 2,                                   /* greeting: no auth, user/pass */
        1, 3, 'b', 'o', 'b', 2, 'p', 'w',             /* RFC 1929 sub-negotiation */
        5, 1, 0, 3, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g', 0x01, 0xbb,
    };
    static const uint8_t socks5_server[] = { 5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38 };
    static const uint8_t socks4a_client[] = { 4, 1, 0x01, 0xbb, 0, 0, 0, 1, 'u', 0, 'a', '.', 'b', 0 };
    static const uint8_t socks4_server[] = { 0, 0x5a, 0, 0, 0, 0, 0, 0 };
    static const char connect_req[] = "CONNECT api.scarf.sh:443 HTTP/1.1\r\nHost: api.scarf.sh:443\r\n\r\n";
    static const char connect_ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    static const char get_ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    static uint8_t c0[100];
    const uint8_t *certs[1] = { c0 };
    size_t lens[1] = { sizeof c0 };

    x.n = 0; bput(&x, socks5_client, sizeof socks5_client); bput(&x, hello_scarf, sizeof hello_scarf);
    for (size_t step = 1; step <= x.n; step += x.n - 1) {
        feed_port(1080, 1, x.b, x.n, step, 1);
        CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "api.scarf.sh") && !strcmp(h_evs[0].s1, reals[0].ja4),
              "socks5 client, step %zu: %d events", step, h_nev);
    }
    x.n = 0; bput(&x, socks4a_client, sizeof socks4a_client); bput(&x, hello_cloudflare, sizeof hello_cloudflare);
    feed_port(1080, 1, x.b, x.n, 3, 1);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "www.cloudflare.com"), "socks4a client");

    memset(c0, 0x5c, sizeof c0);
    server_flight(&hs, 0, certs, lens, 1);
    x.n = 0; bput(&x, socks5_server, sizeof socks5_server); records(&x, 22, hs.b, hs.n, 16384);
    feed_port(1080, 0, x.b, x.n, 5, 1);
    CHECK(h_count(PC_EV_TLS_CERT) == 1, "socks5 server: cert inside (%d)", h_nev);
    x.n = 0; bput(&x, socks4_server, sizeof socks4_server); records(&x, 22, hs.b, hs.n, 16384);
    feed_port(1080, 0, x.b, x.n, 1000, 1);
    CHECK(h_count(PC_EV_TLS_CERT) == 1, "socks4 server: cert inside");

    x.n = 0; bput(&x, connect_req, sizeof connect_req - 1); bput(&x, hello_scarf, sizeof hello_scarf);
    feed_port(8080, 1, x.b, x.n, 11, 1);
    CHECK(h_count(PC_EV_HTTP_HOST) == 1 && h_count(PC_EV_TLS_SNI) == 1, "CONNECT then TLS: %d events", h_nev);
    if (h_count(PC_EV_HTTP_HOST) == 1)
        CHECK(!strcmp(h_get(PC_EV_HTTP_HOST, 0)->s1, "CONNECT") && !strcmp(h_get(PC_EV_HTTP_HOST, 0)->name, "api.scarf.sh"),
              "CONNECT event");
    x.n = 0; bput(&x, connect_ok, sizeof connect_ok - 1); records(&x, 22, hs.b, hs.n, 16384);
    feed_port(8080, 0, x.b, x.n, 7, 1);
    CHECK(h_count(PC_EV_TLS_CERT) == 1, "CONNECT answer then TLS: cert");

    /* an ordinary response with a body is not a tunnel */
    x.n = 0; bput(&x, get_ok, sizeof get_ok - 1); records(&x, 22, hs.b, hs.n, 16384);
    CHECK(feed_port(80, 0, x.b, x.n, 1000, 0) == PC_STREAM_DONE && h_nev == 0, "200 with a body: done");
    /* SOCKS bytes on another port are not taken for SOCKS */
    CHECK(feed_port(8443, 1, socks5_client, sizeof socks5_client, 100, 0) == PC_STREAM_DONE, "socks only on 1080");
}

/* When allocations fail, a hello spread over records is dropped cleanly (ASan: no leak, no crash). */
static void test_alloc_failure(void)
{
    static buf x;
    int r;
    x.n = 0;
    records(&x, 22, hello_scarf + 5, sizeof hello_scarf - 5, 100);
    h_open();
    {
        pc_dirstate ds;
        pc_meta m = client_meta();
        memset(&ds, 0, sizeof ds);
        pc_alloc_fail_after(0);
        r = h_stream(&m, &ds, x.b, x.n, x.n, 1);
        pc_alloc_fail_after(-1);
    }
    h_drain();
    CHECK(r == PC_STREAM_DONE && h_nev == 0, "allocation failure: done, no event (%d)", h_nev);
    /* and the next connection works again */
    feed_client(x.b, x.n, 50, 1);
    CHECK(h_nev == 1 && !strcmp(h_evs[0].name, "api.scarf.sh"), "after the failure");
}

int main(void)
{
    test_real_hellos();
    test_split_records();
    test_truncated();
    test_ja4_spec();
    test_second_hello();
    test_certs();
    test_not_tls();
    test_tunnels();
    test_alloc_failure();
    h_close();
    return check_report("test_tls");
}
