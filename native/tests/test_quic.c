/*
 * test_quic.c - QUIC Initial decryption (quic.c) against the worked examples
 * of RFC 9001 appendix A (v1) and RFC 9369 appendix A (v2), then through a
 * real feed reader: ClientHellos split over several Initials and delivered
 * out of order, coalesced packets, a corrupted tag, truncated datagrams,
 * Retry (new DCID), retransmissions, server packets, the per-flow bound and
 * allocation failures.
 *
 * Expected values are the RFC's own bytes (transcribed from the RFC text,
 * a specification) or hand-derived from the packets the test builds; the
 * packets are built by this file's own encryptor (OpenSSL, independent of
 * quic.c's decryption path) with keys checked first against the RFC.
 *
 * Long (~950 lines) because the test carries its own QUIC encryptor (the
 * independent oracle for quic.c's decryption) next to the cases that use it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "parsers.h"
#include "reader.h"

/* Exposed by quic.c for tests (not part of parsers.h). */
int pc_quic_client_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                        uint8_t key[16], uint8_t iv[12], uint8_t hp[16]);
int pc_quic_open_packet(uint32_t version, const uint8_t *pkt, size_t hdr_len, size_t pkt_len,
                        const uint8_t *dcid, size_t dcid_len, int64_t largest_pn,
                        uint8_t *out, size_t *out_len, uint64_t *pn);

static int passed, failed;

#define CHECK(cond) do { \
    if (cond) passed++; \
    else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

/* ---- RFC 9001 appendix A and RFC 9369 appendix A ------------------------ */
static const char *DCID_HEX = "8394c8f03e515708";

/* A.2: the CRYPTO frame carrying the ClientHello (then 917 bytes of PADDING). */
static const char *RFC_CRYPTO_FRAME =
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff";

/* RFC 9001 A.2: the protected client Initial (1200 bytes). */
static const char *RFC9001_PACKET =
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934";

/* RFC 9369 A.2: the same ClientHello as a QUIC v2 client Initial. */
static const char *RFC9369_PACKET =
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc";

#define QV1 0x00000001u
#define QV2 0x6b3343cfu

/* Decodes hex (whitespace-free) into out; returns the byte count. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (h[0] && h[1] && n < cap) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

/* The RFC's ClientHello: the CRYPTO frame's data (245 bytes, SNI example.com). */
static uint8_t CH[512];
static size_t CH_LEN;
static uint8_t DCID[8];

static void load_vectors(void)
{
    uint8_t frame[512];
    size_t n = unhex(RFC_CRYPTO_FRAME, frame, sizeof frame);

    /* 06 | offset 00 | length 40f1 | data */
    CH_LEN = n - 4;
    memcpy(CH, frame + 4, CH_LEN);
    unhex(DCID_HEX, DCID, sizeof DCID);
}

/* ---- an independent Initial packet builder ------------------------------ */
/*
 * Protects one client Initial: header (type bits per version, 4-byte packet
 * number, 2-byte Length), AES-128-GCM over payload with the header as AAD,
 * then header protection. Returns the packet length written to out.
 */
static size_t protect(uint32_t version, const uint8_t *dcid, size_t dcid_len, uint32_t pn,
                      const uint8_t *payload, size_t plen, uint8_t *out)
{
    uint8_t key[16], iv[12], hp[16], nonce[12], mask[16];
    size_t h = 0, pn_off, i, len_field = 4 + plen + 16;
    EVP_CIPHER_CTX *c;
    int outl = 0;

    if (pc_quic_client_keys(version, dcid, dcid_len, key, iv, hp) < 0)
        return 0;
    out[h++] = (uint8_t)(0xc0 | ((version == QV2 ? 1 : 0) << 4) | 0x03);
    out[h++] = (uint8_t)(version >> 24);
    out[h++] = (uint8_t)(version >> 16);
    out[h++] = (uint8_t)(version >> 8);
    out[h++] = (uint8_t)version;
    out[h++] = (uint8_t)dcid_len;
    memcpy(out + h, dcid, dcid_len);
    h += dcid_len;
    out[h++] = 0;                     /* SCID length */
    out[h++] = 0;                     /* token length */
    out[h++] = (uint8_t)(0x40 | (len_field >> 8));
    out[h++] = (uint8_t)len_field;
    pn_off = h;
    out[h++] = (uint8_t)(pn >> 24);
    out[h++] = (uint8_t)(pn >> 16);
    out[h++] = (uint8_t)(pn >> 8);
    out[h++] = (uint8_t)pn;
    memcpy(nonce, iv, 12);
    for (i = 0; i < 4; i++)
        nonce[8 + i] ^= (uint8_t)(pn >> (24 - 8 * i));
    c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce);
    EVP_EncryptUpdate(c, NULL, &outl, out, (int)h);
    EVP_EncryptUpdate(c, out + h, &outl, payload, (int)plen);
    EVP_EncryptFinal_ex(c, out + h + plen, &outl);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + h + plen);
    EVP_CIPHER_CTX_free(c);
    c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL);
    EVP_EncryptUpdate(c, mask, &outl, out + pn_off + 4, 16);
    EVP_CIPHER_CTX_free(c);
    out[0] ^= mask[0] & 0x0f;
    for (i = 0; i < 4; i++)
        out[pn_off + i] ^= mask[1 + i];
    return h + plen + 16;
}

