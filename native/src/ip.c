/*
 * ip.c - IPv4 and IPv6 (extension headers, bounded walk), IP fragment
 * reassembly (the first copy of any block wins; rules in native/README.md,
 * "IP fragments"), tunnels (IP-in-IP, 6in4, Teredo, bounded depth) and the
 * UDP header. TCP segments and UDP payloads go on to flow.c.
 *
 * Called by link.c (and itself, for tunnels); calls flow.c only.
 */
#include "engine.h"

/* Bounds on walks over attacker-controlled headers. */
#define MAX_V6_EXT      8    /* IPv6 extension headers walked in one packet */
#define MAX_TUNNEL      3    /* IP nesting depth (6in4, IP-in-IP, Teredo) */

/* IP reassembly: datagrams are at most 64 KiB; a datagram incomplete after
 * this long is dropped (RFC 791 suggests 15 s, Linux uses 30 s). */
#define FRAG_MAX_PAYLOAD 65535u
#define FRAG_TIMEOUT_NS  (30LL * NS_PER_S)

/* One IP datagram being reassembled. */
/* One IP datagram being reassembled. */
struct pc_frag {
    struct pc_frag *next;           /* oldest first */
    uint8_t ipver, proto;           /* proto: IPv4 protocol / IPv6 next header after the fragment header */
    uint8_t truncated, pad;
    uint32_t id;
    uint8_t src[16], dst[16];
    int64_t first_ns;
    uint32_t total;                 /* payload length, known once the last fragment came */
    uint32_t nblocks;               /* 8-byte blocks filled */
    uint32_t cap;
    uint32_t nfrags;
    uint8_t *buf;
    uint8_t bits[(FRAG_MAX_PAYLOAD + 7) / 8 / 8 + 1]; /* one bit per 8-byte block */
};

/* ---- UDP and tunnels in UDP --------------------------------------------- */

static void v6_walk(pc_ctx *cx, const pc_pkt *pk, int nh, const uint8_t *src, const uint8_t *dst,
                    const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut, int frag_ok);


/*
 * Teredo (RFC 4380): IPv6 in UDP port 3544, optionally preceded by an
 * authentication and/or an origin indication header. Returns 1 when the
 * payload was an IPv6 packet and has been decoded.
 */
static int teredo(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n >= 2 && p[0] == 0 && p[1] == 1) { /* authentication header */
        if (n < 4)
            return 0;
        size_t skip = 4 + (size_t)p[2] + p[3] + 8 + 1;
        if (skip > n)
            return 0;
        p += skip;
        n -= skip;
    }
    if (n >= 2 && p[0] == 0 && p[1] == 0) { /* origin indication */
        if (n < 8)
            return 0;
        p += 8;
        n -= 8;
    }
    if (n < 40 || (p[0] >> 4) != 6 || (size_t)pc_rd16(p + 4) + 40 > n)
        return 0;
    pc_ip_packet(cx, pk, p, n, depth + 1, cut);
    return 1;
}

/* A UDP header: Teredo is decoded here, every other datagram goes to its flow. */
static void udp_packet(pc_ctx *cx, const pc_pkt *pk, int ipver, const uint8_t *src, const uint8_t *dst,
                       const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut)
{
    if (n < 8) {
        cx->st.malformed++;
        return;
    }
    uint16_t sport = pc_rd16(p), dport = pc_rd16(p + 2);
    size_t ulen = pc_rd16(p + 4);
    if (ulen == 0 && ipver == 6) /* jumbogram or offload: trust the IP length */
        ulen = n;
    if (ulen < 8) {
        cx->st.malformed++;
        return;
    }
    if (ulen > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        ulen = n;
    } else {
        cut = 0; /* the snapshot kept the whole datagram */
    }
    const uint8_t *data = p + 8;
    size_t dlen = ulen - 8;
    if ((sport == 3544 || dport == 3544) && depth < MAX_TUNNEL && teredo(cx, pk, data, dlen, depth, cut))
        return;
    pc_flow_udp(cx, pk, ipver, src, dst, sport, dport, data, dlen, iplen, cut);
}

static void l4(pc_ctx *cx, const pc_pkt *pk, int ipver, int proto, const uint8_t *src, const uint8_t *dst,
               const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut)
{
    switch (proto) {
    case 6:
        pc_flow_tcp(cx, pk, ipver, src, dst, p, n, iplen, cut);
        break;
    case 17:
        udp_packet(cx, pk, ipver, src, dst, p, n, iplen, depth, cut);
        break;
    case 4:  /* IPv4 in IP */
    case 41: /* IPv6 in IP (6in4, 6to4, ISATAP) */
        if (depth < MAX_TUNNEL)
            pc_ip_packet(cx, pk, p, n, depth + 1, cut);
        break;
    default:
        break; /* ICMP and the rest: nothing for us */
    }
}

static void frag_free(pc_ctx *cx, pc_frag *fr)
{
    cx->frag_mem -= sizeof *fr + fr->cap;
    pc_free(fr->buf);
    pc_free(fr);
}

