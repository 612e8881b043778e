/*
 * dns.c - DNS-format messages (DNS, mDNS, LLMNR) into query and answer events.
 *
 * Choices, so the events can be compared with tshark's dns.qry.name /
 * dns.resp.name:
 *  - DNS (port 53): the questions of a query (QR=0) become PC_EV_DNS_QUERY
 *    (tshark: dns.flags.response == 0); the question echoed in a response
 *    becomes PC_EV_DNS_RESPONSE_QUESTION, so a reader can tell the phone's
 *    own query from a name known only from the answer to it (the query was
 *    not captured, or is reported as well). A response's events (its
 *    question and answers) name the response's destination as src and mac:
 *    the one who asked, even when the flow's first packet seen was the
 *    response and the flow's "client" is therefore the server;
 *  - mDNS (5353) and LLMNR (5355): only the questions of queries (QR=0)
 *    become events; their answers are not reported at all (they describe
 *    names on the local link, answered by any device);
 *  - answers of type A, AAAA and CNAME become PC_EV_DNS_ANSWER (owner name,
 *    address text as inet_ntop writes it / CNAME target, type, TTL); the
 *    authority and additional sections are not read;
 *  - names keep their case; the root is "." (tshark shows "<Root>");
 *    non-printable label bytes are escaped as "\DDD" (see pc_dns_name).
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "parsers.h"

#define DNS_MAX_HOPS 64

/* Appends one label byte in presentation form; returns the new length. */
static size_t put_label_byte(char *out, size_t o, uint8_t c)
{
    if (c == '.' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (char)c;
    } else if (c < 0x21 || c > 0x7e) {
        out[o++] = '\\';
        out[o++] = (char)('0' + c / 100);
        out[o++] = (char)('0' + (c / 10) % 10);
        out[o++] = (char)('0' + c % 10);
    } else {
        out[o++] = (char)c;
    }
    return o;
}

/*
 * Reads the name at msg[off] into out; contract in parsers.h. The output
 * cannot overflow: at most 255 wire bytes, each label byte at most 4
 * characters plus one separator per label, so < PC_DNS_NAME_MAX.
 */
int pc_dns_name(const uint8_t *msg, size_t len, size_t off, char *out, size_t *next)
{
    size_t pos = off, limit = off, o = 0, wire = 0;
    int jumped = 0, hops = 0;

    for (;;) {
        uint8_t c;
        if (pos >= len)
            return -1;
        c = msg[pos];
        if (c == 0) {
            if (!jumped)
                *next = pos + 1;
            break;
        }
        if ((c & 0xC0) == 0xC0) {
            size_t target;
            if (pos + 1 >= len)
                return -1;
            target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
            /* Strictly decreasing jump targets: no loop can form. */
            if (target >= limit || ++hops > DNS_MAX_HOPS)
                return -1;
            if (!jumped)
                *next = pos + 2;
            jumped = 1;
            limit = target;
            pos = target;
            continue;
        }
        if (c & 0xC0)           /* 0x40 / 0x80: extended or reserved label types */
            return -1;
        if (pos + 1 + c > len)
            return -1;
        wire += (size_t)c + 1;
        if (wire + 1 > 255)     /* + the root byte */
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t i = 0; i < c; i++)
            o = put_label_byte(out, o, msg[pos + 1 + i]);
        pos += 1 + (size_t)c;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = 0;
    return (int)o;
}

/*
 * The flow fields of a response's events: the asker (the response's
 * destination) as src, sport and mac, the server as dst. A flow picked up
 * at the response has the server as its client, so that side is swapped.
 */
static pc_meta asker_meta(const pc_meta *m)
{
    pc_meta r = *m;

    if (m->from_client) {
        memcpy(r.src, m->dst, 16);
        memcpy(r.dst, m->src, 16);
        r.sport = m->dport;
        r.dport = m->sport;
        memcpy(r.mac, m->pkt_dst_mac, 6);
        /* An all-zero MAC is "the link layer did not say" (flow.h). */
        r.has_mac = (uint8_t)(memcmp(r.mac, (const uint8_t[6]){ 0 }, 6) != 0);
        r.from_client = 0;
    }
    return r;
}

/* Fills the string part of o and queues it. */
static void emit_str(pc_ctx *cx, const pc_meta *m, pc_out *o,
                     const char *name, size_t name_len, const char *data, size_t data_len)
{
    o->name.p = (const uint8_t *)name;
    o->name.n = name_len;
    o->data.p = (const uint8_t *)data;
    o->data.n = data_len;
    pc_emit(cx, m, o);
}