/* Appends a CRYPTO frame (2-byte varints) for CH bytes [off, off+n) of src. */
static size_t crypto_frame(uint8_t *p, uint32_t off, const uint8_t *src, size_t n)
{
    p[0] = 0x06;
    p[1] = (uint8_t)(0x40 | (off >> 8));
    p[2] = (uint8_t)off;
    p[3] = (uint8_t)(0x40 | (n >> 8));
    p[4] = (uint8_t)n;
    memcpy(p + 5, src + off, n);
    return 5 + n;
}

/* One Initial carrying CH[off, off+n), padded with PADDING to 200+ bytes. */
static size_t initial_part(uint32_t version, const uint8_t *dcid, uint32_t pn, uint32_t off,
                           size_t n, uint8_t *out)
{
    uint8_t payload[1400];
    size_t p = crypto_frame(payload, off, CH, n);

    memset(payload + p, 0, 100);      /* PADDING: the sample needs bytes */
    return protect(version, dcid, 8, pn, payload, p + 100, out);
}

/* ---- the engine side ---------------------------------------------------- */
typedef struct got {
    int n_quic;          /* PC_EV_QUIC_SNI events */
    int n_other;
    char name[256];
    char ja4[64];
    uint32_t flags;
    uint64_t malformed;
} got;

static pc_meta meta(int from_client)
{
    pc_meta m;

    memset(&m, 0, sizeof m);
    m.frame = 1;
    m.flow_id = 7;
    m.ipver = 4;
    m.proto = 17;
    m.sport = 50000;
    m.dport = 443;
    m.src[0] = 10; m.src[3] = 2;
    m.dst[0] = 192; m.dst[1] = 0; m.dst[2] = 2; m.dst[3] = 1;
    m.from_client = (uint8_t)from_client;
    return m;
}

/* Reads every queued event of r into *g. */
static void drain(pc_reader *r, got *g)
{
    pc_event ev[16];
    uint8_t sb[8192];
    pc_stats st;
    int n, i;

    memset(g, 0, sizeof *g);
    pc_reader_finish(r);
    while ((n = pc_reader_next(r, ev, 16, sb, sizeof sb)) > 0) {
        for (i = 0; i < n; i++) {
            if (ev[i].kind != PC_EV_QUIC_SNI) {
                g->n_other++;
                continue;
            }
            g->n_quic++;
            g->flags = ev[i].flags;
            snprintf(g->name, sizeof g->name, "%.*s", (int)ev[i].name.len, (const char *)sb + ev[i].name.off);
            snprintf(g->ja4, sizeof g->ja4, "%.*s", (int)ev[i].s1.len, (const char *)sb + ev[i].s1.off);
        }
    }
    pc_reader_stats(r, &st);
    g->malformed = st.malformed;
}

/*
 * Runs datagrams (each of lens[i] bytes, from the client unless the bit i of
 * server_mask is set) through one flow of a fresh feed reader, ends the flow
 * and collects what came out.
 */
static void run_flow(const uint8_t *const *dg, const size_t *lens, int n, unsigned server_mask,
                     int truncated, got *g)
{
    pc_reader *r = NULL;
    pc_ctx *cx;
    pc_udp_app *app = NULL;
    pc_meta m;
    int i;

    memset(g, 0, sizeof *g);
    if (pc_reader_open_feed(&r, NULL) != PC_OK || (cx = pc_reader_ctx(r)) == NULL) {
        fprintf(stderr, "no feed reader\n");
        failed++;
        pc_reader_free(r);
        return;
    }
    for (i = 0; i < n; i++) {
        m = meta(!(server_mask & (1u << i)));
        m.frame = (uint64_t)i + 1;
        m.truncated = (uint8_t)truncated;
        pc_quic_datagram(cx, &m, &app, dg[i], lens[i]);
    }
    m = meta(1);
    pc_quic_end(cx, &m, &app);
    CHECK(app == NULL);
    drain(r, g);
    pc_reader_free(r);
}

