/*
 * dhcp.c - the client side of DHCP (ports 67/68): which device asked for
 * which address under which host name. Called by dispatch.c; reports
 * through pc_emit().
 */
#include <arpa/inet.h>

#include "parsers.h"
#include "text.h"

#define DHCP_FIXED   236          /* BOOTP header up to the options */
#define DHCP_MAGIC   0x63825363u

/*
 * A BOOTP/DHCP datagram (RFC 2131). Client messages that ask for or confirm
 * an address (DISCOVER, REQUEST, INFORM) become PC_EV_DHCP: name = host name
 * option 12 (escaped), data = requested address option 50, else ciaddr, else
 * yiaddr, as dotted text ("" when none), the MAC = chaddr when it is an
 * Ethernet address (else the flow's MAC). Server messages and plain BOOTP
 * are ignored. Options are read with bounds; option overload (52) is not
 * followed.
 */
void pc_dhcp_message(pc_ctx *cx, const pc_meta *m, const uint8_t *d, size_t len)
{
    char host[255 * 4];
    char addr[INET_ADDRSTRLEN];
    const uint8_t *hostopt = NULL, *reqip = NULL;
    size_t hostlen = 0, hl = 0, i;
    int type = 0;
    pc_out o;

    if (len < DHCP_FIXED + 4 || d[0] != 1 || pc_rd32(d + DHCP_FIXED) != DHCP_MAGIC)
        goto fail;
    for (i = DHCP_FIXED + 4; i < len;) {
        uint8_t code = d[i], olen;
        if (code == 0) {          /* pad */
            i++;
            continue;
        }
        if (code == 255)          /* end */
            break;
        if (i + 2 > len)
            goto fail;
        olen = d[i + 1];
        if (i + 2 + olen > len)
            goto fail;
        if (code == 53 && olen >= 1)
            type = d[i + 2];
        else if (code == 12 && olen >= 1) {
            hostopt = d + i + 2;
            hostlen = olen;
        } else if (code == 50 && olen == 4)
            reqip = d + i + 2;
        i += 2 + (size_t)olen;
    }
    if (type != 1 && type != 3 && type != 8)   /* DISCOVER, REQUEST, INFORM */
        return;

    memset(&o, 0, sizeof o);
    o.kind = PC_EV_DHCP;
    o.flags = m->truncated ? PC_EVF_PARTIAL : 0;
    if (hostopt)
        hl = pc_text_escape(host, sizeof host, hostopt, hostlen);
    o.name.p = (const uint8_t *)host;
    o.name.n = hl;
    if (!reqip && pc_rd32(d + 12) != 0)       /* ciaddr */
        reqip = d + 12;
    if (!reqip && pc_rd32(d + 16) != 0)       /* yiaddr */
        reqip = d + 16;
    if (reqip && inet_ntop(AF_INET, reqip, addr, sizeof addr)) {
        o.data.p = (const uint8_t *)addr;
        o.data.n = strlen(addr);
    }
    if (d[1] == 1 && d[2] == 6) {             /* htype Ethernet, hlen 6 */
        /* The client is chaddr, also when a relay forwarded the message. */
        pc_meta mm = *m;
        memcpy(mm.mac, d + 28, 6);
        mm.has_mac = 1;
        pc_emit(cx, &mm, &o);
    } else {
        pc_emit(cx, m, &o);
    }
    return;
fail:
    if (!m->truncated)
        pc_count_malformed(cx);
}