/* Unlinks and frees the pending datagram *pp; counts its fragments as dropped. */
static void frag_drop(pc_ctx *cx, pc_frag **pp, pc_frag *prev)
{
    pc_frag *fr = *pp;
    *pp = fr->next;
    if (cx->frags_tail == fr)
        cx->frags_tail = prev;
    cx->st.frag_dropped += fr->nfrags;
    frag_free(cx, fr);
}

/* Drops pending datagrams older than FRAG_TIMEOUT_NS (see engine.h). */
void pc_frag_expire(pc_ctx *cx)
{
    while (cx->frags && cx->now - cx->frags->first_ns > FRAG_TIMEOUT_NS)
        frag_drop(cx, &cx->frags, NULL);
}

/*
 * One fragment: off and n in bytes, more = MF. When it completes its
 * datagram, the whole payload goes on to the transport layer. The first
 * copy of any byte wins (overlaps never rewrite data already held), which
 * defeats the classic overlap tricks in one consistent way.
 */
static void frag_add(pc_ctx *cx, const pc_pkt *pk, int ipver, int proto, uint32_t id,
                     const uint8_t *src, const uint8_t *dst, uint32_t off, int more,
                     const uint8_t *p, size_t n, int depth, int cut)
{
    cx->st.fragments++;
    pc_frag_expire(cx);
    uint32_t end = off + (uint32_t)n;
    if (end > FRAG_MAX_PAYLOAD || (more && (n % 8 != 0 || n == 0)) || cut) {
        /* Too big, misaligned, or cut by the snapshot length. */
        cx->st.frag_dropped++;
        return;
    }
    pc_frag *fr = cx->frags, *prev = NULL;
    pc_frag **pp = &cx->frags;
    for (; fr; prev = fr, pp = &fr->next, fr = fr->next) {
        if (fr->id == id && fr->ipver == ipver && fr->proto == proto && !memcmp(fr->src, src, 16) &&
            !memcmp(fr->dst, dst, 16))
            break;
    }
    if (!fr) {
        /* Make room: the oldest pending datagrams go first. */
        while (cx->frags && cx->frag_mem + sizeof *fr + end > cx->lim.max_frag_bytes)
            frag_drop(cx, &cx->frags, NULL);
        if (cx->frag_mem + sizeof *fr + end > cx->lim.max_frag_bytes) {
            cx->st.frag_dropped++;
            return;
        }
        fr = pc_calloc(1, sizeof *fr);
        if (!fr) {
            cx->st.frag_dropped++;
            return;
        }
        fr->ipver = (uint8_t)ipver;
        fr->proto = (uint8_t)proto;
        fr->id = id;
        memcpy(fr->src, src, 16);
        memcpy(fr->dst, dst, 16);
        fr->first_ns = cx->now; /* reader time, as for flows: robust to timestamps going backwards */
        cx->frag_mem += sizeof *fr;
        if (cx->frags_tail)
            cx->frags_tail->next = fr;
        else
            cx->frags = fr;
        prev = cx->frags_tail;
        cx->frags_tail = fr;
        pp = prev ? &prev->next : &cx->frags;
    }
    fr->nfrags++;
    /* Inconsistent ends: drop the whole datagram. */
    if ((!more && fr->total && fr->total != end) || (fr->total && end > fr->total)) {
        frag_drop(cx, pp, prev);
        return;
    }
    if (!more)
        fr->total = end;
    if (end > fr->cap) {
        uint32_t ncap = fr->cap ? fr->cap : 2048;
        while (ncap < end)
            ncap *= 2;
        if (ncap > FRAG_MAX_PAYLOAD)
            ncap = FRAG_MAX_PAYLOAD;
        if (cx->frag_mem + (ncap - fr->cap) > cx->lim.max_frag_bytes)
            ncap = end; /* tight on budget: no slack */
        if (cx->frag_mem + (ncap - fr->cap) > cx->lim.max_frag_bytes) {
            frag_drop(cx, pp, prev);
            return;
        }
        uint8_t *nb = pc_realloc(fr->buf, ncap);
        if (!nb) {
            frag_drop(cx, pp, prev);
            return;
        }
        cx->frag_mem += ncap - fr->cap;
        fr->buf = nb;
        fr->cap = ncap;
    }
    for (uint32_t b = off / 8; b * 8 < end; b++) {
        if (fr->bits[b >> 3] & (1u << (b & 7)))
            continue;
        uint32_t s = b * 8, e = s + 8 < end ? s + 8 : end;
        memcpy(fr->buf + s, p + (s - off), e - s);
        fr->bits[b >> 3] |= (uint8_t)(1u << (b & 7));
        fr->nblocks++;
    }
    if (!fr->total || fr->nblocks != (fr->total + 7) / 8)
        return;

    /* Complete: unlink first, then decode (decoding may add fragments). */
    *pp = fr->next;
    if (cx->frags_tail == fr)
        cx->frags_tail = prev;
    uint8_t s16[16], d16[16];
    memcpy(s16, fr->src, 16);
    memcpy(d16, fr->dst, 16);
    uint32_t iplen = fr->total + (ipver == 4 ? 20 : 40);
    if (ipver == 4) {
        l4(cx, pk, 4, fr->proto, s16, d16, fr->buf, fr->total, iplen, depth, 0);
    } else {
        /* IPv6: the fragmentable part may start with more extension headers. */
        v6_walk(cx, pk, fr->proto, s16, d16, fr->buf, fr->total, iplen, depth, 0, 0);
    }
    frag_free(cx, fr);
}