static void run1(const uint8_t *d, size_t len, got *g)
{
    const uint8_t *dg[1] = { d };
    size_t lens[1] = { len };

    run_flow(dg, lens, 1, 0, 0, g);
}

/* ---- tests -------------------------------------------------------------- */

/* The client keys derived from the example DCID are those of RFC 9001 A.1 and RFC 9369 A.1. */
static void test_rfc_keys(void)
{
    uint8_t key[16], iv[12], hp[16], want[16];

    CHECK(pc_quic_client_keys(QV1, DCID, 8, key, iv, hp) == 0);
    unhex("1f369613dd76d5467730efcbe3b1a22d", want, 16);
    CHECK(memcmp(key, want, 16) == 0);
    unhex("fa044b2f42a3fd3b46fb255c", want, 12);
    CHECK(memcmp(iv, want, 12) == 0);
    unhex("9f50449e04a0e810283a1e9933adedd2", want, 16);
    CHECK(memcmp(hp, want, 16) == 0);

    CHECK(pc_quic_client_keys(QV2, DCID, 8, key, iv, hp) == 0);
    unhex("8b1a0bc121284290a29e0971b5cd045d", want, 16);
    CHECK(memcmp(key, want, 16) == 0);
    unhex("91f73e2351d8fa91660e909f", want, 12);
    CHECK(memcmp(iv, want, 12) == 0);
    unhex("45b95e15235d6f45a6b19cbcb0294ba9", want, 16);
    CHECK(memcmp(hp, want, 16) == 0);

    CHECK(pc_quic_client_keys(0x51303433u, DCID, 8, key, iv, hp) < 0);   /* Q043: not ours */
}

/* Opening the RFC's protected packets gives packet number 2 and the RFC's unprotected payload. */
static void test_rfc_open(void)
{
    static const char *pkts[2];
    static const uint32_t vers[2] = { QV1, QV2 };
    uint8_t pkt[1300], out[1300], want[1300];
    size_t n, outlen = 0, wl;
    uint64_t pn = 0;
    int i;

    pkts[0] = RFC9001_PACKET;
    pkts[1] = RFC9369_PACKET;
    wl = unhex(RFC_CRYPTO_FRAME, want, sizeof want);
    memset(want + wl, 0, 1162 - wl);             /* PADDING up to the 1162-byte payload */
    for (i = 0; i < 2; i++) {
        n = unhex(pkts[i], pkt, sizeof pkt);
        CHECK(n == 1200);
        /* header: first, version, 08 dcid, 00 scid, 00 token, 449e length: pn at 18 */
        CHECK(pc_quic_open_packet(vers[i], pkt, 18, n, DCID, 8, -1, out, &outlen, &pn) == PC_OK);
        CHECK(pn == 2);
        CHECK(outlen == 1162);
        CHECK(outlen == 1162 && memcmp(out, want, 1162) == 0);
    }
}

/* The RFC v1 and v2 packets each yield one QUIC SNI event "example.com" with a 'q' JA4. */
static void test_rfc_event(void)
{
    uint8_t pkt[1300];
    size_t n;
    got g;

    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.ja4[0] == 'q');
    CHECK(!(g.flags & PC_EVF_PARTIAL));
    CHECK(g.malformed == 0);

    n = unhex(RFC9369_PACKET, pkt, sizeof pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.malformed == 0);
}

/*
 * The reader-wide budget bounds CRYPTO buffers over all flows: with the
 * budget spent, a flow keeps no hello (and nothing breaks); given back, the
 * same packet is reported again.
 */
static void test_budget(void)
{
    uint8_t pkt[1300];
    size_t n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    pc_reader *r = NULL;
    pc_ctx *cx;
    pc_udp_app *app = NULL;
    pc_meta m = meta(1);
    pc_event ev[8];
    uint8_t sb[4096];
    int k, quic = 0;
    size_t big = 0;

    if (pc_reader_open_feed(&r, NULL) != PC_OK || (cx = pc_reader_ctx(r)) == NULL) {
        failed++;
        pc_reader_free(r);
        return;
    }
    /* Spend the whole budget (it is a few MiB; take in halving steps). */
    for (size_t step = (size_t)1 << 30; step > 0; step /= 2)
        if (pc_budget_take(cx, step) == 0)
            big += step;
    CHECK(big > 0 && pc_budget_take(cx, 1) < 0);
    pc_quic_datagram(cx, &m, &app, pkt, n);
    pc_quic_end(cx, &m, &app);
    pc_budget_give(cx, big);
    pc_quic_datagram(cx, &m, &app, pkt, n);
    pc_quic_end(cx, &m, &app);
    CHECK(app == NULL);
    pc_reader_finish(r);
    while ((k = pc_reader_next(r, ev, 8, sb, sizeof sb)) > 0)
        for (int i = 0; i < k; i++)
            quic += ev[i].kind == PC_EV_QUIC_SNI;
    CHECK(quic == 1);
    CHECK(pc_budget_take(cx, big) == 0);   /* every byte came back when the flow ended */
    pc_reader_free(r);
}

