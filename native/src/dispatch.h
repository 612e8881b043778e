/*
 * dispatch.h - the seam between the packet path (flow.c, stream.c) and the
 * payload parsers: which parser gets a payload (dispatch.c). The packet path
 * calls these three functions and nothing of the parsers; dispatch.c calls
 * the parsers (parsers.h) and nothing of the packet path.
 */
#ifndef PC_DISPATCH_H
#define PC_DISPATCH_H

#include "parsers.h"

/* ---- UDP payloads ------------------------------------------------------- */
/* One whole UDP datagram (after IP reassembly), either direction; *app is the flow's parser state. */
void pc_app_udp(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len);

/* The flow ends: emit what partial data allows, free *app, set it to NULL. */
void pc_app_udp_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app);

/* ---- TCP streams -------------------------------------------------------- */
/*
 * The packet path calls this with the in-order bytes of one TCP direction
 * that no earlier call consumed (it keeps the unconsumed tail, up to
 * pc_limits.max_stream_bytes). final is 1 when no more bytes will come for
 * this direction (FIN, RST, a missing segment, the buffer bound, eviction,
 * end of input): the parser must then report whatever the bytes allow.
 * *consumed (<= len) is how many leading bytes may be discarded.
 * Returns PC_STREAM_DONE when the direction needs no more data (the packet
 * path may then stop buffering it), else PC_STREAM_MORE.
 * m->from_client tells the direction.
 */
int pc_app_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds,
               const uint8_t *data, size_t len, int final, size_t *consumed);

#endif
