/*
 * link.c - from a raw frame to an IP packet: Ethernet with VLAN stacks and
 * PPPoE, Linux SLL/SLL2, raw IP, LINKTYPE_IPV4/IPV6, BSD NULL/LOOP, Linux
 * NFLOG; the MACs
 * a frame carries. pc_engine_packet() is the packet path's entry: it numbers
 * and counts the frame and runs the time-driven expiry first.
 *
 * Called by reader.c (feed readers) and capture.c; calls ip.c, and flow.c
 * and ip.c for expiry.
 */
#include "engine.h"

/* Bound on a walk over attacker-controlled headers. */
#define MAX_VLAN_TAGS   8    /* 802.1Q/802.1ad tags stripped from one frame */

/* An EtherType payload: IP, VLAN tags (any number up to the bound), PPPoE. */
static void ethertype(pc_ctx *cx, const pc_pkt *pk, uint16_t et, const uint8_t *p, size_t n, int cut)
{
    for (int tags = 0;; tags++) {
        if (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
            if (tags >= MAX_VLAN_TAGS || n < 4) {
                cx->st.malformed++;
                return;
            }
            et = pc_rd16(p + 2);
            p += 4;
            n -= 4;
            continue;
        }
        break;
    }
    switch (et) {
    case 0x0800:
    case 0x86dd:
        pc_ip_packet(cx, pk, p, n, 0, cut);
        break;
    case 0x8864: /* PPPoE session: 6-byte header, then a PPP protocol number */
        if (n < 8) {
            cx->st.malformed++;
            return;
        }
        if (pc_rd16(p + 6) == 0x0021 || pc_rd16(p + 6) == 0x0057)
            pc_ip_packet(cx, pk, p + 8, n - 8, 0, cut);
        break;
    default:
        break; /* ARP, LLDP, EAPOL...: not ours */
    }
}

/* BSD NULL/LOOP address family -> IP version (0 = not IP). */
static int null_family(uint32_t af)
{
    switch (af) {
    case 2:
        return 4;
    case 10: /* Linux AF_INET6, seen in some loopback captures */
    case 24: /* NetBSD, OpenBSD, BSD/OS */
    case 28: /* FreeBSD, DragonFly */
    case 30: /* Darwin */
        return 6;
    default:
        return 0;
    }
}

/* NFLOG TLV types (linux/netfilter/nfnetlink_log.h). */
#define NFULA_HWADDR   8    /* struct nfulnl_msg_packet_hw: be16 length, 2 pad bytes, 8 address bytes */
#define NFULA_PAYLOAD  9    /* the packet from its network header on */

/*
 * LINKTYPE_NFLOG (239, https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html):
 * a 4-byte header (address family, version 0, resource id), then TLVs of
 * a 2-byte length (header included) and a 2-byte type, each padded to 4
 * bytes. Length and type are in the byte order of the host that logged
 * (little-endian on the x86 and ARM boxes that run iptables' NFLOG); a
 * first TLV whose little-endian length cannot be right is read big-endian
 * (a big-endian host logged it). Each TLV is at least 4 bytes,
 * so the walk ends within the frame. The IP packet is NFULA_PAYLOAD's value;
 * NFULA_HWADDR gives the sender's MAC. A payload TLV that runs past a frame
 * the snapshot length cut is the cut packet; past an uncut frame, malformed.
 */
static void nflog(pc_ctx *cx, pc_pkt *pk, const uint8_t *p, size_t n, int cut)
{
    size_t off = 4;
    int be = 0;

    if (n < 4 || p[1] != 0)
        goto bad;
    if (n >= 8) {
        size_t le_len = pc_rd16le(p + 4);
        if (le_len < 4 || le_len > n - 4)
            be = 1;
    }
    while (n - off >= 4) {
        size_t len = be ? pc_rd16(p + off) : pc_rd16le(p + off);
        unsigned type = (be ? pc_rd16(p + off + 2) : pc_rd16le(p + off + 2)) & 0x3fff;  /* NLA_F_* flags off */

        if (len < 4)
            goto bad;
        if (len > n - off) {
            if (type == NFULA_PAYLOAD && cut && n - off > 4) {
                pc_ip_packet(cx, pk, p + off + 4, n - off - 4, 0, cut);
                return;
            }
            if (cut)
                return;
            goto bad;
        }
        if (type == NFULA_PAYLOAD) {
            if (len == 4)
                goto bad;
            pc_ip_packet(cx, pk, p + off + 4, len - 4, 0, cut);
            return;
        }
        if (type == NFULA_HWADDR && len >= 4 + 4 + 6 && pc_rd16(p + off + 4) == 6) {
            memcpy(pk->src_mac, p + off + 8, 6);
            pk->has_src_mac = 1;
        }
        len = (len + 3) & ~(size_t)3;
        if (len >= n - off)
            return;   /* no payload TLV: a logged packet without its bytes */
        off += len;
    }
    return;
bad:
    cx->st.malformed++;
}