/* A ClientHello split over three Initials, delivered last-first-middle, is reported once, whole. */
static void test_out_of_order(void)
{
    static uint8_t a[1500], b[1500], c[1500];
    const uint8_t *dg[3];
    size_t lens[3];
    got g;

    lens[0] = initial_part(QV1, DCID, 2, 160, CH_LEN - 160, c);   /* tail */
    lens[1] = initial_part(QV1, DCID, 0, 0, 60, a);                /* head */
    lens[2] = initial_part(QV1, DCID, 1, 60, 100, b);              /* middle */
    dg[0] = c; dg[1] = a; dg[2] = b;
    run_flow(dg, lens, 3, 0, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(!(g.flags & PC_EVF_PARTIAL));
    CHECK(g.malformed == 0);

    /* Without the middle part the flow ends with a partial ClientHello (head only). */
    run_flow(dg, lens, 2, 0, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(g.flags & PC_EVF_PARTIAL);

    /* Without the head nothing can be parsed: no event. */
    dg[1] = b; lens[1] = lens[2];
    run_flow(dg, lens, 2, 0, 0, &g);
    CHECK(g.n_quic == 0);
}

/* Several CRYPTO frames in one packet, out of order, after PING/ACK/ACK_ECN frames, still reassemble. */
static void test_frames_in_one_packet(void)
{
    uint8_t payload[1400], pkt[1500];
    size_t p = 0, n;
    got g;
    /* PING; ACK (largest 5, delay 0, 2 more ranges); ACK_ECN (no more ranges, 3 ECN counts) */
    static const uint8_t pre[] = { 0x01, 0x02, 0x05, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
                                   0x03, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03 };

    memcpy(payload, pre, sizeof pre);
    p = sizeof pre;
    p += crypto_frame(payload + p, 200, CH, CH_LEN - 200);
    p += crypto_frame(payload + p, 0, CH, 100);
    p += crypto_frame(payload + p, 100, CH, 100);
    memset(payload + p, 0, 50);
    n = protect(QV1, DCID, 8, 0, payload, p + 50, pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.malformed == 0);

    /* An unknown frame type (HANDSHAKE_DONE, not allowed in Initials) stops the walk: nothing after it counts. */
    payload[0] = 0x1e;
    n = protect(QV1, DCID, 8, 0, payload, p + 50, pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 0);
}

/* Overlapping CRYPTO data keeps the bytes that came first. */
static void test_overlap_first_wins(void)
{
    static uint8_t a[1500], b[1500], c[1500];
    uint8_t bad[512];
    uint8_t payload[600];
    const uint8_t *dg[3];
    size_t lens[3], p;
    got g;

    memcpy(bad, CH, CH_LEN);
    memset(bad + 50, 'X', 50);          /* would corrupt the SNI (bytes 53..73) if it won */
    lens[0] = initial_part(QV1, DCID, 0, 0, 100, a);
    p = crypto_frame(payload, 50, bad, 150);   /* [50, 200) overlapping [50, 100) */
    memset(payload + p, 0, 60);
    lens[1] = protect(QV1, DCID, 8, 1, payload, p + 60, b);
    lens[2] = initial_part(QV1, DCID, 2, 200, CH_LEN - 200, c);
    dg[0] = a; dg[1] = b; dg[2] = c;
    run_flow(dg, lens, 3, 0, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
}

/* A corrupted tag (or ciphertext byte) is ignored: no event, counted as malformed. */
static void test_bad_tag(void)
{
    uint8_t pkt[1300];
    size_t n;
    got g;

    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    pkt[n - 1] ^= 0x01;
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 1);

    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    pkt[600] ^= 0x80;
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 1);

    /* A wrong DCID byte gives other keys: the tag fails too. */
    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    pkt[7] ^= 0x01;
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 1);
}