/*
 * Parses one DNS-format message; contract in parsers.h. Damage stops the
 * walk (events already queued stay) and counts as malformed unless the
 * payload was known to be cut (m->truncated).
 */
void pc_dns_message_kind(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len,
                         uint32_t qkind, int answers)
{
    char name[PC_DNS_NAME_MAX];
    char data[PC_DNS_NAME_MAX];
    size_t off = 12;
    unsigned qd, an;
    pc_meta rm;
    pc_out o;

    if (len < 12)
        goto fail;
    qd = pc_rd16(msg + 4);
    an = pc_rd16(msg + 6);
    if (msg[2] & 0x80) {
        /* mDNS / LLMNR: only queries tell what this device asks for; their
         * responses answer other devices too. */
        if (!answers)
            return;
        qkind = PC_EV_DNS_RESPONSE_QUESTION;
        rm = asker_meta(m);
        m = &rm;
    }

    for (unsigned i = 0; i < qd; i++) {
        size_t next = 0;
        int n = pc_dns_name(msg, len, off, name, &next);
        if (n < 0 || next + 4 > len)
            goto fail;
        memset(&o, 0, sizeof o);
        o.kind = qkind;
        o.flags = m->truncated ? PC_EVF_PARTIAL : 0;
        o.rrtype = pc_rd16(msg + next);
        emit_str(cx, m, &o, name, (size_t)n, NULL, 0);
        off = next + 4;
    }
    if (!answers)
        return;
    for (unsigned i = 0; i < an; i++) {
        size_t next = 0, rdlen, rd;
        uint16_t type;
        int n = pc_dns_name(msg, len, off, name, &next);
        if (n < 0 || next + 10 > len)
            goto fail;
        type = pc_rd16(msg + next);
        rdlen = pc_rd16(msg + next + 8);
        rd = next + 10;
        if (rd + rdlen > len)
            goto fail;
        memset(&o, 0, sizeof o);
        o.kind = PC_EV_DNS_ANSWER;
        o.flags = m->truncated ? PC_EVF_PARTIAL : 0;
        o.rrtype = type;
        o.ttl = pc_rd32(msg + next + 4);
        if (type == 1 && rdlen == 4) {
            if (inet_ntop(AF_INET, msg + rd, data, sizeof data))
                emit_str(cx, m, &o, name, (size_t)n, data, strlen(data));
        } else if (type == 28 && rdlen == 16) {
            if (inet_ntop(AF_INET6, msg + rd, data, sizeof data))
                emit_str(cx, m, &o, name, (size_t)n, data, strlen(data));
        } else if (type == 5) {
            size_t cnext = 0;
            /* The target must lie inside the RDATA; pointers may leave it. */
            int dn = pc_dns_name(msg, rd + rdlen, rd, data, &cnext);
            if (dn < 0)
                goto fail;
            emit_str(cx, m, &o, name, (size_t)n, data, (size_t)dn);
        }
        off = rd + rdlen;
    }
    return;
fail:
    if (!m->truncated)
        pc_count_malformed(cx);
}

/*
 * One whole DNS message over UDP (or one TCP message without its length):
 * queries and answers, see the file comment.
 */
void pc_dns_message(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len)
{
    pc_dns_message_kind(cx, m, msg, len, PC_EV_DNS_QUERY, 1);
}

/*
 * DNS over TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its
 * 2-byte length; a segment may carry several messages and a message may span
 * segments. Only whole messages are consumed; the packet path keeps the
 * rest. At the end of the direction a cut last message is parsed as far as
 * it goes (its events carry PC_EVF_PARTIAL).
 */
int pc_dns_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
               const uint8_t *data, size_t len, int final, size_t *consumed)
{
    size_t off = 0;

    (void)ds;
    while (len - off >= 2) {
        size_t mlen = pc_rd16(data + off);
        if (mlen > len - off - 2)
            break;
        pc_dns_message(cx, m, data + off + 2, mlen);
        off += 2 + mlen;
    }
    *consumed = off;
    if (final) {
        if (len - off > 2) {
            pc_meta cut = *m;
            cut.truncated = 1;
            pc_dns_message(cx, &cut, data + off + 2, len - off - 2);
        }
        *consumed = len;
        return PC_STREAM_DONE;
    }
    return PC_STREAM_MORE;
}
