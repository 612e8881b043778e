/*
 * meta_harness.h - the pc_meta of a made-up flow, for the parser unit tests
 * (parser_harness.h) and the parser fuzz harnesses (fuzz_common_parsers.h):
 * one place for what a test payload says about where it came from.
 */
#ifndef META_HARNESS_H
#define META_HARNESS_H

#include <string.h>

#include "events.h"

/* A meta of flow 1, frame 1, 192.168.4.2 -> 192.0.2.1 with the given protocol and ports (client first). */
static inline pc_meta h_meta(uint8_t proto, uint16_t sport, uint16_t dport, int from_client)
{
    pc_meta m;
    memset(&m, 0, sizeof m);
    m.frame = 1;
    m.flow_id = 1;
    m.ipver = 4;
    m.proto = proto;
    m.sport = sport;
    m.dport = dport;
    m.src[0] = 192; m.src[1] = 168; m.src[2] = 4; m.src[3] = 2;
    m.dst[0] = 192; m.dst[1] = 0; m.dst[2] = 2; m.dst[3] = 1;
    m.from_client = (uint8_t)from_client;
    return m;
}

#endif