/* Every truncation of the RFC packet is rejected without an event; cut captures are not malformed. */
static void test_truncated(void)
{
    uint8_t pkt[1300];
    size_t n, cut;
    int events = 0, wrong_count = 0, counted_truncated = 0;
    got g;

    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    for (cut = 0; cut < n; cut += (cut < 64 ? 1 : 37)) {
        const uint8_t *dg[1] = { pkt };
        size_t lens[1] = { cut };

        run_flow(dg, lens, 1, 0, 0, &g);
        events += g.n_quic;
        /* 0..4 bytes cannot show a version, so they are not known to be QUIC:
         * skipped, not malformed; from 5 bytes on the version says v1. */
        if (cut < 5 ? g.malformed != 0 : g.malformed != 1)
            wrong_count++;
        run_flow(dg, lens, 1, 0, 1, &g);
        counted_truncated += (int)g.malformed;
    }
    CHECK(events == 0);
    CHECK(wrong_count == 0);
    CHECK(counted_truncated == 0);
}

/* Coalesced packets: Initial, Handshake, Initial, zero padding in one datagram; Length splits them. */
static void test_coalesced(void)
{
    static uint8_t dg[4000], hsp[64], i1[1500], i2[1500];
    const uint8_t *dgs[2];
    size_t lens[2], n = 0, l1, l2;
    got g;

    l1 = initial_part(QV1, DCID, 0, 0, 120, i1);
    l2 = initial_part(QV1, DCID, 1, 120, CH_LEN - 120, i2);
    /* A Handshake packet (type 2) of another key level: skipped by its Length. */
    hsp[0] = 0xe0;
    hsp[1] = 0; hsp[2] = 0; hsp[3] = 0; hsp[4] = 1;
    hsp[5] = 0;                        /* DCID length 0 */
    hsp[6] = 0;                        /* SCID length 0 */
    hsp[7] = 0x40; hsp[8] = 40;        /* Length 40 */
    memset(hsp + 9, 0xaa, 40);

    memcpy(dg + n, i1, l1); n += l1;
    memcpy(dg + n, hsp, 49); n += 49;
    memcpy(dg + n, i2, l2); n += l2;
    memset(dg + n, 0, 30); n += 30;    /* zero padding after the packets */
    run1(dg, n, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.malformed == 0);

    /* The Handshake packet first, then the second part, then the first. */
    n = 0;
    memcpy(dg + n, hsp, 49); n += 49;
    memcpy(dg + n, i2, l2); n += l2;
    memcpy(dg + n, i1, l1); n += l1;
    run1(dg, n, &g);
    CHECK(g.n_quic == 1);
    CHECK(g.malformed == 0);

    /* A Length that runs past the datagram is malformed; the packet before it still counts. */
    n = 0;
    memcpy(dg + n, i1, l1); n += l1;
    memcpy(dg + n, hsp, 49); n += 49;
    dg[l1 + 8] = 200;
    dgs[0] = dg; lens[0] = n;
    dgs[1] = i2; lens[1] = l2;
    run_flow(dgs, lens, 2, 0, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.malformed == 1);
}

