/*
 * format.c - writes extract records (JSON lines or TSV) for a batch of
 * events, so that `pocketcheck extract` keeps up with the core instead of
 * spending its time in Python string formatting.
 *
 * The output is byte for byte what appliance/extract.py writes for the same
 * event (tests/unit/test_extract_cli.py compares the two on every shared capture).
 * Events that need Python stop the batch: certificates (parsed with
 * cryptography) and strings holding bytes outside printable ASCII (Python
 * decodes them as UTF-8).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

typedef struct outbuf {
    char *p;
    size_t len, cap;
    int full;
} outbuf;

static void put(outbuf *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(outbuf *o, const char *s) { put(o, s, strlen(s)); }

static void put_u64(outbuf *o, uint64_t v)
{
    char b[24];
    size_t i = sizeof b;

    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, b + i, sizeof b - i);
}

/*
 * A float as Python's repr() writes it: the shortest text that reads back as
 * the same double. %g drops trailing zeros, and every decimal of at most 15
 * digits survives a double (DBL_DIG), so precision 15 already gives the
 * shortest text when one that short exists; else the correctly rounded 16-
 * or 17-digit one is the shortest.
 */
static void put_float(outbuf *o, double v)
{
    char b[40];
    int n = 0, p;

    for (p = 15; p <= 17; p++) {
        n = snprintf(b, sizeof b, "%.*g", p, v);
        if (strtod(b, NULL) == v)
            break;
    }
    if (!strpbrk(b, ".en"))   /* repr(1.0) is "1.0"; 'n' covers nan/inf, which never occur here */
        n += snprintf(b + n, sizeof b - (size_t)n, ".0");
    put(o, b, (size_t)n);
}

/* A string of the event: JSON-quoted, or TSV-escaped (\\ \t \n \r; the others cannot occur). */
static void put_str(outbuf *o, const uint8_t *sb, pc_str s, int json)
{
    const uint8_t *p = sb + s.off;
    uint32_t i, start = 0;

    if (json)
        put(o, "\"", 1);
    for (i = 0; i < s.len; i++) {
        const char *e = NULL;
        if (p[i] == '\\')
            e = "\\\\";
        else if (json && p[i] == '"')
            e = "\\\"";
        if (e) {
            put(o, (const char *)p + start, i - start);
            puts_(o, e);
            start = i + 1;
        }
    }
    put(o, (const char *)p + start, s.len - start);
    if (json)
        put(o, "\"", 1);
}

static int printable(const uint8_t *sb, pc_str s)
{
    for (uint32_t i = 0; i < s.len; i++)
        if (sb[s.off + i] < 0x20 || sb[s.off + i] > 0x7e)
            return 0;
    return 1;
}

/* A constant text: quoted in JSON, as it is in TSV (it holds nothing to escape). */
static void put_text(outbuf *o, const char *s, int json)
{
    if (json)
        put(o, "\"", 1);
    puts_(o, s);
    if (json)
        put(o, "\"", 1);
}

static void put_addr(outbuf *o, const pc_event *e, const uint8_t *a, int json)
{
    char b[INET6_ADDRSTRLEN] = "";

    if (e->ipver == 4)
        inet_ntop(AF_INET, a, b, sizeof b);
    else if (e->ipver == 6)
        inet_ntop(AF_INET6, a, b, sizeof b);
    put_text(o, b, json);
}

static void put_mac(outbuf *o, const pc_event *e, int json)
{
    char b[18] = "";

    if (e->has_mac)
        snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x",
                 e->mac[0], e->mac[1], e->mac[2], e->mac[3], e->mac[4], e->mac[5]);
    put_text(o, b, json);
}

/* JSON: , "key": */
static void key(outbuf *o, const char *k)
{
    puts_(o, ", \"");
    puts_(o, k);
    puts_(o, "\": ");
}

/* Before a field: JSON ', "key": ', TSV a tab. */
static void field(outbuf *o, const char *k, int json)
{
    if (json)
        key(o, k);
    else
        puts_(o, "\t");
}

/* The fields every record has, file to mac, in the order of extract.py's columns. */
static void common_fields(outbuf *o, const pc_event *e, const uint8_t *sb, const char *file, size_t file_len,
                          int json)
{
    if (json)
        puts_(o, "{\"file\": ");
    put(o, file, file_len);
    field(o, "frame", json); put_u64(o, e->frame);
    field(o, "ts", json); put_float(o, (double)e->ts_ns / 1e9);
    field(o, "kind", json); put_text(o, pc_kind_name(e->kind), json);
    field(o, "name", json); put_str(o, sb, e->name, json);
    field(o, "proto", json); put_text(o, e->proto == 6 ? "tcp" : e->proto == 17 ? "udp" : "", json);
    field(o, "src", json); put_addr(o, e, e->src, json);
    field(o, "sport", json); put_u64(o, e->sport);
    field(o, "dst", json); put_addr(o, e, e->dst, json);
    field(o, "dport", json); put_u64(o, e->dport);
    field(o, "mac", json); put_mac(o, e, json);
}

