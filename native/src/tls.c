/*
 * tls.c - TLS over TCP: the record layer of both directions; the client's
 * ClientHello goes to hello.c (SNI, ALPN, JA3, JA4), the server's
 * Certificate chain (TLS <= 1.2) becomes PC_EV_TLS_CERT events.
 *
 * The record layer is walked in place over the bytes the packet path keeps;
 * handshake messages may be split over records and TCP segments. Nothing of
 * a handshake message is consumed until it is whole (or the direction
 * ends), so the packet path keeps the bytes for the next call. A message
 * that lies inside one record is parsed where it is; one that spans records
 * is copied into one heap block of its own size (bounded by what the packet
 * path keeps, pc_limits.max_stream_bytes). Certificates are taken one at a
 * time, so only one certificate at a time must be buffered. pc_dirstate:
 *   u32[0] state (ST_MSG: expecting the first ClientHello / the next server
 *   message, ST_CLIENT2: client side after its first ClientHello, ST_SKIP,
 *   ST_CERTS), u32[1] handshake bytes of the record at data[0]
 *   already used, u32[2] bytes left of the message part being skipped or of
 *   the certificate list (ST_SKIP, ST_CERTS) or the data length below which
 *   the awaited message cannot be whole (ST_MSG, ST_CLIENT2), u32[3] bytes to skip after the certificate list,
 *   u16 the next certificate's chain position.
 */
#include "parsers.h"

#define TLS_MAX_RECORD (16384 + 2048)   /* largest TLSCiphertext fragment */

#define HS_CLIENT_HELLO  1
#define HS_SERVER_HELLO  2
#define HS_CERTIFICATE  11
#define HS_SERVER_DONE  14

enum { ST_MSG = 0, ST_SKIP = 1, ST_CERTS = 2, ST_CLIENT2 = 3 };

/* ---- the record layer ---------------------------------------------------- */

/* A position in the handshake bytes carried by the records of data. */
typedef struct cur {
    const uint8_t *d;
    size_t len;
    size_t rec;     /* offset of the current record's header */
    size_t rlen;    /* its payload length as announced */
    size_t off;     /* position inside the payload */
    int other;      /* content type of a non-handshake record that stopped a read */
} cur;

enum { C_OK = 0, C_NEED = 1, C_OTHER = 2, C_BAD = 3 };

/* Bytes of the current record's payload present in d, from off on. */
static size_t here(const cur *c)
{
    size_t have = c->len - c->rec - 5;
    if (have > c->rlen)
        have = c->rlen;
    return have > c->off ? have - c->off : 0;
}

/* Reads the record header at c->rec. */
static int load_record(cur *c)
{
    const uint8_t *h;

    if (c->len - c->rec < 5)
        return C_NEED;
    h = c->d + c->rec;
    if (h[1] != 3)
        return C_BAD;
    c->rlen = pc_rd16(h + 3);
    if (c->rlen > TLS_MAX_RECORD)
        return C_BAD;
    c->off = 0;
    if (h[0] != 22) {
        c->other = h[0];
        return C_OTHER;
    }
    return C_OK;
}

/*
 * Moves past exhausted records so that c points at a handshake byte. c only
 * moves onto a record whose header is here and is a handshake record, so a
 * stopped c still describes a record that is wholly known.
 */
static int settle(cur *c)
{
    while (c->off >= c->rlen) {
        cur next = *c;
        int r;
        if (c->len - c->rec - 5 < c->rlen)
            return C_NEED;          /* the record itself is not all here */
        next.rec += 5 + next.rlen;
        r = load_record(&next);
        if (r != C_OK) {
            c->other = next.other;
            return r;
        }
        *c = next;
    }
    return here(c) ? C_OK : C_NEED;
}

/* Copies n handshake bytes to dst (NULL: skip them), advancing c. */
static int take(cur *c, uint8_t *dst, size_t n)
{
    while (n) {
        size_t k;
        int r = settle(c);
        if (r != C_OK)
            return r;
        k = here(c);
        if (k > n)
            k = n;
        if (dst) {
            memcpy(dst, c->d + c->rec + 5 + c->off, k);
            dst += k;
        }
        c->off += k;
        n -= k;
    }
    return C_OK;
}