/* After a Retry the client's next Initial uses a new DCID; its keys come from that packet. */
static void test_retry_new_dcid(void)
{
    static uint8_t a[1500], retry[64], b[1500], b2[1500];
    uint8_t dcid2[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint8_t *dg[4];
    size_t lens[4];
    got g;

    lens[0] = initial_part(QV1, DCID, 0, 0, 100, a);           /* part of the hello, old DCID */
    retry[0] = 0xf0;                                            /* Retry (type 3) from the server */
    retry[1] = 0; retry[2] = 0; retry[3] = 0; retry[4] = 1;
    retry[5] = 8; memcpy(retry + 6, dcid2, 8);
    retry[14] = 0;
    memset(retry + 15, 0x55, 40);
    lens[1] = 55;
    lens[2] = initial_part(QV1, dcid2, 1, 0, CH_LEN, b);        /* whole hello, new DCID */
    lens[3] = initial_part(QV1, dcid2, 2, 0, CH_LEN, b2);       /* a retransmission */
    dg[0] = a; dg[1] = retry; dg[2] = b; dg[3] = b2;
    run_flow(dg, lens, 4, 1u << 1, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
    CHECK(g.malformed == 0);
}

/*
 * After Version Negotiation the client starts a new hello in another
 * version: bytes kept from the old version's unfinished hello are dropped,
 * not mixed into the new one.
 */
static void test_version_change_resets(void)
{
    static uint8_t a[1500], b[1500];
    uint8_t other[512], payload[300];
    const uint8_t *dg[2];
    size_t lens[2], p;
    got g;

    memcpy(other, CH, CH_LEN);
    memcpy(other + 58, "exbmple.com", 11);   /* the SNI (hello offsets 58..68) differs */
    p = crypto_frame(payload, 0, other, 100);
    memset(payload + p, 0, 40);
    lens[0] = protect(QV2, DCID, 8, 0, payload, p + 40, a);   /* v2: first 100 bytes only */
    lens[1] = initial_part(QV1, DCID, 1, 0, CH_LEN, b);       /* then v1: the whole hello */
    dg[0] = a; dg[1] = b;
    run_flow(dg, lens, 2, 0, 0, &g);
    CHECK(g.n_quic == 1);
    CHECK(strcmp(g.name, "example.com") == 0);
}

/* Server Initials, Version Negotiation, gQUIC and unknown versions are skipped quietly. */
static void test_skipped(void)
{
    uint8_t pkt[1300];
    static const uint8_t vn[] = { 0x80, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 1 };
    static const uint8_t q046[] = { 0xc3, 'Q', '0', '4', '6', 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1 };
    const uint8_t *dg[1];
    size_t lens[1], n;
    got g;

    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    dg[0] = pkt; lens[0] = n;
    run_flow(dg, lens, 1, 1u, 0, &g);          /* from the server */
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 0);

    run1(vn, sizeof vn, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);
    run1(q046, sizeof q046, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);

    /* A v2 packet with v1's Initial type bits is a v2 Retry: not decrypted. */
    n = unhex(RFC9369_PACKET, pkt, sizeof pkt);
    pkt[0] = (uint8_t)((pkt[0] & 0xcf) | 0x00);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);

    /* A Connection ID longer than 20 bytes is malformed for v1. */
    n = unhex(RFC9001_PACKET, pkt, sizeof pkt);
    pkt[5] = 21;
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 1);
}

/* A CRYPTO stream that is not a ClientHello, or a whole hello tls.c cannot parse, is malformed: no event. */
static void test_broken_hello(void)
{
    uint8_t payload[300], pkt[400], hello[20];
    size_t p, n;
    got g;

    memset(hello, 0, sizeof hello);
    hello[0] = 2;                          /* ServerHello type from a "client" */
    hello[3] = 16;
    p = crypto_frame(payload, 0, hello, 20);
    memset(payload + p, 0, 40);
    n = protect(QV1, DCID, 8, 0, payload, p + 40, pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 1);

    hello[0] = 1;                          /* ClientHello of 3 bytes: ends before its cipher suites */
    hello[3] = 3;
    p = crypto_frame(payload, 0, hello, 7);
    memset(payload + p, 0, 40);
    n = protect(QV1, DCID, 8, 0, payload, p + 40, pkt);
    run1(pkt, n, &g);
    CHECK(g.n_quic == 0);
    CHECK(g.malformed == 1);
}

/* A ClientHello longer than the 16 KB bound is reported cut at the bound, with the partial flag. */
static void test_bound(void)
{
    static uint8_t big[20000], payload[1400], pkt[1500];
    size_t off, total, ext_len;
    pc_reader *r = NULL;
    pc_ctx *cx;
    pc_udp_app *app = NULL;
    pc_meta m = meta(1);
    uint32_t pn = 0;
    got g;

    /* The RFC hello with a 19000-byte padding extension (type 21) appended. */
    memcpy(big, CH, CH_LEN);
    ext_len = 19000;
    big[CH_LEN] = 0; big[CH_LEN + 1] = 21;
    big[CH_LEN + 2] = (uint8_t)(ext_len >> 8); big[CH_LEN + 3] = (uint8_t)ext_len;
    memset(big + CH_LEN + 4, 0, ext_len);
    total = CH_LEN + 4 + ext_len;
    big[1] = (uint8_t)((total - 4) >> 16); big[2] = (uint8_t)((total - 4) >> 8); big[3] = (uint8_t)(total - 4);
    /* extensions length at offset 4+2+32+1+10+2 = 51 (RFC hello: sid empty, 4 suites... ) */
    {
        size_t el = 0, p = 4 + 2 + 32;
        p += 1 + big[p];
        p += 2 + pc_rd16(big + p);
        p += 1 + big[p];
        el = pc_rd16(big + p) + 4 + ext_len;
        big[p] = (uint8_t)(el >> 8); big[p + 1] = (uint8_t)el;
    }
    if (pc_reader_open_feed(&r, NULL) != PC_OK || (cx = pc_reader_ctx(r)) == NULL) {
        failed++;
        pc_reader_free(r);
        return;
    }
    for (off = 0; off < total; off += 1000) {
        size_t n = total - off < 1000 ? total - off : 1000, p, len;

        payload[0] = 0x06;
        /* 4-byte varints: offsets above 16383 do not fit in 2 bytes */
        payload[1] = (uint8_t)(0x80 | (off >> 24)); payload[2] = (uint8_t)(off >> 16);
        payload[3] = (uint8_t)(off >> 8); payload[4] = (uint8_t)off;
        payload[5] = (uint8_t)(0x40 | (n >> 8)); payload[6] = (uint8_t)n;
        memcpy(payload + 7, big + off, n);
        p = 7 + n;
        memset(payload + p, 0, 40);
        len = protect(QV1, DCID, 8, pn++, payload, p + 40, pkt);
        pc_quic_datagram(cx, &m, &app, pkt, len);
    }
    pc_quic_end(cx, &m, &app);
    CHECK(app == NULL);
    drain(r, &g);
    pc_reader_free(r);
    CHECK(g.n_quic == 1);
    CHECK(g.flags & PC_EVF_PARTIAL);
    CHECK(strcmp(g.name, "example.com") == 0);
}

