/*
 * quic.c - the ClientHello inside QUIC Initial packets.
 *
 * A QUIC client's first flight is "protected" with keys anyone can derive:
 * they come from a public per-version salt and the Destination Connection ID
 * the client chose (RFC 9001 section 5.2). So a passive observer can remove
 * the header protection, open the AEAD, read the CRYPTO frames and rebuild
 * the TLS ClientHello, which tls.c then turns into SNI/ALPN/JA4.
 *
 * Scope: client Initials of QUIC v1 (RFC 9001), v2 (RFC 9369), drafts 23-32,
 * Facebook's mvfst 0xfaceb002 and Google's T051 (the Google version that
 * already uses the IETF packet format and TLS; tshark decodes it, so the
 * box does too). A version this file does not know (a greased 0x?a?a?a?a
 * that a client sends to force Version Negotiation, or a newer one) is
 * tried with v1's salt and layout, as Wireshark does: the AEAD tag verifies
 * only if those were the right keys, so what is reported is never garbage,
 * and a failure is quiet (it was not ours to read). Server Initials carry
 * only the ServerHello and are skipped; gQUIC with its own crypto (Q043,
 * Q046, Q050, T050...) is skipped quietly. Every packet's keys come from that packet's own DCID, so
 * the second Initial after a Retry (new DCID) decrypts too.
 *
 * State per flow: nothing until a client Initial authenticates, then a small
 * struct, plus a CRYPTO stream buffer that grows in 1 KB steps up to
 * PC_QUIC_MAX_CRYPTO and is freed as soon as the ClientHello is reported.
 * The ClientHello is reported once per flow: a client repeats the same
 * ClientHello after a Retry, and after Version Negotiation it starts a new
 * one (the buffer is reset when the version changes before it completed).
 *
 * Why one file of ~600 lines: key derivation, header protection, the AEAD,
 * the frame walk and the CRYPTO reassembly are one pipeline over one
 * packet, each step feeding the next with state no other file needs; split,
 * they would only pass that state through private headers.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "parsers.h"

/* Bound on the CRYPTO stream kept per flow: real ClientHellos are 0.3-3 KB
 * (post-quantum key shares push Chrome's to ~1.8 KB); 16 KB is generous. */
#define PC_QUIC_MAX_CRYPTO 16384u
#define PC_QUIC_GROW       1024u

#define QV1      0x00000001u
#define QV2      0x6b3343cfu
#define QT051    0x54303531u
#define QMVFST2  0xfaceb002u

/* Largest Connection ID a long header may carry in v1/v2 and the drafts. */
#define QUIC_MAX_CID 20

struct pc_udp_app {
    pc_ctx  *cx;           /* the reader whose budget pays for buf and have */
    int64_t  largest_pn;   /* largest client Initial packet number opened, -1 = none */
    uint32_t version;      /* version of the CRYPTO bytes held */
    uint32_t cap;          /* bytes allocated in buf (and cap/8 in have) */
    uint32_t contig;       /* bytes from offset 0 without a hole */
    uint8_t  done;         /* ClientHello reported, or given up on */
    uint8_t *buf;          /* CRYPTO stream bytes [0, cap) */
    uint8_t *have;         /* one bit per byte of buf: received */
};

/* What one version needs: its salt, label style and Initial type bits. */
typedef struct qver {
    const uint8_t *salt;
    int v2;                /* 1: "quicv2 ..." labels and Initial = type 0b01 */
    int crypto_type;       /* frame type of CRYPTO: 0x06, but 0x08 in Google's T051 */
} qver;

static const uint8_t salt_v1[20] = {
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a };
static const uint8_t salt_v2[20] = {
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
    0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9 };
static const uint8_t salt_d29[20] = {   /* drafts 29-32 */
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
    0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99 };
static const uint8_t salt_d23[20] = {   /* drafts 23-28, and mvfst faceb002 (draft-27 based) */
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7,
    0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02 };
static const uint8_t salt_t51[20] = {   /* Google T051 */
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50,
    0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc, 0xda, 0x6e, 0x03, 0x3d };

