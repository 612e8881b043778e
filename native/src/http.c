/*
 * http.c - the client side of HTTP/1.x: one PC_EV_HTTP_HOST per request.
 *
 * Requests may be pipelined; a body announced by Content-Length is skipped
 * to reach the next request. A chunked body, a head larger than
 * PC_HTTP_MAX_HEAD (8 KB) or bytes that do not start a request end the
 * parsing of the direction. A CONNECT request (and on the server side its
 * 1xx/2xx answer without a body) hands the direction back to the dispatcher
 * in dispatch.c, so the TLS inside the tunnel is parsed too. A request without a Host header (HTTP/1.0 to a
 * bare address) produces no event: the flow's address already tells where it
 * went. SSDP requests over UDP (port 1900) are reported the same way
 * (pc_http_datagram). Strings are made ASCII-safe with pc_text_escape(); the Host loses its
 * port ("example.com:8080" -> "example.com", "[2001:db8::1]:80" ->
 * "2001:db8::1").
 */
#include <stdio.h>

#include "parsers.h"
#include "text.h"

/* pc_dirstate use: u32[0] = body bytes still to skip, u32[1] = bytes of a
 * cut head at data[0] already searched for its end. */

static const char *const methods[] = {
    "GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "CONNECT", "TRACE",
    "M-SEARCH", "NOTIFY",   /* SSDP (HTTP over UDP 1900) */
};

/* Whether data starts an HTTP request; contract in parsers.h. */
int pc_http_is_request(const uint8_t *data, size_t len)
{
    int maybe = 0;

    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        size_t ml = strlen(methods[i]);
        size_t n = len < ml ? len : ml;
        if (memcmp(data, methods[i], n) != 0)
            continue;
        if (len <= ml) {
            maybe = 1;
            continue;
        }
        if (data[ml] == ' ')
            return 1;
    }
    return maybe ? -1 : 0;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Case-insensitive comparison of a header name of length n with lit. */
static int name_is(const uint8_t *p, size_t n, const char *lit)
{
    size_t ll = strlen(lit);
    if (n != ll)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != lit[i])
            return 0;
    return 1;
}

/* Whether value (n bytes) contains lit (lower case) case-insensitively. */
static int value_has(const uint8_t *p, size_t n, const char *lit)
{
    size_t ll = strlen(lit);
    for (size_t i = 0; i + ll <= n; i++) {
        size_t j = 0;
        while (j < ll && lower(p[i + j]) == lit[j])
            j++;
        if (j == ll)
            return 1;
    }
    return 0;
}