/* Allocation failures at any point lose the event at worst: no crash, no leak, the flow state still freed. */
static void test_alloc_failures(void)
{
    static uint8_t a[1500], b[1500];
    const uint8_t *dg[2];
    size_t lens[2];
    long k;
    int crashes_none = 1;
    got g;

    lens[0] = initial_part(QV1, DCID, 0, 0, 100, a);
    lens[1] = initial_part(QV1, DCID, 1, 100, CH_LEN - 100, b);
    dg[0] = a; dg[1] = b;
    for (k = 0; k < 12; k++) {
        pc_reader *r = NULL;
        pc_ctx *cx;
        pc_udp_app *app = NULL;
        pc_meta m = meta(1);
        int i;

        if (pc_reader_open_feed(&r, NULL) != PC_OK || (cx = pc_reader_ctx(r)) == NULL) {
            crashes_none = 0;
            pc_reader_free(r);
            continue;
        }
        pc_alloc_fail_after(k);
        for (i = 0; i < 2; i++)
            pc_quic_datagram(cx, &m, &app, dg[i], lens[i]);
        pc_quic_end(cx, &m, &app);
        pc_alloc_fail_after(-1);
        if (app != NULL)
            crashes_none = 0;
        drain(r, &g);
        pc_reader_free(r);
    }
    CHECK(crashes_none);
}

/*
 * Runs one seed file of native/fuzz/corpus/fuzz_quic/ (records of
 * [flags][len16][UDP payload], real datagrams from the shared captures)
 * through one flow; returns 0 when the file could not be read.
 */
static int run_seed(const char *name, got *g)
{
    static uint8_t buf[16384], prot[8][1600];
    const uint8_t *dg[8];
    size_t lens[8], n, pos = 0;
    unsigned server = 0;
    int k = 0;
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "native/fuzz/corpus/fuzz_quic/%s", name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot read %s (run from the repository root)\n", path);
        return 0;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n - pos >= 3 && k < 8) {
        size_t len = pc_rd16(buf + pos + 1);

        if (len > n - pos - 3)
            break;
        if (buf[pos] & 1)
            server |= 1u << k;
        if (buf[pos] & 0x80) {
            /* plaintext frames: protected here as the harness does (packet number = index + 1) */
            uint8_t plain[1500];
            size_t pl = len < sizeof plain ? len : sizeof plain;

            memcpy(plain, buf + pos + 3, pl);
            lens[k] = protect((buf[pos] & 0x40) ? QV2 : QV1, DCID, 8, (uint32_t)k + 1, plain, pl, prot[k]);
            dg[k] = prot[k];
        } else {
            dg[k] = buf + pos + 3;
            lens[k] = len;
        }
        k++;
        pos += 3 + len;
    }
    run_flow(dg, lens, k, server, 0, g);
    return 1;
}

/*
 * Real Initials of each supported version (and the harness's own plaintext
 * seeds) give the SNI tshark shows for
 * the same frame (tshark -Y "quic && tls.handshake.type==1" -e
 * tls.handshake.extensions_server_name on the source capture).
 */
