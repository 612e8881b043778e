/*
 * pcapng_route.h - reads a pcapng file whose interfaces differ in link type
 * or snapshot length, which one libpcap handle refuses (libpcap 1.10 and
 * master: "an interface has a type N different from the type of the first
 * interface"). The router opens one libpcap handle per interface of a
 * section and feeds each, through a fopencookie() stream, the section's
 * header block, that interface's description block (so it is interface 0 of
 * its stream) and, one block at a time, that interface's packet blocks with
 * the interface id rewritten to 0. libpcap still parses every block it gets
 * (record fields, timestamps with if_tsresol/if_tsoffset, options, byte
 * order); the router reads only block framing: type, total length, the
 * section's byte-order magic and a packet block's interface id. Used by
 * capture.c only, and only for files a plain handle cannot read.
 */
#ifndef PC_PCAPNG_ROUTE_H
#define PC_PCAPNG_ROUTE_H

#include <stdio.h>

#include <pcap/pcap.h>

/* At most this many interfaces in one section (one libpcap handle each). */
#define PC_ROUTE_MAX_IFACES 64

typedef struct pc_route pc_route;

/*
 * Starts routing the pcapng file fp (any position; read from its start).
 * The router owns fp from then on, also when this fails: it is closed here
 * or in pc_route_close(). Returns NULL when out of memory or when fp cannot
 * be measured (errbuf says which).
 */
pc_route *pc_route_open(FILE *fp, char *errbuf, size_t errlen);

/*
 * Reads the next packet of the file, in file order, whatever its interface,
 * as pcap_next_ex() does: returns 1 with *h and *data (valid until the next
 * call) and *linktype (the DLT of the packet's interface), 0 at the end of
 * the file, or -1 when the file is damaged, libpcap refuses a block, or a
 * section has more than PC_ROUTE_MAX_IFACES interfaces (pc_route_error()
 * says which; every later call returns -1 too).
 */
int pc_route_next(pc_route *rt, struct pcap_pkthdr **h, const u_char **data, int *linktype);

/* The reason of the last -1 from pc_route_next(), or "" (never NULL for a router). */
const char *pc_route_error(const pc_route *rt);

/* Closes every handle and the file. NULL is allowed. */
void pc_route_close(pc_route *rt);

#endif
