/*
 * dispatch.c - which parser gets a payload (contract in dispatch.h).
 *
 * UDP is dispatched on ports (DNS 53, mDNS 5353, LLMNR 5355, DHCP 67/68,
 * SSDP 1900, either side); any other datagram whose first byte has the long-header bit
 * goes to the QUIC parser, on every port. TCP is dispatched per direction on
 * its first bytes: port 53 means DNS-over-TCP framing, a TLS handshake
 * record (0x16 0x03) means TLS in either direction, an HTTP/1.x method on the
 * client side means HTTP; a SOCKS preamble on port 1080, an HTTP CONNECT
 * request and the proxy's 2xx answer are stepped over and the bytes inside
 * the tunnel dispatched again, and so are MySQL's TLS preamble on port 3306
 * (the server's greeting, the client's SSL request: the TLS handshake follows
 * on the same stream) and the text lines before STARTTLS of the mail
 * protocols (SMTP 25/587, POP3 110, IMAP 143); anything else is declined at
 * once so the packet path stops buffering it.
 */
#include "dispatch.h"

/* ---- UDP ---------------------------------------------------------------- */

static int port_is(const pc_meta *m, uint16_t p)
{
    return m->sport == p || m->dport == p;
}

/*
 * One whole UDP datagram of a flow, either direction: hands it to the parser
 * its ports name (see the file comment). *app is the flow's QUIC state.
 */
void pc_app_udp(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len)
{
    if (port_is(m, 53))
        pc_dns_message(cx, m, data, len);
    else if (port_is(m, 5353))
        pc_dns_message_kind(cx, m, data, len, PC_EV_MDNS_QUERY, 0);
    else if (port_is(m, 5355))
        pc_dns_message_kind(cx, m, data, len, PC_EV_LLMNR_QUERY, 0);
    else if (port_is(m, 67) || port_is(m, 68))
        pc_dhcp_message(cx, m, data, len);
    else if (port_is(m, 1900))
        pc_http_datagram(cx, m, data, len);
    else if (len > 0 && (data[0] & 0x80))
        pc_quic_datagram(cx, m, app, data, len);
}

/* The UDP flow ends: only QUIC keeps state; it reports and frees it. */
void pc_app_udp_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app)
{
    if (*app)
        pc_quic_end(cx, m, app);
}

/* ---- TCP ---------------------------------------------------------------- */

/*
 * The end of a SOCKS5 request or reply that starts at d[p] (VER CMD|REP RSV
 * ATYP ADDR PORT; the caller has checked that its first 5 bytes are here):
 * the preamble's length when all of it is here, 0 when more bytes are
 * needed, -1 for an unknown address type.
 */
static long socks5_addr_end(const uint8_t *d, size_t len, size_t p)
{
    switch (d[p + 3]) {
    case 1: p += 4 + 4 + 2; break;
    case 3: p += 4 + 1 + (size_t)d[p + 4] + 2; break;
    case 4: p += 4 + 16 + 2; break;
    default: return -1;
    }
    return len < p ? 0 : (long)p;
}

/*
 * Length of a SOCKS client preamble at data (SOCKS4/4a request, or SOCKS5
 * greeting [+ username/password sub-negotiation] + request): > 0 when it is
 * all here, 0 when more bytes are needed, -1 when the bytes are not SOCKS.
 */
static long socks_client_len(const uint8_t *d, size_t len)
{
    size_t p;

    if (len < 1)
        return 0;
    if (d[0] == 4) {                         /* VN CD DSTPORT DSTIP USERID 0 [HOST 0] */
        int socks4a;
        if (len < 8)
            return 0;
        socks4a = d[4] == 0 && d[5] == 0 && d[6] == 0 && d[7] != 0;
        for (p = 8; p < len && d[p]; p++)
            if (p > 8 + 255)
                return -1;
        if (p >= len)
            return 0;
        p++;
        if (socks4a) {
            for (; p < len && d[p]; p++)
                if (p > 8 + 512)
                    return -1;
            if (p >= len)
                return 0;
            p++;
        }
        return (long)p;
    }
    if (d[0] != 5)
        return -1;
    if (len < 2)
        return 0;
    if (d[1] == 0 || d[1] > 16)
        return -1;
    p = 2 + (size_t)d[1];                    /* greeting: VER NMETHODS METHODS */
    if (len < p + 1)
        return 0;
    if (d[p] == 1) {                         /* RFC 1929 username/password */
        if (len < p + 2 || len < p + 2 + d[p + 1] + 1)
            return 0;
        p += 2 + (size_t)d[p + 1];
        p += 1 + (size_t)d[p];
        if (len < p + 1)
            return 0;
    }
    if (d[p] != 5)                           /* request: VER CMD RSV ATYP ADDR PORT */
        return -1;
    if (len < p + 5)
        return 0;
    return socks5_addr_end(d, len, p);
}