/* An IPv4 header: fragments go to frag_add(), the rest to the transport. */
void pc_ipv4(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 20) {
        cx->st.malformed++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    size_t tot = pc_rd16(p + 2);
    if (tot == 0) /* TSO/GRO capture: the length field is not filled in */
        tot = n;
    if (ihl < 20 || tot < ihl || ihl > n) {
        cx->st.malformed++;
        return;
    }
    if (tot > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        tot = n; /* cut by the snapshot length */
    } else {
        cut = 0; /* Ethernet padding after tot is ignored */
    }
    uint8_t src[16] = {0}, dst[16] = {0};
    memcpy(src, p + 12, 4);
    memcpy(dst, p + 16, 4);
    uint16_t fo = pc_rd16(p + 6);
    uint32_t off = (uint32_t)(fo & 0x1fff) * 8;
    int more = (fo & 0x2000) != 0;
    if (off || more) {
        frag_add(cx, pk, 4, p[9], pc_rd16(p + 4), src, dst, off, more, p + ihl, tot - ihl, depth, cut);
        return;
    }
    l4(cx, pk, 4, p[9], src, dst, p + ihl, tot - ihl, (uint32_t)tot, depth, cut);
}

/*
 * Walks IPv6 extension headers from next-header nh over p[0..n) and hands
 * the upper layer on. frag_ok is 0 after reassembly (a second fragment
 * header is malformed).
 */
static void v6_walk(pc_ctx *cx, const pc_pkt *pk, int nh, const uint8_t *src, const uint8_t *dst,
                    const uint8_t *p, size_t n, uint32_t iplen, int depth, int cut, int frag_ok)
{
    for (int i = 0; i < MAX_V6_EXT; i++) {
        size_t hl;
        switch (nh) {
        case 0:  /* hop-by-hop */
        case 43: /* routing */
        case 60: /* destination options */
            if (n < 8)
                goto bad;
            hl = ((size_t)p[1] + 1) * 8;
            break;
        case 51: /* AH */
            if (n < 8)
                goto bad;
            hl = ((size_t)p[1] + 2) * 4;
            break;
        case 44: { /* fragment */
            if (n < 8 || !frag_ok)
                goto bad;
            uint16_t fo = pc_rd16(p + 2);
            uint32_t off = (uint32_t)(fo & 0xfff8);
            int more = fo & 1;
            if (!off && !more) { /* an atomic fragment (RFC 6946): not fragmented */
                nh = p[0];
                p += 8;
                n -= 8;
                continue;
            }
            frag_add(cx, pk, 6, p[0], pc_rd32(p + 4), src, dst, off, more, p + 8, n - 8, depth, cut);
            return;
        }
        case 59: /* no next header */
            return;
        default:
            l4(cx, pk, 6, nh, src, dst, p, n, iplen, depth, cut);
            return;
        }
        if (hl > n)
            goto bad;
        nh = p[0];
        p += hl;
        n -= hl;
    }
bad:
    cx->st.malformed++;
}

/* An IPv6 header; the extension headers are walked by v6_walk(). */
void pc_ipv6(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 40) {
        cx->st.malformed++;
        return;
    }
    size_t plen = pc_rd16(p + 4);
    if (plen == 0) /* jumbogram or TSO capture: use what is there */
        plen = n - 40;
    if (plen + 40 > n) {
        if (!cut) {
            cx->st.malformed++;
            return;
        }
        plen = n - 40;
    } else {
        cut = 0; /* Ethernet padding after the payload is ignored */
    }
    v6_walk(cx, pk, p[6], p + 8, p + 24, p + 40, plen, (uint32_t)(plen + 40), depth, cut, 1);
}

/* An IP packet of either version (see engine.h). */
void pc_ip_packet(pc_ctx *cx, const pc_pkt *pk, const uint8_t *p, size_t n, int depth, int cut)
{
    if (n < 1) {
        cx->st.malformed++;
        return;
    }
    switch (p[0] >> 4) {
    case 4:
        pc_ipv4(cx, pk, p, n, depth, cut);
        break;
    case 6:
        pc_ipv6(cx, pk, p, n, depth, cut);
        break;
    default:
        cx->st.malformed++;
    }
}

/* Drops every pending datagram and counts its fragments (end of input). */
void pc_frag_drop_all(pc_ctx *cx)
{
    while (cx->frags)
        frag_drop(cx, &cx->frags, NULL);
    cx->frags_tail = NULL;
}

/* Frees every pending datagram (pc_reader_free): nothing is counted any more. */
void pc_frag_free_all(pc_ctx *cx)
{
    while (cx->frags) {
        pc_frag *n = cx->frags->next;
        frag_free(cx, cx->frags);
        cx->frags = n;
    }
}
