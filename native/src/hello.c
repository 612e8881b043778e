/*
 * hello.c - the TLS ClientHello and its fingerprints, for both carriers:
 * tls.c hands over a ClientHello from a TCP stream, quic.c one rebuilt from
 * QUIC CRYPTO frames. Parses the fields the events need (pc_hello_parse),
 * writes JA3 (string and MD5) and JA4 (and its raw JA4_r form), and reports
 * PC_EV_TLS_SNI / PC_EV_QUIC_SNI (pc_tls_client_hello).
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "parsers.h"
#include "text.h"

#define HS_CLIENT_HELLO  1

/* ---- ClientHello parsing ----------------------------------------------- */

static int is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* Appends a 16-bit list of n bytes at p to arr (bounded); sets *partial on overflow or a cut. */
static void take_u16_list(const uint8_t *p, size_t n, uint16_t *arr, size_t *count, int *partial)
{
    if (n & 1)
        *partial = 1;
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (*count >= PC_HELLO_MAX_LIST) {
            *partial = 1;
            return;
        }
        arr[(*count)++] = pc_rd16(p + i);
    }
}

/* Reads the extension body of one extension of a ClientHello into h. */
static void take_extension(pc_hello *h, uint16_t type, const uint8_t *p, size_t n)
{
    size_t l;

    switch (type) {
    case 0:         /* server_name: list of (type, 16-bit length, name) */
        h->has_sni = 1;
        if (n < 2)
            break;
        l = pc_rd16(p);
        if (l > n - 2)
            l = n - 2;
        for (size_t i = 2; i + 3 <= 2 + l;) {
            size_t nl = pc_rd16(p + i + 1);
            if (i + 3 + nl > 2 + l)
                break;
            if (p[i] == 0 && !h->sni) {
                h->sni = p + i + 3;
                h->sni_len = nl;
            }
            i += 3 + nl;
        }
        break;
    case 16:        /* ALPN: protocol_name_list */
        if (n < 2)
            break;
        l = pc_rd16(p);
        if (l > n - 2)
            l = n - 2;
        h->alpn = p + 2;
        h->alpn_len = l;
        break;
    case 10:        /* supported_groups */
        if (n >= 2) {
            l = pc_rd16(p);
            take_u16_list(p + 2, l < n - 2 ? l : n - 2, h->groups, &h->n_groups, &h->partial);
        }
        break;
    case 11:        /* ec_point_formats: 8-bit list */
        if (n >= 1) {
            l = p[0];
            if (l > n - 1)
                l = n - 1;
            for (size_t i = 0; i < l && h->n_pointfmts < PC_HELLO_MAX_LIST; i++)
                h->pointfmts[h->n_pointfmts++] = p[1 + i];
        }
        break;
    case 13:        /* signature_algorithms */
        if (n >= 2) {
            l = pc_rd16(p);
            take_u16_list(p + 2, l < n - 2 ? l : n - 2, h->sigalgs, &h->n_sigalgs, &h->partial);
        }
        break;
    case 43:        /* supported_versions (client form: 8-bit length) */
        if (n >= 1) {
            l = p[0];
            take_u16_list(p + 1, l < n - 1 ? l : n - 1, h->versions, &h->n_versions, &h->partial);
        }
        break;
    default:
        break;
    }
}

/*
 * Parses a ClientHello from its handshake header; contract in parsers.h.
 * Every length is checked against what is there; a cut message fills what
 * it can and sets h->partial.
 */