/* Skips up to *n handshake bytes, as many as are here; *n keeps the rest. */
static int skip_some(cur *c, size_t *n)
{
    while (*n) {
        size_t k;
        int r = settle(c);
        if (r != C_OK)
            return r;
        k = here(c);
        if (k > *n)
            k = *n;
        c->off += k;
        *n -= k;
    }
    return C_OK;
}

/*
 * Makes n handshake bytes from c contiguous: *p points into d when they lie
 * in one record, else into a new heap block (*owned, for the caller to
 * free). With partial = 1, takes as many as are here (*got) when not all
 * are. Advances c on success.
 */
static int gather(cur *c, size_t n, int partial, const uint8_t **p, size_t *got, uint8_t **owned)
{
    cur t = *c;
    size_t avail = 0;
    int r;

    *owned = NULL;
    if (n == 0) {
        *p = c->d;
        *got = 0;
        return C_OK;
    }
    r = settle(&t);
    if (r == C_OK && here(&t) >= n) {
        *p = t.d + t.rec + 5 + t.off;
        *got = n;
        t.off += n;
        *c = t;
        return C_OK;
    }
    if (r == C_BAD || (r == C_OTHER && !partial))
        return r;
    /* Count what is here across records before allocating. */
    t = *c;
    while (avail < n) {
        size_t k;
        if (settle(&t) != C_OK)
            break;
        k = here(&t);
        if (k > n - avail)
            k = n - avail;
        t.off += k;
        avail += k;
    }
    if (avail < n && !partial)
        return C_NEED;
    if (avail == 0)
        return C_NEED;
    *owned = pc_malloc(avail);
    if (!*owned)
        return C_BAD;
    t = *c;
    take(&t, *owned, avail);
    *p = *owned;
    *got = avail;
    *c = t;
    return C_OK;
}

/* Whether a ServerHello (from its handshake header) selects TLS 1.3. */
static int server_hello_is_13(const uint8_t *hs, size_t len)
{
    size_t p = 4 + 2 + 32, end;

    if (len < p + 1)
        return 0;
    if (pc_rd16(hs + 4) == 0x0304)
        return 1;
    p += 1 + (size_t)hs[p];            /* session id */
    p += 2 + 1;                        /* cipher suite, compression */
    if (p + 2 > len)
        return 0;
    end = p + 2 + pc_rd16(hs + p);
    if (end > len)
        end = len;
    for (p += 2; p + 4 <= end;) {
        uint16_t type = pc_rd16(hs + p), el = pc_rd16(hs + p + 2);
        if (type == 43 && el == 2 && p + 6 <= end) {
            uint16_t v = pc_rd16(hs + p + 4);
            return v == 0x0304 || (v >> 8) == 0x7f;   /* 1.3 or a 1.3 draft */
        }
        p += 4 + (size_t)el;
    }
    return 0;
}

/* Emits one certificate. */
static void emit_cert(pc_ctx *cx, const pc_meta *m, const uint8_t *der, size_t n, uint32_t index)
{
    pc_out o;

    memset(&o, 0, sizeof o);
    o.kind = PC_EV_TLS_CERT;
    o.flags = m->truncated ? PC_EVF_PARTIAL : 0;
    o.index = index;
    o.data.p = der;
    o.data.n = n;
    pc_emit(cx, m, &o);
}

/* Writes the consumed bytes of position c back into ds (see the file comment). */
static size_t commit(const cur *c, pc_dirstate *ds)
{
    if (c->off >= c->rlen && c->len - c->rec - 5 >= c->rlen) {
        ds->u32[1] = 0;
        return c->rec + 5 + c->rlen;
    }
    ds->u32[1] = (uint32_t)c->off;
    return c->rec;
}

#define TLS_RESTART 2