/* What quic_version() says of a version. */
#define QVER_NONE     0   /* not decrypted: Version Negotiation, gQUIC */
#define QVER_KNOWN    1
#define QVER_FALLBACK 2   /* unknown: tried as v1, failures are quiet */

/* Fills *q for a version this file decrypts; returns one of QVER_*. */
static int quic_version(uint32_t v, qver *q)
{
    q->v2 = 0;
    q->crypto_type = 0x06;
    q->salt = salt_v1;
    if (v == QV1)
        q->salt = salt_v1;
    else if (v == QV2) {
        q->salt = salt_v2;
        q->v2 = 1;
    } else if (v >= 0xff00001du && v <= 0xff000020u)
        q->salt = salt_d29;
    else if ((v >= 0xff000017u && v <= 0xff00001cu) || v == QMVFST2)
        q->salt = salt_d23;   /* drafts 23-28 */
    else if (v == QT051) {
        /* Seen in mercury__quic-crypto-packets: T051 carries the ClientHello
         * in frame type 0x08 laid out like CRYPTO (offset, length, data). */
        q->salt = salt_t51;
        q->crypto_type = 0x08;
    } else if (v == 0 || (v >> 24) == 'Q' || (v >> 24) == 'T')
        /* Version Negotiation; Google's Qnnn/Tnnn have their own salts or crypto. */
        return QVER_NONE;
    else
        return QVER_FALLBACK;
    return QVER_KNOWN;
}

/* RFC 9000 section 16 variable-length integer at p[*pos]; -1 if it runs past n. */
static int rd_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *out)
{
    size_t i, l;
    uint64_t v;

    if (*pos >= n)
        return -1;
    l = (size_t)1 << (p[*pos] >> 6);
    if (n - *pos < l)
        return -1;
    v = p[*pos] & 0x3f;
    for (i = 1; i < l; i++)
        v = (v << 8) | p[*pos + i];
    *pos += l;
    *out = v;
    return 0;
}

/*
 * HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context, for
 * outputs of at most 32 bytes, on an HKDF context already fetched.
 */
static int expand_label(EVP_KDF_CTX *kctx, const uint8_t *secret, const char *label,
                        uint8_t *out, size_t outlen)
{
    uint8_t info[2 + 1 + 255 + 1];
    size_t ll = strlen(label), n = 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[5];

    info[n++] = (uint8_t)(outlen >> 8);
    info[n++] = (uint8_t)outlen;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;   /* empty context */
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[4] = OSSL_PARAM_construct_end();
    return EVP_KDF_derive(kctx, out, outlen, params) == 1 ? 0 : -1;
}

/*
 * Derives the client Initial packet protection keys of a version from the
 * client's Destination Connection ID (RFC 9001 5.2, RFC 9369 3.3): AEAD key
 * and IV, header protection key. Exposed (not in a header) for the C unit
 * tests, which check it against the RFC examples. An unknown version gets
 * v1's keys (see the file comment). Returns 0, or -1 for a version without
 * IETF Initial keys (Version Negotiation, gQUIC) or a libcrypto failure.
 */
int pc_quic_client_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                        uint8_t key[16], uint8_t iv[12], uint8_t hp[16])
{
    qver q;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    uint8_t initial[32], client[32];
    int mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY, rc = -1;
    OSSL_PARAM params[5];

    if (quic_version(version, &q) == QVER_NONE)
        goto fail;
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL)
        goto fail;
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        goto fail;
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    /* An empty DCID is legal; OpenSSL wants a non-NULL key pointer. */
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  (void *)(dcid_len ? dcid : q.salt), dcid_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)q.salt, 20);
    params[4] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, initial, sizeof initial, params) != 1)
        goto fail;
    if (expand_label(kctx, initial, "client in", client, sizeof client) < 0
        || expand_label(kctx, client, q.v2 ? "quicv2 key" : "quic key", key, 16) < 0
        || expand_label(kctx, client, q.v2 ? "quicv2 iv" : "quic iv", iv, 12) < 0
        || expand_label(kctx, client, q.v2 ? "quicv2 hp" : "quic hp", hp, 16) < 0)
        goto fail;
    rc = 0;