/* Trims spaces and tabs on both sides of [*p, *p + *n). */
static void trim(const uint8_t **p, size_t *n)
{
    while (*n && ((*p)[0] == ' ' || (*p)[0] == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
        (*n)--;
}

/* Host header value without its port; brackets of an IPv6 literal removed. */
static void host_strip_port(const uint8_t **p, size_t *n)
{
    const uint8_t *h = *p;
    size_t len = *n, colons = 0, i;

    if (len && h[0] == '[') {
        for (i = 1; i < len && h[i] != ']'; i++)
            ;
        *p = h + 1;
        *n = i - 1;
        return;
    }
    for (i = 0; i < len; i++)
        colons += h[i] == ':';
    if (colons == 1) {       /* more than one: a bare IPv6 literal, keep it */
        for (i = 0; h[i] != ':'; i++)
            ;
        *n = i;
    }
}

/* What one request head gave. */
typedef struct http_req {
    const uint8_t *method, *target, *host, *ua;
    size_t method_n, target_n, host_n, ua_n;
    uint64_t content_length;
    int chunked, bad_length;
} http_req;

/*
 * Parses the request line and the header lines of head (n bytes, ending
 * before or at the blank line). A missing or malformed piece stays empty.
 */
static void parse_head(const uint8_t *head, size_t n, http_req *q)
{
    size_t i = 0, line_end;

    memset(q, 0, sizeof *q);
    /* request line: method SP target SP version */
    for (line_end = 0; line_end < n && head[line_end] != '\n'; line_end++)
        ;
    q->method = head;
    while (i < line_end && head[i] != ' ')
        i++;
    q->method_n = i;
    while (i < line_end && head[i] == ' ')
        i++;
    q->target = head + i;
    while (i < line_end && head[i] != ' ' && head[i] != '\r')
        i++;
    q->target_n = (size_t)(head + i - q->target);

    for (i = line_end + 1; i < n;) {
        size_t s = i, colon = 0, e;
        for (e = s; e < n && head[e] != '\n'; e++)
            if (!colon && head[e] == ':')
                colon = e;
        if (colon > s) {
            const uint8_t *v = head + colon + 1;
            size_t vn = e - colon - 1;
            trim(&v, &vn);
            if (name_is(head + s, colon - s, "host") && !q->host) {
                q->host = v;
                q->host_n = vn;
            } else if (name_is(head + s, colon - s, "user-agent") && !q->ua) {
                q->ua = v;
                q->ua_n = vn;
            } else if (name_is(head + s, colon - s, "content-length")) {
                uint64_t cl = 0;
                if (vn == 0)
                    q->bad_length = 1;
                for (size_t k = 0; k < vn && !q->bad_length; k++) {
                    if (v[k] < '0' || v[k] > '9')
                        q->bad_length = 1;
                    cl = cl * 10 + (uint64_t)(v[k] - '0');
                    if (cl > 0xFFFFFFFFull)   /* no body we could skip anyway */
                        q->bad_length = 1;
                }
                q->content_length = cl;
            } else if (name_is(head + s, colon - s, "transfer-encoding")) {
                if (value_has(v, vn, "chunked"))
                    q->chunked = 1;
            }
        }
        i = e + 1;
    }
}

/* Emits the event of one request head (nothing without a Host header). */
static void emit_request(pc_ctx *cx, const pc_meta *m, const http_req *q, int partial)
{
    char host[1024], path[4096], method[64], ua[1024];
    const uint8_t *h = q->host;
    size_t hn = q->host_n;
    pc_out o;

    if (!h)
        return;
    host_strip_port(&h, &hn);
    memset(&o, 0, sizeof o);
    o.kind = PC_EV_HTTP_HOST;
    o.flags = (partial || m->truncated) ? PC_EVF_PARTIAL : 0;
    o.name.p = (const uint8_t *)host;
    o.name.n = pc_text_escape(host, sizeof host, h, hn);
    o.data.p = (const uint8_t *)path;
    o.data.n = pc_text_escape(path, sizeof path, q->target, q->target_n);
    o.s1.p = (const uint8_t *)method;
    o.s1.n = pc_text_escape(method, sizeof method, q->method, q->method_n);
    o.s2.p = (const uint8_t *)ua;
    o.s2.n = q->ua ? pc_text_escape(ua, sizeof ua, q->ua, q->ua_n) : 0;
    pc_emit(cx, m, &o);
}

/*
 * Finds the end of a request head in data (at most PC_HTTP_MAX_HEAD bytes
 * are looked at): returns the length of the head including its blank line,
 * or 0 when none is there.
 */
static size_t head_end_from(const uint8_t *data, size_t len, size_t from)
{
    size_t n = len < PC_HTTP_MAX_HEAD ? len : PC_HTTP_MAX_HEAD;
    for (size_t i = from; i < n; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < n && data[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && data[i + 1] == '\r' && data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static size_t head_end(const uint8_t *data, size_t len)
{
    return head_end_from(data, len, 0);
}

/*
 * The client direction of an HTTP/1.x connection (pc_app_tcp contract):
 * consumes whole requests (head and Content-Length body), keeps a cut head
 * for the next call; at the end of the direction a cut head is reported
 * with PC_EVF_PARTIAL if its Host header is there.
 */
int pc_http_stream(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
                   const uint8_t *data, size_t len, int final, size_t *consumed)
{
    size_t off = 0;
    http_req q;

    for (;;) {
        size_t hl;
        int r;
        if (ds->u32[0]) {                    /* skipping a body */
            size_t take = len - off < ds->u32[0] ? len - off : ds->u32[0];
            off += take;
            ds->u32[0] -= (uint32_t)take;
            if (ds->u32[0])
                break;
        }
        if (off == len)
            break;
        r = pc_http_is_request(data + off, len - off);
        if (r == 0)
            goto done;
        if (r < 0)
            break;
        /* a head cut at the previous call was scanned up to u32[1] already
         * (back off 2 bytes: the blank line may straddle the cut) */
        hl = head_end_from(data + off, len - off,
                           off == 0 && ds->u32[1] > 2 ? (size_t)ds->u32[1] - 2 : 0);
        if (hl == 0) {
            if (len - off >= PC_HTTP_MAX_HEAD || final) {
                size_t n = len - off < PC_HTTP_MAX_HEAD ? len - off : PC_HTTP_MAX_HEAD;
                parse_head(data + off, n, &q);
                emit_request(cx, m, &q, 1);
                goto done;
            }
            ds->u32[1] = (uint32_t)(len - off);
            break;
        }
        ds->u32[1] = 0;
        parse_head(data + off, hl, &q);
        emit_request(cx, m, &q, 0);
        off += hl;
        if (q.method_n == 7 && !memcmp(q.method, "CONNECT", 7)) {
            /* a tunnel follows: the dispatcher chooses again for it */
            memset(ds, 0, sizeof *ds);
            *consumed = off;
            return PC_STREAM_MORE;
        }
        if (q.chunked || q.bad_length)
            goto done;
        ds->u32[0] = (uint32_t)q.content_length;
    }
    *consumed = off;
    if (final)
        return PC_STREAM_DONE;
    return PC_STREAM_MORE;
done:
    *consumed = len;
    return PC_STREAM_DONE;
}

/* Whether data starts an HTTP/1.x status line; contract in parsers.h. */
int pc_http_is_response(const uint8_t *data, size_t len)
{
    static const char lit[] = "HTTP/1.";
    size_t n = len < 7 ? len : 7;

    if (memcmp(data, lit, n) != 0)
        return 0;
    return len < 7 ? -1 : 1;
}

/*
 * The server side of HTTP (parsers.h): only the answer that opens a tunnel
 * (1xx, or 2xx without a body: the answer to CONNECT) is stepped over.
 */
int pc_http_response(pc_dirstate *ds, const uint8_t *data, size_t len, int final, size_t *consumed)
{
    http_req q;
    size_t hl = head_end(data, len);

    *consumed = 0;
    if (hl == 0)
        return (final || len >= PC_HTTP_MAX_HEAD) ? PC_STREAM_DONE : PC_STREAM_MORE;
    if (hl < 12 || data[8] != ' ' || data[9] < '1' || data[9] > '2')
        return PC_STREAM_DONE;
    parse_head(data, hl, &q);
    if (data[9] == '2' && (q.chunked || q.bad_length || q.content_length))
        return PC_STREAM_DONE;
    memset(ds, 0, sizeof *ds);
    *consumed = hl;
    return PC_STREAM_MORE;
}

/*
 * One UDP datagram carrying an HTTP-format request (SSDP on port 1900:
 * M-SEARCH, NOTIFY): reported like a TCP request; the head ends at the blank
 * line or at the end of the datagram (at most PC_HTTP_MAX_HEAD bytes read).
 */
void pc_http_datagram(pc_ctx *cx, const pc_meta *m, const uint8_t *data, size_t len)
{
    http_req q;
    size_t hl;

    if (pc_http_is_request(data, len) != 1)
        return;
    hl = head_end(data, len);
    if (hl == 0)
        hl = len < PC_HTTP_MAX_HEAD ? len : PC_HTTP_MAX_HEAD;
    parse_head(data, hl, &q);
    emit_request(cx, m, &q, 0);
}