static void test_real_initials(void)
{
    static const struct { const char *seed, *sni; } cases[] = {
        { "v1_arkime_quicietf", "ssl.gstatic.com" },
        { "v2_mercury_quic_v2", "localhost" },
        { "d29_mercury_crypto_f1", "ajax.googleapis.com" },       /* draft-29 */
        { "mvfst_faceb002_f15", "graph.facebook.com" },           /* mvfst: draft-23 salt */
        { "t051_f270", "hangouts.google.com" },                   /* Google T051 */
        { "retry_tcpdump", "localhost" },                         /* Initial, Retry, Initial (new DCID) */
        { "fragmented_mercury", "update.googleapis.com" },        /* hello over several Initials */
        /* the harness's plaintext records: the RFC hello split, ACK/CONNECTION_CLOSE around it */
        { "plain_v1_split_ack", "example.com" },
        { "plain_v2_split_close", "example.com" },
        /* tshark shows no SNI here: it keys the connection on the first,
         * unknown-version Initial and then fails the v1 one; its AEAD tag
         * verifies for us, so the name is real. */
        { "vn_tcpdump", "localhost" },
        /* built by appliance/sim/packets.py (quic_initial(..., version=V),
         * DCID 00..07): a greased version keyed with v1's salt, and draft 23
         * with its own salt (tshark 4.0 shows d23.quic.example for the latter) */
        { "grease_sim", "grease.quic.example" },
        { "d23_sim", "d23.quic.example" },
    };
    size_t i;
    got g;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!run_seed(cases[i].seed, &g)) {
            failed++;
            continue;
        }
        if (g.n_quic != 1 || strcmp(g.name, cases[i].sni) != 0)
            fprintf(stderr, "seed %s: %d events, name '%s'\n", cases[i].seed, g.n_quic, g.name);
        CHECK(g.n_quic == 1);
        CHECK(strcmp(g.name, cases[i].sni) == 0);
        CHECK(g.malformed == 0);
    }
}

/* Reads a corpus seed's first datagram (flag byte, 2-byte length, bytes) into out. */
static size_t seed_datagram(const char *name, uint8_t *out, size_t cap)
{
    uint8_t buf[1600];
    char path[256];
    size_t n, len;
    FILE *f;

    snprintf(path, sizeof path, "native/fuzz/corpus/fuzz_quic/%s", name);
    f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n < 3)
        return 0;
    len = pc_rd16(buf + 1);
    if (len > n - 3 || len > cap)
        return 0;
    memcpy(out, buf + 3, len);
    return len;
}

/*
 * An unknown version is read only when v1's keys open it: a damaged tag,
 * a server's packet, a packet without the fixed bit or a short datagram
 * give nothing and count nothing; the same damage under v1 is malformed.
 */
static void test_unknown_version_quiet(void)
{
    uint8_t pkt[1600], bad[1600];
    const uint8_t *dg[1];
    size_t lens[1], n = seed_datagram("grease_sim", pkt, sizeof pkt);
    got g;

    CHECK(n >= 1200);
    if (n < 1200)
        return;
    run1(pkt, n, &g);
    CHECK(g.n_quic == 1 && g.malformed == 0);

    memcpy(bad, pkt, n);
    bad[n - 1] ^= 0x01;                    /* the tag: v1's keys do not open it */
    run1(bad, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);

    memcpy(bad, pkt, n);
    bad[1] = 0x3a;                         /* another unknown version: AAD changes, tag fails */
    run1(bad, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);

    dg[0] = pkt; lens[0] = n;
    run_flow(dg, lens, 1, 1u, 0, &g);      /* from the server */
    CHECK(g.n_quic == 0 && g.malformed == 0);

    memcpy(bad, pkt, n);
    bad[0] &= (uint8_t)~0x40;              /* fixed bit clear, as in RTP */
    run1(bad, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 0);

    run1(pkt, 1199, &g);                   /* not padded to 1200: not a first Initial */
    CHECK(g.n_quic == 0 && g.malformed == 0);

    /* The same damaged tag under v1 itself is the sender's fault. */
    memcpy(bad, pkt, n);
    bad[1] = 0; bad[2] = 0; bad[3] = 0; bad[4] = 1;
    run1(bad, n, &g);
    CHECK(g.n_quic == 0 && g.malformed == 1);
}

int main(void)
{
    load_vectors();
    test_rfc_keys();
    test_rfc_open();
    test_rfc_event();
    test_budget();
    test_out_of_order();
    test_frames_in_one_packet();
    test_overlap_first_wins();
    test_bad_tag();
    test_truncated();
    test_coalesced();
    test_retry_new_dcid();
    test_version_change_resets();
    test_skipped();
    test_broken_hello();
    test_bound();
    test_alloc_failures();
    test_real_initials();
    test_unknown_version_quiet();
    printf("test_quic: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