int pc_hello_parse(const uint8_t *hs, size_t len, pc_hello *h)
{
    size_t end, p, n;

    memset(h, 0, sizeof *h);
    if (len < 4 || hs[0] != HS_CLIENT_HELLO)
        return PC_ERR_FORMAT;
    end = 4 + (size_t)pc_rd24(hs + 1);
    if (len < end) {
        end = len;
        h->partial = 1;
    }
    /* legacy_version, random[32], session_id<0..32>, cipher_suites<2..> */
    if (end < 4 + 2 + 32 + 1)
        return PC_ERR_FORMAT;
    h->legacy_version = pc_rd16(hs + 4);
    p = 4 + 2 + 32;
    p += 1 + (size_t)hs[p];
    if (p + 2 > end)
        return PC_ERR_FORMAT;
    n = pc_rd16(hs + p);
    p += 2;
    if (p + n > end) {
        n = end - p;
        h->partial = 1;
    }
    take_u16_list(hs + p, n, h->ciphers, &h->n_ciphers, &h->partial);
    p += n;
    /* compression_methods<1..>, then extensions<0..> if present */
    if (p >= end)
        goto cut;
    p += 1 + (size_t)hs[p];
    if (p + 2 > end)
        goto cut;
    n = pc_rd16(hs + p);
    p += 2;
    if (p + n > end) {
        h->partial = 1;
    } else {
        end = p + n;
    }
    while (p + 4 <= end) {
        uint16_t type = pc_rd16(hs + p);
        size_t el = pc_rd16(hs + p + 2);
        p += 4;
        if (h->n_exts < PC_HELLO_MAX_LIST)
            h->exts[h->n_exts++] = type;
        else
            h->partial = 1;
        if (p + el > end) {
            h->partial = 1;
            el = end - p;
        }
        take_extension(h, type, hs + p, el);
        p += el;
    }
    if (p != end)
        h->partial = 1;
    return PC_OK;
cut:
    /* Without compression methods a complete hello would be invalid; only a
     * cut one may end here. A complete hello without extensions ends exactly
     * after them (p == end). */
    if (p != end || len < 4 + (size_t)pc_rd24(hs + 1))
        h->partial = 1;
    return PC_OK;
}

/* ---- JA3 ---------------------------------------------------------------- */

/* Appends text to out at *o (cap bytes, leaving room for the NUL). */
static void put(char *out, size_t cap, size_t *o, const char *text)
{
    size_t n = strlen(text);
    if (*o + n + 1 > cap)
        n = *o + 1 < cap ? cap - *o - 1 : 0;
    memcpy(out + *o, text, n);
    *o += n;
}

/* Appends the decimal non-GREASE values of a 16-bit list joined by '-'. */
static void put_dec_list(char *out, size_t cap, size_t *o, const uint16_t *v, size_t n)
{
    char num[8];
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (is_grease(v[i]))
            continue;
        snprintf(num, sizeof num, "%s%u", first ? "" : "-", (unsigned)v[i]);
        put(out, cap, o, num);
        first = 0;
    }
}

/* The JA3 string (Salesforce JA3: decimal fields, GREASE removed). */
size_t pc_ja3_string(const pc_hello *h, char *out, size_t cap)
{
    char num[8];
    size_t o = 0;

    if (cap == 0)
        return 0;
    snprintf(num, sizeof num, "%u,", (unsigned)h->legacy_version);
    put(out, cap, &o, num);
    put_dec_list(out, cap, &o, h->ciphers, h->n_ciphers);
    put(out, cap, &o, ",");
    put_dec_list(out, cap, &o, h->exts, h->n_exts);
    put(out, cap, &o, ",");
    put_dec_list(out, cap, &o, h->groups, h->n_groups);
    put(out, cap, &o, ",");
    for (size_t i = 0; i < h->n_pointfmts; i++) {
        snprintf(num, sizeof num, "%s%u", i ? "-" : "", (unsigned)h->pointfmts[i]);
        put(out, cap, &o, num);
    }
    out[o] = 0;
    return o;
}