fail:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* AES-128-ECB of one block: the header protection mask. Returns 0 or -1. */
static int hp_mask(const uint8_t hp[16], const uint8_t sample[16], uint8_t mask[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, rc = -1;

    if (c == NULL)
        goto fail;
    if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) != 1)
        goto fail;
    EVP_CIPHER_CTX_set_padding(c, 0);
    if (EVP_EncryptUpdate(c, mask, &outl, sample, 16) != 1 || outl != 16)
        goto fail;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/*
 * AEAD_AES_128_GCM open of one packet: the header is authenticated as
 * associated data in three pieces (its unmasked first byte, the bytes up to
 * the packet number as sent, the unmasked packet number). Returns 0 when
 * the tag verifies, -1 otherwise.
 */
static int gcm_open(const uint8_t key[16], const uint8_t nonce[12],
                    uint8_t first, const uint8_t *hdr_mid, size_t mid_len,
                    const uint8_t *pn, size_t pn_len,
                    const uint8_t *ct, size_t ct_len, const uint8_t tag[16], uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, rc = -1;

    if (c == NULL)
        goto fail;
    if (EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1
        || EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) != 1)
        goto fail;
    if (EVP_DecryptUpdate(c, NULL, &outl, &first, 1) != 1
        || (mid_len && EVP_DecryptUpdate(c, NULL, &outl, hdr_mid, (int)mid_len) != 1)
        || EVP_DecryptUpdate(c, NULL, &outl, pn, (int)pn_len) != 1)
        goto fail;
    if (ct_len && EVP_DecryptUpdate(c, out, &outl, ct, (int)ct_len) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(c, out + (ct_len ? (size_t)outl : 0), &outl) != 1)
        goto fail;
    rc = 0;
fail:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* RFC 9000 appendix A.3: the full packet number nearest the next expected one. */
static uint64_t decode_pn(int64_t largest, uint64_t truncated, size_t nbits)
{
    uint64_t expected = (uint64_t)(largest + 1);
    uint64_t win = (uint64_t)1 << nbits, hwin = win / 2, mask = win - 1;
    uint64_t cand = (expected & ~mask) | truncated;

    if (cand + hwin <= expected && cand < ((uint64_t)1 << 62) - win)
        return cand + win;
    if (cand > expected + hwin && cand >= win)
        return cand - win;
    return cand;
}

/*
 * Opens one client Initial packet that starts at pkt (the bytes of its
 * long header through the end of its Length). hdr_len is the offset of
 * the packet number, pkt_len the whole packet's length. On success the
 * plaintext frames are in out (room for pkt_len bytes), *out_len set, *pn
 * the full packet number. Exposed for the C unit tests.
 * Returns 0, PC_ERR_FORMAT (too short to carry a sample, or the tag does not
 * verify) or PC_ERR_NOMEM/-1 on a libcrypto failure.
 */