static void link_decode(pc_ctx *cx, pc_pkt *pk, int linktype, const uint8_t *p, size_t n, int cut)
{
    switch (linktype) {
    case 1: /* DLT_EN10MB */
        if (n < 14)
            goto bad;
        memcpy(pk->dst_mac, p, 6);
        memcpy(pk->src_mac, p + 6, 6);
        pk->has_src_mac = pk->has_dst_mac = 1;
        ethertype(cx, pk, pc_rd16(p + 12), p + 14, n - 14, cut);
        return;
    case 113: /* Linux cooked SLL: the address is the sender's */
        if (n < 16)
            goto bad;
        if (pc_rd16(p + 2) == 1 && pc_rd16(p + 4) == 6) {
            memcpy(pk->src_mac, p + 6, 6);
            pk->has_src_mac = 1;
        }
        ethertype(cx, pk, pc_rd16(p + 14), p + 16, n - 16, cut);
        return;
    case 276: /* Linux cooked SLL2 */
        if (n < 20)
            goto bad;
        if (pc_rd16(p + 8) == 1 && p[11] == 6) {
            memcpy(pk->src_mac, p + 12, 6);
            pk->has_src_mac = 1;
        }
        ethertype(cx, pk, pc_rd16(p), p + 20, n - 20, cut);
        return;
    case 12:  /* DLT_RAW (most platforms) */
    case 14:  /* DLT_RAW (OpenBSD) */
    case 101: /* LINKTYPE_RAW */
        pc_ip_packet(cx, pk, p, n, 0, cut);
        return;
    case 228: /* LINKTYPE_IPV4 */
        if (n < 1 || (p[0] >> 4) != 4)
            goto bad;
        pc_ipv4(cx, pk, p, n, 0, cut);
        return;
    case 229: /* LINKTYPE_IPV6 */
        if (n < 1 || (p[0] >> 4) != 6)
            goto bad;
        pc_ipv6(cx, pk, p, n, 0, cut);
        return;
    case 0:   /* DLT_NULL: family in the capturing host's byte order */
    case 108: { /* DLT_LOOP: family in network byte order (some writers get it wrong) */
        if (n < 4)
            goto bad;
        int v = null_family(pc_rd32le(p));
        if (!v)
            v = null_family(pc_rd32(p));
        if (!v)
            goto bad;
        if (n < 5 || (p[4] >> 4) != v)
            goto bad;
        pc_ip_packet(cx, pk, p + 4, n - 4, 0, cut);
        return;
    }
    case 239: /* LINKTYPE_NFLOG */
        nflog(cx, pk, p, n, cut);
        return;
    default:
        cx->st.unknown_linktype++;
        return;
    }
bad:
    cx->st.malformed++;
}

/*
 * Decodes one packet (see reader.h): numbers it, counts it, expires idle
 * flows and stale fragments against its time, then walks link -> IP ->
 * transport.
 */
void pc_engine_packet(pc_reader *r, int linktype, int64_t ts_ns,
                      const uint8_t *data, size_t caplen, size_t wirelen)
{
    pc_ctx *cx = &r->cx;
    cx->frame++;
    cx->st.packets++;
    cx->st.bytes += wirelen > caplen ? wirelen : caplen;
    cx->cur_ts = ts_ns;
    if (ts_ns > cx->now)
        cx->now = ts_ns;
    if (cx->lru[0].tail || cx->lru[1].tail)
        pc_flow_expire_idle(cx);
    if (cx->frags)
        pc_frag_expire(cx);
    pc_pkt pk;
    pk.has_src_mac = pk.has_dst_mac = 0;
    pk.truncated = wirelen > caplen;
    if (!data && caplen) {
        cx->st.malformed++;
        return;
    }
    link_decode(cx, &pk, linktype, data, caplen, pk.truncated);
}