/* Lower-case hex of n bytes. */
static void hex(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* Digest of text with md into hex out (2 * digest size + 1 bytes); "" on failure. */
static void digest_hex(const EVP_MD *md, const char *text, size_t n, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;

    if (!md || !EVP_Digest(text, n, d, &dl, md, NULL)) {
        out[0] = 0;
        return;
    }
    hex(out, d, dl);
}

/* Longest JA3 / JA4 list text: 5 characters per value. */
#define LIST_TEXT (PC_HELLO_MAX_LIST * 6 + 8)

/* MD5 of the JA3 string as 32 hex digits. */
void pc_ja3_hash(const pc_hello *h, char out[33])
{
    char s[4 * LIST_TEXT];
    size_t n = pc_ja3_string(h, s, sizeof s);
    char full[2 * EVP_MAX_MD_SIZE + 1];

    digest_hex(EVP_md5(), s, n, full);
    memcpy(out, full, 32);
    out[32] = 0;
    if (!full[0])
        out[0] = 0;
}

/* ---- JA4 ---------------------------------------------------------------- */

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x, y;
    memcpy(&x, a, 2);
    memcpy(&y, b, 2);
    return (x > y) - (x < y);
}

/* Writes "xxxx,yyyy" (4-digit lower-case hex) of v[0..n) into out; returns the length. */
static size_t hex_list(char *out, const uint16_t *v, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)sprintf(out + o, i ? ",%04x" : "%04x", (unsigned)v[i]);
    }
    out[o] = 0;
    return o;
}

/* First 12 hex digits of SHA-256(text), or "000000000000" for an empty list. */
static void ja4_hash12(const char *text, size_t n, int empty, char out[13])
{
    char full[2 * EVP_MAX_MD_SIZE + 1];

    if (empty) {
        memcpy(out, "000000000000", 13);
        return;
    }
    digest_hex(EVP_sha256(), text, n, full);
    if (!full[0])
        memcpy(full, "000000000000", 13);
    memcpy(out, full, 12);
    out[12] = 0;
}

static int is_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * The two ALPN characters of JA4_a, as the specification's prose and its
 * worked examples say ("ALPN Extension Value": a non-alphanumeric first or
 * last byte gives the first and last hex digit of the value). FoxIO's own
 * Python/Rust tools and the ja4plus package write "99" instead for a value
 * such as 0xba 0xad; only such non-ASCII values differ.
 */
static void ja4_alpn(const pc_hello *h, char out[2])
{
    static const char digits[] = "0123456789abcdef";
    size_t l;
    const uint8_t *v;

    out[0] = out[1] = '0';
    if (!h->alpn || h->alpn_len < 1)
        return;
    l = h->alpn[0];
    if (l == 0 || l > h->alpn_len - 1)
        return;
    v = h->alpn + 1;
    if (is_alnum(v[0]) && is_alnum(v[l - 1])) {
        out[0] = (char)v[0];
        out[1] = (char)v[l - 1];
    } else {
        out[0] = digits[v[0] >> 4];
        out[1] = digits[v[l - 1] & 15];
    }
}

/* The version characters of JA4_a. */
static const char *ja4_version(const pc_hello *h)
{
    uint16_t v = h->legacy_version;
    int have = 0;

    for (size_t i = 0; i < h->n_versions; i++) {
        if (is_grease(h->versions[i]))
            continue;
        if (!have || h->versions[i] > v)
            v = h->versions[i];
        have = 1;
    }
    switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default:     return "00";
    }
}

/*
 * The JA4 fingerprint of h (FoxIO JA4 specification, technical_details/
 * JA4.md): a = proto, version, d/i, cipher count, extension count, ALPN;
 * b = sha256-12 of the sorted ciphers; c = sha256-12 of the sorted
 * extensions without SNI and ALPN, '_', the signature algorithms in order.
 * GREASE values are left out everywhere.
 */