/*
 * Remembers in ds->u32[2] the least data length (counted from the next
 * call's data[0] = consumed) at which a message of n bytes starting at c can
 * be whole: its bytes plus at least the header of the record it starts in.
 */
static void need_at_least(pc_dirstate *ds, const cur *c, size_t n, size_t consumed)
{
    size_t at = c->rec + 5 + c->off + n;
    ds->u32[2] = at - consumed > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)(at - consumed);
}

/*
 * One pass over the records at data (see pc_tls_stream). Returns
 * PC_STREAM_MORE, PC_STREAM_DONE, or TLS_RESTART with *consumed > 0 when a
 * whole non-handshake record at a message boundary must be stepped over
 * (the caller calls again after it).
 */
static int tls_run(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
                   const uint8_t *data, size_t len, int final, size_t *consumed)
{
    cur c, t;
    int r = C_OK;
    uint8_t *owned = NULL;
    const uint32_t base = m->from_client ? ST_CLIENT2 : ST_MSG;

    memset(&c, 0, sizeof c);
    c.d = data;
    c.len = len;
    *consumed = 0;
    r = load_record(&c);
    if (r == C_OTHER && ds->u32[0] == ST_CLIENT2 && c.other == 20 && ds->u32[1] == 0) {
        /* ChangeCipherSpec between a ClientHello and the second one that a
         * HelloRetryRequest asks for (TLS 1.3 middlebox compatibility). */
        if (len - 5 < c.rlen)
            goto out;
        *consumed = 5 + c.rlen;
        return TLS_RESTART;
    }
    if (r == C_NEED)
        goto out;
    if (r != C_OK)
        goto done;
    c.off = ds->u32[1];
    if (c.off > c.rlen)
        goto done;
    /* A message known to need more bytes than are here: do not walk the
     * records again for every small segment (u32[2], see below). */
    if ((ds->u32[0] == ST_MSG || ds->u32[0] == ST_CLIENT2) && !final && len < ds->u32[2])
        goto out;

    for (;;) {
        uint8_t hdr[4];
        const uint8_t *p;
        size_t got, n;

        *consumed = commit(&c, ds);
        if (ds->u32[0] == ST_SKIP) {
            n = ds->u32[2];
            r = skip_some(&c, &n);
            ds->u32[2] = (uint32_t)n;
            *consumed = commit(&c, ds);
            if (r != C_OK)
                break;
            ds->u32[0] = base;
            continue;
        }
        if (ds->u32[0] == ST_CERTS) {
            size_t left = ds->u32[2], clen;
            if (left < 3) {
                ds->u32[0] = ST_SKIP;
                ds->u32[2] = (uint32_t)(left + ds->u32[3]);
                ds->u32[3] = 0;
                continue;
            }
            t = c;
            r = take(&t, hdr, 3);
            if (r != C_OK)
                break;
            clen = pc_rd24(hdr);
            if (clen > left - 3)
                goto done;
            r = gather(&t, clen, 0, &p, &got, &owned);
            if (r != C_OK)
                break;
            if (got)
                emit_cert(cx, m, p, got, ds->u16++);
            pc_free(owned);
            owned = NULL;
            ds->u32[2] = (uint32_t)(left - 3 - clen);
            c = t;
            continue;
        }
        /* ST_MSG / ST_CLIENT2: a handshake message header */
        t = c;
        r = take(&t, hdr, 4);
        if (r != C_OK)
            break;
        n = pc_rd24(hdr + 1);
        if (ds->u32[0] == ST_MSG && m->from_client) {
            if (hdr[0] != HS_CLIENT_HELLO)
                goto done;
            t = c;
            r = gather(&t, 4 + n, final, &p, &got, &owned);
            if (r != C_OK) {
                need_at_least(ds, &c, 4 + n, *consumed);
                break;
            }
            pc_tls_client_hello(cx, m, PC_EV_TLS_SNI, p, got, got < 4 + n);
            ds->u32[2] = 0;
            pc_free(owned);
            owned = NULL;
            if (got < 4 + n)
                goto done;
            c = t;
            ds->u32[0] = ST_CLIENT2;
            continue;
        }
        if (ds->u32[0] == ST_CLIENT2 && hdr[0] == HS_CLIENT_HELLO) {
            pc_hello h;
            t = c;
            r = gather(&t, 4 + n, 0, &p, &got, &owned);
            if (r != C_OK) {
                need_at_least(ds, &c, 4 + n, *consumed);
                break;
            }
            /* Only a well-formed hello: after a ChangeCipherSpec an
             * encrypted Finished may start with the byte 1 by chance. */
            if (pc_hello_parse(p, got, &h) == PC_OK && !h.partial && h.legacy_version == 0x0303)
                pc_tls_client_hello(cx, m, PC_EV_TLS_SNI, p, got, 0);
            goto done;
        }
        if (hdr[0] == HS_SERVER_HELLO && !m->from_client) {
            t = c;
            r = gather(&t, 4 + n, 0, &p, &got, &owned);
            if (r != C_OK) {
                need_at_least(ds, &c, 4 + n, *consumed);
                break;
            }
            if (server_hello_is_13(p, got))
                goto done;
            pc_free(owned);
            owned = NULL;
            ds->u32[2] = 0;
            c = t;
            continue;
        }
        if (hdr[0] == HS_CERTIFICATE && n >= 3) {
            r = take(&t, hdr, 3);       /* the certificate list length */
            if (r != C_OK)
                break;
            c = t;
            ds->u32[0] = ST_CERTS;
            ds->u32[2] = pc_rd24(hdr) < n - 3 ? pc_rd24(hdr) : (uint32_t)(n - 3);
            ds->u32[3] = (uint32_t)(n - 3 - ds->u32[2]);
            ds->u16 = 0;
            continue;
        }
        if (hdr[0] == HS_SERVER_DONE || m->from_client)
            goto done;
        c = t;
        ds->u32[0] = ST_SKIP;
        ds->u32[2] = (uint32_t)n;
    }
    /* A read stopped: r says why. A record that is not a handshake at a
     * message boundary of the client side may be the ChangeCipherSpec
     * before a second ClientHello. */
    if (r == C_OTHER && ds->u32[0] == ST_CLIENT2 && *consumed > 0 && commit(&c, ds) == *consumed
        && ds->u32[1] == 0) {
        pc_free(owned);
        return TLS_RESTART;
    }
    if (r == C_NEED && !final)
        goto out;
    /* A certificate cut by the end of the direction is not reported: a
     * partial DER blob identifies nothing. */
done:
    *consumed = len;
    pc_free(owned);
    return PC_STREAM_DONE;
out:
    pc_free(owned);
    if (final) {
        *consumed = len;
        return PC_STREAM_DONE;
    }
    return PC_STREAM_MORE;
}

/*
 * The TLS records of one TCP direction (pc_app_tcp contract). Client side:
 * the first handshake message must be a ClientHello, which is reported;
 * after it a second ClientHello (answer to a HelloRetryRequest, after an
 * optional ChangeCipherSpec) and a client Certificate (TLS <= 1.2) are
 * reported too; any other message ends the direction. Server side:
 * handshake messages are skipped until a Certificate, whose certificates are
 * emitted one by one; the direction is done at ServerHelloDone, at any
 * non-handshake record (ChangeCipherSpec, alert, data) or when the
 * ServerHello picks TLS 1.3 (its certificates are encrypted).
 */
int pc_tls_stream(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
                  const uint8_t *data, size_t len, int final, size_t *consumed)
{
    size_t base = 0;

    for (;;) {
        size_t c = 0;
        int r = tls_run(cx, m, ds, data + base, len - base, final, &c);
        if (r != TLS_RESTART || c == 0) {
            *consumed = r == PC_STREAM_DONE ? len : base + c;
            return r == TLS_RESTART ? PC_STREAM_DONE : r;
        }
        base += c;
    }
}