/* Length of a SOCKS server preamble (the replies to the client's preamble); as above. */
static long socks_server_len(const uint8_t *d, size_t len)
{
    size_t p;

    if (len < 1)
        return 0;
    if (d[0] == 0)                           /* SOCKS4 reply: 8 bytes */
        return len < 8 ? 0 : 8;
    if (d[0] != 5)
        return -1;
    if (len < 2)
        return 0;
    p = 2;                                   /* method selection */
    if (d[1] == 2) {                         /* username/password status */
        if (len < p + 2)
            return 0;
        p += 2;
    }
    if (len < p + 5)
        return 0;
    if (d[p] != 5 || d[p + 1] != 0)          /* refused: nothing to follow */
        return -1;
    return socks5_addr_end(d, len, p);
}

/*
 * A preamble of n bytes before the protocol that matters (a SOCKS request or
 * reply on port 1080, MySQL's TLS preamble on port 3306; n as their _len
 * functions return it): consumes it and hands the direction back to the
 * dispatcher (ds->app = PC_APP_NONE), so TLS or HTTP after it is parsed as
 * if it were direct.
 */
static int preamble_stream(long n, pc_dirstate *ds, int final, size_t *consumed)
{
    *consumed = 0;
    if (n < 0 || (n == 0 && final))
        return PC_STREAM_DONE;
    if (n == 0)
        return PC_STREAM_MORE;
    *consumed = (size_t)n;
    memset(ds, 0, sizeof *ds);
    return PC_STREAM_MORE;
}

/*
 * Length of MySQL's TLS preamble at d on port 3306 (packet = 3-byte
 * little-endian length, sequence number, payload): the server's greeting
 * (sequence 0, protocol 10) or the client's 32-byte SSL request (sequence 1,
 * capability CLIENT_SSL 0x0800), after which each side's TLS handshake
 * starts. > 0 when it is all here, 0 when more bytes are needed, -1 when the
 * bytes are not that preamble. A greeting is at most a few hundred bytes:
 * a longer one is not buffered for.
 */
static long mysql_tls_preamble_len(const pc_meta *m, const uint8_t *d, size_t len)
{
    size_t body;

    if (len < 5)
        return 0;
    body = (size_t)d[0] | (size_t)d[1] << 8 | (size_t)d[2] << 16;
    if (!m->from_client) {
        if (d[3] != 0 || d[4] != 0x0a || body < 1 || body > 1024)
            return -1;
    } else {
        if (d[3] != 1 || body != 32)
            return -1;
        if (len < 8)
            return 0;
        if (!(d[5] & 0x08))     /* CLIENT_SSL, bit 11 of the little-endian capabilities */
            return -1;
    }
    return len < 4 + body ? 0 : (long)(4 + body);
}

/* The mail ports whose text conversation may turn into TLS (STARTTLS, STLS). */
static int starttls_port(const pc_meta *m)
{
    return port_is(m, 25) || port_is(m, 587) || port_is(m, 110) || port_is(m, 143);
}

/* A text conversation is read for its STARTTLS this far per direction, no further. */
#define STARTTLS_MAX_BYTES 16384u

/*
 * The text lines of a mail protocol before STARTTLS (either side): consumes
 * whole printable lines, and when the next byte starts a TLS handshake
 * record hands the direction back to the dispatcher (ds->app = PC_APP_NONE)
 * so TLS is parsed. Done at anything else, or past STARTTLS_MAX_BYTES (the
 * mail itself, sent in the clear). ds->u32[0] counts the bytes consumed.
 */
static int starttls_stream(pc_dirstate *ds, const uint8_t *data, size_t len, int final, size_t *consumed)
{
    size_t p = 0;

    *consumed = 0;
    for (;;) {
        size_t e = p;
        if (p < len && data[p] == 0x16) {
            *consumed = p;
            memset(ds, 0, sizeof *ds);
            return PC_STREAM_MORE;
        }
        while (e < len && data[e] != '\n' && (data[e] == '\r' || data[e] == '\t' ||
                                              (data[e] >= 0x20 && data[e] < 0x7f)))
            e++;
        if (ds->u32[0] + (e - p) > STARTTLS_MAX_BYTES)
            return PC_STREAM_DONE;
        if (e == len) {                 /* a line not ended yet (or nothing more) */
            *consumed = p;
            return final ? PC_STREAM_DONE : PC_STREAM_MORE;
        }
        if (data[e] != '\n')
            return PC_STREAM_DONE;      /* not text */
        ds->u32[0] += (uint32_t)(e + 1 - p);
        p = e + 1;
    }
}

/*
 * Chooses the parser of a TCP direction from its first bytes. Returns the
 * PC_APP_* id, or PC_APP_NONE when more bytes are needed to tell.
 */