void pc_ja4(const pc_hello *h, char proto, char out[37], char *raw, size_t rawcap)
{
    uint16_t ciphers[PC_HELLO_MAX_LIST], exts[PC_HELLO_MAX_LIST];
    size_t nc = 0, ne = 0, ne_all = 0, cl, el;
    char ctext[LIST_TEXT], etext[2 * LIST_TEXT], a[11], alpn[2], b12[13], c12[13];

    for (size_t i = 0; i < h->n_ciphers; i++)
        if (!is_grease(h->ciphers[i]))
            ciphers[nc++] = h->ciphers[i];
    for (size_t i = 0; i < h->n_exts; i++) {
        uint16_t e = h->exts[i];
        if (is_grease(e))
            continue;
        ne_all++;
        if (e != 0x0000 && e != 0x0010)
            exts[ne++] = e;
    }
    qsort(ciphers, nc, sizeof ciphers[0], cmp_u16);
    qsort(exts, ne, sizeof exts[0], cmp_u16);
    ja4_alpn(h, alpn);
    snprintf(a, sizeof a, "%c%s%c%02u%02u%c%c", proto, ja4_version(h), h->has_sni ? 'd' : 'i',
             (unsigned)(nc > 99 ? 99 : nc), (unsigned)(ne_all > 99 ? 99 : ne_all), alpn[0], alpn[1]);

    cl = hex_list(ctext, ciphers, nc);
    el = hex_list(etext, exts, ne);
    {
        uint16_t sig[PC_HELLO_MAX_LIST];
        size_t ns = 0;
        for (size_t i = 0; i < h->n_sigalgs; i++)
            if (!is_grease(h->sigalgs[i]))
                sig[ns++] = h->sigalgs[i];
        if (ns) {
            etext[el++] = '_';
            el += hex_list(etext + el, sig, ns);
        }
    }
    ja4_hash12(ctext, cl, nc == 0, b12);
    ja4_hash12(etext, el, ne == 0, c12);
    snprintf(out, 37, "%s_%s_%s", a, b12, c12);
    if (raw && rawcap)
        snprintf(raw, rawcap, "%s_%s_%s", a, ctext, etext);
}

/*
 * One ClientHello handshake message (TCP or QUIC): emits kind (PC_EV_TLS_SNI
 * or PC_EV_QUIC_SNI) with name = SNI (escaped, may be empty), s1 = JA4,
 * s2 = JA3 MD5, s3 = ALPN protocols joined by ',' (escaped). A cut message
 * (truncated, or shorter than its header says) still reports the SNI and
 * ALPN that are there, with PC_EVF_PARTIAL and empty JA3/JA4. Returns PC_OK, or PC_ERR_FORMAT when hs is not a
 * ClientHello or ends before the cipher suites (nothing is emitted).
 */
int pc_tls_client_hello(pc_ctx *cx, const pc_meta *m, uint32_t kind,
                        const uint8_t *hs, size_t len, int truncated)
{
    pc_hello h;
    char sni[1024], ja4[37], ja3[33], alpn[1024];
    size_t alpn_n = 0;
    pc_out o;

    if (pc_hello_parse(hs, len, &h) != PC_OK)
        return PC_ERR_FORMAT;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.flags = (truncated || h.partial || m->truncated) ? PC_EVF_PARTIAL : 0;
    o.name.p = (const uint8_t *)sni;
    o.name.n = h.sni ? pc_text_escape(sni, sizeof sni, h.sni, h.sni_len) : 0;
    ja4[0] = ja3[0] = 0;
    if (!truncated && !h.partial) {
        /* Fingerprints of a cut hello would name a client that does not
         * exist; they are left empty. */
        pc_ja4(&h, kind == PC_EV_QUIC_SNI ? 'q' : 't', ja4, NULL, 0);
        pc_ja3_hash(&h, ja3);
    }
    for (size_t i = 0; h.alpn && i < h.alpn_len;) {
        size_t l = h.alpn[i];
        if (i + 1 + l > h.alpn_len)
            break;
        if (alpn_n && alpn_n < sizeof alpn)
            alpn[alpn_n++] = ',';
        alpn_n += pc_text_escape(alpn + alpn_n, sizeof alpn - alpn_n, h.alpn + i + 1, l);
        i += 1 + l;
    }
    o.s1.p = (const uint8_t *)ja4;
    o.s1.n = strlen(ja4);
    o.s2.p = (const uint8_t *)ja3;
    o.s2.n = strlen(ja3);
    o.s3.p = (const uint8_t *)alpn;
    o.s3.n = alpn_n;
    pc_emit(cx, m, &o);
    return PC_OK;
}