static void json_line(outbuf *o, const pc_event *e, const uint8_t *sb, const char *file, size_t file_len)
{
    uint32_t k = e->kind;

    common_fields(o, e, sb, file, file_len, 1);
    if (e->flags & PC_EVF_PARTIAL) {
        key(o, "partial"); puts_(o, "true");
    }
    if (k == PC_EV_DNS_ANSWER) {
        key(o, "rrtype"); put_u64(o, e->rrtype);
        key(o, "data"); put_str(o, sb, e->data, 1);
        key(o, "ttl"); put_u64(o, e->ttl);
    } else if (k == PC_EV_DNS_QUERY || k == PC_EV_DNS_RESPONSE_QUESTION || k == PC_EV_MDNS_QUERY
               || k == PC_EV_LLMNR_QUERY) {
        key(o, "rrtype"); put_u64(o, e->rrtype);
    } else if (k == PC_EV_TLS_SNI || k == PC_EV_QUIC_SNI) {
        key(o, "ja4"); put_str(o, sb, e->s1, 1);
        key(o, "ja3"); put_str(o, sb, e->s2, 1);
        key(o, "alpn"); put_str(o, sb, e->s3, 1);
    } else if (k == PC_EV_HTTP_HOST) {
        key(o, "method"); put_str(o, sb, e->s1, 1);
        key(o, "path"); put_str(o, sb, e->data, 1);
        key(o, "user_agent"); put_str(o, sb, e->s2, 1);
    } else if (k == PC_EV_DHCP) {
        key(o, "data"); put_str(o, sb, e->data, 1);
    } else if (k == PC_EV_FLOW) {
        key(o, "pkts"); puts_(o, "["); put_u64(o, e->pkts[0]); puts_(o, ", "); put_u64(o, e->pkts[1]); puts_(o, "]");
        key(o, "bytes"); puts_(o, "["); put_u64(o, e->bytes[0]); puts_(o, ", "); put_u64(o, e->bytes[1]); puts_(o, "]");
        key(o, "first"); put_float(o, (double)e->first_ns / 1e9);
        key(o, "last"); put_float(o, (double)e->last_ns / 1e9);
        key(o, "tcp_state"); put_u64(o, e->tcp_state);
        key(o, "evicted"); puts_(o, (e->flags & PC_EVF_EVICTED) ? "true" : "false");
    }
    puts_(o, "}\n");
}

static void tsv_line(outbuf *o, const pc_event *e, const uint8_t *sb, const char *file, size_t file_len)
{
    uint32_t k = e->kind;
    pc_str detail = {0, 0};

    common_fields(o, e, sb, file, file_len, 0);
    /* detail: the first non-empty of data, ja4, path (as extract.py's _detail). */
    if (k == PC_EV_DNS_ANSWER || k == PC_EV_DHCP)
        detail = e->data;
    else if (k == PC_EV_TLS_SNI || k == PC_EV_QUIC_SNI)
        detail = e->s1;
    else if (k == PC_EV_HTTP_HOST)
        detail = e->data;
    puts_(o, "\t"); put_str(o, sb, detail, 0);
    puts_(o, "\n");
}

/* See pocketcheck.h. */
int pc_format_events(const pc_event *ev, size_t n, const uint8_t *strbuf, int fmt, int flows,
                     const char *file, size_t file_len, char *out, size_t outcap, size_t *done)
{
    outbuf o = { out, 0, outcap > INT32_MAX ? INT32_MAX : outcap, 0 };
    size_t i;

    if (ev == NULL || strbuf == NULL || out == NULL || done == NULL || file == NULL
        || (fmt != PC_FMT_JSONL && fmt != PC_FMT_TSV))
        return PC_ERR_ARG;
    for (i = 0; i < n; i++) {
        const pc_event *e = &ev[i];
        size_t before = o.len;

        if (e->kind == PC_EV_FLOW && !flows)
            continue;
        if (e->kind == PC_EV_TLS_CERT || pc_kind_name(e->kind) == NULL
            || !printable(strbuf, e->name) || !printable(strbuf, e->data) || !printable(strbuf, e->s1)
            || !printable(strbuf, e->s2) || !printable(strbuf, e->s3))
            break;  /* Python formats this one */
        if (fmt == PC_FMT_JSONL)
            json_line(&o, e, strbuf, file, file_len);
        else
            tsv_line(&o, e, strbuf, file, file_len);
        if (o.full) {
            o.len = before;
            break;
        }
    }
    *done = i;
    return (int)o.len;
}