static uint8_t choose_tcp(const pc_meta *m, const uint8_t *data, size_t len, int final)
{
    if (port_is(m, 53))
        return PC_APP_DNS;
    if (len == 0)
        return final ? PC_APP_SKIP : PC_APP_NONE;
    if (data[0] == 0x16) {
        if (len < 2)
            return final ? PC_APP_SKIP : PC_APP_NONE;
        return data[1] == 0x03 ? PC_APP_TLS : PC_APP_SKIP;
    }
    if (port_is(m, 1080) && (data[0] == 5 || data[0] == 4 || (data[0] == 0 && !m->from_client)))
        return PC_APP_SOCKS;
    if (port_is(m, 3306)) {
        long n = mysql_tls_preamble_len(m, data, len);
        if (n > 0 || (n == 0 && !final))
            return PC_APP_MYSQL;
    }
    if (m->from_client) {
        int r = pc_http_is_request(data, len);
        if (r > 0)
            return PC_APP_HTTP;
        if (r < 0 && !final)
            return PC_APP_NONE;
    } else {
        int r = pc_http_is_response(data, len);
        if (r > 0)
            return PC_APP_HTTPRESP;
        if (r < 0 && !final)
            return PC_APP_NONE;
    }
    if (starttls_port(m) && data[0] >= 0x20 && data[0] < 0x7f)
        return PC_APP_STARTTLS;
    return PC_APP_SKIP;
}

/*
 * The in-order bytes of one TCP direction (contract in dispatch.h): picks a
 * parser, then feeds it. A tunnel preamble (SOCKS, HTTP CONNECT and its 200
 * answer) is consumed by its parser, which hands the direction back here to
 * choose again for the bytes inside the tunnel. After PC_STREAM_DONE
 * everything is consumed.
 */
int pc_app_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
               const uint8_t *data, size_t len, int final, size_t *consumed)
{
    size_t base = 0;

    *consumed = 0;
    if (ds->done)
        goto done;
    for (;;) {
        size_t c = 0;
        uint8_t app;
        int r;
        if (ds->app == PC_APP_NONE && base == 0 && len >= 1 && data[0] == 0 && !port_is(m, 53)
            && !port_is(m, 1080) && !port_is(m, 3306)) {
            /* A flow picked up without its SYN may start with a TCP
             * keep-alive probe: one garbage byte (0x00) just before the
             * next real data. Step over it when TLS or HTTP follows. */
            uint8_t next;
            if (len == 1) {
                if (final)
                    goto done;
                return PC_STREAM_MORE;
            }
            next = choose_tcp(m, data + 1, len - 1, final);
            if (next == PC_APP_NONE)
                return PC_STREAM_MORE;
            if (next == PC_APP_TLS || next == PC_APP_HTTP || next == PC_APP_HTTPRESP)
                base = 1;
        }
        if (ds->app == PC_APP_NONE) {
            ds->app = choose_tcp(m, data + base, len - base, final);
            if (ds->app == PC_APP_NONE) {
                *consumed = base;
                return PC_STREAM_MORE;
            }
        }
        app = ds->app;
        switch (app) {
        case PC_APP_TLS:
            r = pc_tls_stream(cx, m, ds, data + base, len - base, final, &c);
            break;
        case PC_APP_HTTP:
            r = pc_http_stream(cx, m, ds, data + base, len - base, final, &c);
            break;
        case PC_APP_HTTPRESP:
            r = pc_http_response(ds, data + base, len - base, final, &c);
            break;
        case PC_APP_DNS:
            r = pc_dns_tcp(cx, m, ds, data + base, len - base, final, &c);
            break;
        case PC_APP_SOCKS:
            r = preamble_stream(m->from_client ? socks_client_len(data + base, len - base)
                                               : socks_server_len(data + base, len - base), ds, final, &c);
            break;
        case PC_APP_MYSQL:
            r = preamble_stream(mysql_tls_preamble_len(m, data + base, len - base), ds, final, &c);
            break;
        case PC_APP_STARTTLS:
            r = starttls_stream(ds, data + base, len - base, final, &c);
            break;
        default:
            r = PC_STREAM_DONE;
            break;
        }
        if (c > len - base)     /* a parser bug must not become the packet path's */
            goto done;
        base += c;
        if (r != PC_STREAM_MORE)
            goto done;
        /* (STARTTLS hands back with nothing consumed when a segment starts
         * with the TLS record; choosing again then picks TLS, never itself) */
        if (ds->app != PC_APP_NONE || (c == 0 && app != PC_APP_STARTTLS)) {
            if (final)
                goto done;
            *consumed = base;
            return PC_STREAM_MORE;
        }
        /* handed back after a tunnel preamble: choose again for the rest */
    }
done:
    ds->done = 1;
    *consumed = len;
    return PC_STREAM_DONE;
}