int pc_quic_open_packet(uint32_t version, const uint8_t *pkt, size_t hdr_len, size_t pkt_len,
                        const uint8_t *dcid, size_t dcid_len, int64_t largest_pn,
                        uint8_t *out, size_t *out_len, uint64_t *pn)
{
    uint8_t key[16], iv[12], hp[16], mask[16], nonce[12], pnb[4], first;
    size_t pn_len, i, body;
    uint64_t tpn = 0;

    /* The sample starts 4 bytes after the packet number offset (RFC 9001 5.4.2). */
    if (pkt_len < hdr_len + 4 + 16)
        return PC_ERR_FORMAT;
    if (pc_quic_client_keys(version, dcid, dcid_len, key, iv, hp) < 0)
        return PC_ERR_NOMEM;
    if (hp_mask(hp, pkt + hdr_len + 4, mask) < 0)
        return PC_ERR_NOMEM;
    first = (uint8_t)(pkt[0] ^ (mask[0] & 0x0f));
    pn_len = (size_t)(first & 0x03) + 1;
    for (i = 0; i < pn_len; i++) {
        pnb[i] = (uint8_t)(pkt[hdr_len + i] ^ mask[1 + i]);
        tpn = (tpn << 8) | pnb[i];
    }
    body = pkt_len - hdr_len - pn_len;
    if (body < 16)
        return PC_ERR_FORMAT;
    *pn = decode_pn(largest_pn, tpn, pn_len * 8);
    memcpy(nonce, iv, 12);
    for (i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(*pn >> (56 - 8 * i));
    if (gcm_open(key, nonce, first, pkt + 1, hdr_len - 1, pnb, pn_len,
                 pkt + hdr_len + pn_len, body - 16, pkt + pkt_len - 16, out) < 0)
        return PC_ERR_FORMAT;
    *out_len = body - 16;
    return PC_OK;
}

/* Frees the CRYPTO buffer (the small struct stays, to remember "done"). */
static void drop_stream(pc_udp_app *a)
{
    pc_budget_give(a->cx, (size_t)a->cap + a->cap / 8);
    pc_free(a->buf);
    pc_free(a->have);
    a->buf = NULL;
    a->have = NULL;
    a->cap = 0;
    a->contig = 0;
}

/* Grows the CRYPTO buffer to hold end bytes (end <= PC_QUIC_MAX_CRYPTO). */
static int grow_stream(pc_udp_app *a, uint32_t end)
{
    uint32_t ncap = (end + PC_QUIC_GROW - 1) / PC_QUIC_GROW * PC_QUIC_GROW;
    uint8_t *nb = NULL, *nh = NULL;

    if (ncap <= a->cap)
        return 0;
    /* The reader-wide budget bounds a flood of flows with open hellos. */
    if (pc_budget_take(a->cx, (size_t)(ncap - a->cap) * 9 / 8) < 0)
        return -1;
    nb = pc_realloc(a->buf, ncap);
    if (nb == NULL)
        goto fail;
    a->buf = nb;
    nh = pc_realloc(a->have, ncap / 8);
    if (nh == NULL)
        goto fail;
    memset(nh + a->cap / 8, 0, (ncap - a->cap) / 8);
    a->have = nh;
    a->cap = ncap;
    return 0;
fail:
    pc_budget_give(a->cx, (size_t)(ncap - a->cap) * 9 / 8);
    return -1;
}

/*
 * Adds CRYPTO bytes [off, off+n) to the stream, keeping bytes already
 * received where they overlap (first copy wins), dropping what lies beyond
 * the bound. Returns 0 or -1 (allocation failure).
 */
static int add_crypto(pc_udp_app *a, uint64_t off, const uint8_t *data, uint64_t n)
{
    uint32_t s, e, i;

    if (off >= PC_QUIC_MAX_CRYPTO || n == 0)
        return 0;
    s = (uint32_t)off;
    e = (n > PC_QUIC_MAX_CRYPTO - s) ? PC_QUIC_MAX_CRYPTO : s + (uint32_t)n;
    if (grow_stream(a, e) < 0)
        return -1;
    for (i = s; i < e; i++) {
        if (!(a->have[i >> 3] & (1u << (i & 7)))) {
            a->buf[i] = data[i - s];
            a->have[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
    }
    while (a->contig < a->cap && (a->have[a->contig >> 3] & (1u << (a->contig & 7))))
        a->contig++;
    return 0;
}

/*
 * Reports the ClientHello once it is whole (its 4-byte header gives the
 * length), or cut at the bound when it is longer than the bound.
 */
static void check_hello(pc_ctx *cx, const pc_meta *m, pc_udp_app *a)
{
    uint32_t need;

    if (a->done || a->contig < 4)
        return;
    if (a->buf[0] != 1) {      /* a client's Initial CRYPTO stream starts with its ClientHello */
        pc_count_malformed(cx);
        a->done = 1;
        drop_stream(a);
        return;
    }
    need = 4 + pc_rd24(a->buf + 1);
    if (a->contig >= need) {
        /* Whole but unparseable: the client sent a broken hello. */
        if (pc_tls_client_hello(cx, m, PC_EV_QUIC_SNI, a->buf, need, 0) == PC_ERR_FORMAT)
            pc_count_malformed(cx);
    } else if (a->contig >= PC_QUIC_MAX_CRYPTO) {
        pc_tls_client_hello(cx, m, PC_EV_QUIC_SNI, a->buf, a->contig, 1);
    } else {
        return;
    }
    a->done = 1;
    drop_stream(a);
}

/*
 * Walks the frames of one opened Initial. Returns 0 when they parsed up to
 * the end or to a frame type an Initial may not carry, -1 when a frame runs
 * past the payload (counted as malformed by the caller).
 */
static int parse_frames(pc_udp_app *a, uint64_t crypto_type, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    uint64_t type, v, cnt, off, len, i;

    while (pos < n) {
        if (rd_varint(p, n, &pos, &type) < 0)
            return -1;
        if (type == crypto_type)
            type = 0x06;
        else if (type == 0x06)
            return 0;   /* T051: 0x06 is not its CRYPTO frame */
        switch (type) {
        case 0x00:   /* PADDING */
            while (pos < n && p[pos] == 0)
                pos++;
            break;
        case 0x01:   /* PING */
            break;
        case 0x02:   /* ACK: largest, delay, range count, first range, ranges */
        case 0x03:   /* ACK with ECN counts */
            if (rd_varint(p, n, &pos, &v) < 0 || rd_varint(p, n, &pos, &v) < 0
                || rd_varint(p, n, &pos, &cnt) < 0 || rd_varint(p, n, &pos, &v) < 0)
                return -1;
            /* Each range takes at least 2 bytes, so this loop ends with the data. */
            for (i = 0; i < cnt; i++)
                if (rd_varint(p, n, &pos, &v) < 0 || rd_varint(p, n, &pos, &v) < 0)
                    return -1;
            if (type == 0x03)
                for (i = 0; i < 3; i++)
                    if (rd_varint(p, n, &pos, &v) < 0)
                        return -1;
            break;
        case 0x06:   /* CRYPTO: offset, length, data */
            if (rd_varint(p, n, &pos, &off) < 0 || rd_varint(p, n, &pos, &len) < 0
                || len > n - pos)
                return -1;
            if (add_crypto(a, off, p + pos, len) < 0)
                return 0;   /* out of memory: keep what we have, not a decode error */
            pos += (size_t)len;
            break;
        case 0x1c:   /* CONNECTION_CLOSE: code, frame type, reason */
        case 0x1d:
            if (rd_varint(p, n, &pos, &v) < 0
                || (type == 0x1c && rd_varint(p, n, &pos, &v) < 0)
                || rd_varint(p, n, &pos, &len) < 0 || len > n - pos)
                return -1;
            pos += (size_t)len;
            break;
        default:     /* not allowed in an Initial (or newer than us): stop here */
            return 0;
        }
    }
    return 0;
}

/* Decrypts one client Initial and feeds its CRYPTO frames to the flow state. */
static void client_initial(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, uint32_t version,
                           const uint8_t *pkt, size_t hdr_len, size_t pkt_len,
                           const uint8_t *dcid, size_t dcid_len)
{
    uint8_t stackbuf[2048], *plain = stackbuf;
    size_t plain_len = 0;
    uint64_t pn = 0;
    int64_t largest = *app ? (*app)->largest_pn : -1;
    pc_udp_app *a = *app;
    qver q;
    int rc, qv = quic_version(version, &q);

    if (qv == QVER_NONE)
        goto fail;
    if (pkt_len > sizeof stackbuf) {
        plain = pc_malloc(pkt_len);
        if (plain == NULL)
            goto fail;
    }
    rc = pc_quic_open_packet(version, pkt, hdr_len, pkt_len, dcid, dcid_len, largest,
                             plain, &plain_len, &pn);
    if (rc != PC_OK) {
        /* An unknown version that v1's keys do not open was simply not v1. */
        if (rc == PC_ERR_FORMAT && qv == QVER_KNOWN)
            pc_count_malformed(cx);
        goto fail;
    }
    if (a == NULL) {
        a = pc_calloc(1, sizeof *a);
        if (a == NULL)
            goto fail;
        a->cx = cx;
        a->largest_pn = -1;
        a->version = version;
        *app = a;
    }
    if (a->version != version) {
        /* Version Negotiation made the client start over in another version. */
        drop_stream(a);
        a->version = version;
    }
    if ((int64_t)pn > a->largest_pn)
        a->largest_pn = (int64_t)pn;
    if (parse_frames(a, (uint64_t)q.crypto_type, plain, plain_len) < 0)
        pc_count_malformed(cx);
    check_hello(cx, m, a);
fail:
    if (plain != stackbuf)
        pc_free(plain);
}

/*
 * One UDP datagram whose first byte has the long-header bit, either
 * direction. Walks the coalesced long-header packets (each ends where its
 * Length field says); client Initials of supported versions are opened and
 * their CRYPTO data collected in *app (created on the first client Initial
 * that authenticates). Malformed: a supported version's header that runs
 * past the datagram (unless the capture cut it, m->truncated), or a client
 * Initial whose tag does not verify. Skipped quietly: server packets,
 * Version Negotiation, Retry, unknown versions that are not v1 underneath, short-header packets,
 * datagrams too short to carry a version (other UDP protocols set the high
 * bit too: RTP's first byte is 0x80), and everything once the flow's
 * ClientHello was reported.
 */
void pc_quic_datagram(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len)
{
    size_t off = 0;
    int qv = QVER_NONE;

    if (*app != NULL && (*app)->done)
        return;
    while (off < len && (data[off] & 0x80)) {
        const uint8_t *p = data + off;
        size_t n = len - off, pos, dcid_len, scid_len;
        uint64_t tok_len, plen;
        uint32_t version;
        unsigned type;
        qver q;

        if (n < 5)
            return;          /* too short to tell whether it is QUIC at all */
        version = pc_rd32(p + 1);
        qv = quic_version(version, &q);
        if (qv == QVER_NONE)
            return;          /* Version Negotiation, gQUIC: not ours */
        /* An unknown version is tried only on what can be a client's first
         * Initial in v1's layout: fixed bit set, type 0, in a datagram
         * padded to 1200 bytes (RFC 9000 14.1). That keeps other UDP
         * traffic with the high bit (RTP's first byte is 0x80, fixed bit
         * clear) away from the key derivation. */
        if (qv == QVER_FALLBACK
            && (!m->from_client || len < 1200 || (p[0] & 0x70) != 0x40))
            return;
        if (n < 7)
            goto bad;
        type = (p[0] >> 4) & 3;
        dcid_len = p[5];
        if (dcid_len > QUIC_MAX_CID || n < 7 + dcid_len)
            goto bad;
        scid_len = p[6 + dcid_len];
        pos = 7 + dcid_len + scid_len;
        if (scid_len > QUIC_MAX_CID || n < pos)
            goto bad;
        /* v1 types: 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry; v2 rotates them:
         * 1 Initial, 2 0-RTT, 3 Handshake, 0 Retry. */
        if (q.v2)
            type = (type + 3) & 3;
        if (type == 3)
            return;          /* Retry: no Length field, nothing for us */
        if (type == 0) {
            if (rd_varint(p, n, &pos, &tok_len) < 0 || tok_len > n - pos)
                goto bad;
            pos += (size_t)tok_len;
        }
        if (rd_varint(p, n, &pos, &plen) < 0 || plen > n - pos)
            goto bad;
        if (type == 0 && m->from_client)
            client_initial(cx, m, app, version, p, pos, pos + (size_t)plen, p + 6, dcid_len);
        if (*app != NULL && (*app)->done)
            return;
        off += pos + (size_t)plen;
    }
    return;
bad:
    /* A cut capture (snaplen) is not the sender's fault; an unknown version
     * that does not parse as v1 was not v1. */
    if (!m->truncated && qv == QVER_KNOWN)
        pc_count_malformed(cx);
}

/*
 * The flow ends: a ClientHello never completed is reported with what
 * arrived from offset 0 (truncated); *app is freed and set to NULL.
 */
void pc_quic_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app)
{
    pc_udp_app *a = *app;

    if (a == NULL)
        return;
    if (!a->done && a->contig > 0 && a->buf[0] == 1)
        pc_tls_client_hello(cx, m, PC_EV_QUIC_SNI, a->buf, a->contig, 1);
    drop_stream(a);
    pc_free(a);
    *app = NULL;
}
