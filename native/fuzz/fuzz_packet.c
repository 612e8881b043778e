/*
 * fuzz_packet.c - libFuzzer harness for the whole packet path, through a
 * feed reader (pc_reader_feed / pc_reader_next / pc_reader_finish).
 *
 * Input layout:
 *   byte 0   link type: index into the supported DLTs below (mod their count)
 *   byte 1   options: bit 0 tiny limits (flow eviction, stream overflow, OOO
 *            window, fragment bound, queue bound all hit quickly); bit 1
 *            frames look cut by a snapshot length (wirelen > caplen); bit 2
 *            100 s between packets (idle expiry, fragment timeout); bit 3 a
 *            4-byte string buffer (cut strings)
 *   then     records: 2-byte big-endian length + that many frame bytes; a
 *            last record shorter than its length takes what is left.
 * Each frame is copied into its own heap block of exactly its length, so
 * AddressSanitizer sees any read past it. Invariants checked: every string
 * of every event lies inside the bytes written to the string buffer, and a
 * finished reader ends with PC_EOF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_frames.h"

static void drain(pc_reader *r, size_t strcap)
{
    pc_event ev[16];
    uint8_t sb[2048];
    for (int guard = 0; guard < 100000; guard++) {
        int n = pc_reader_next(r, ev, 16, sb, strcap);
        if (n < 0)
            abort();
        if (n == 0)
            return;
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            const pc_str *s[5] = {&ev[i].name, &ev[i].data, &ev[i].s1, &ev[i].s2, &ev[i].s3};
            for (int k = 0; k < 5; k++) {
                if ((size_t)s[k]->off + s[k]->len > strcap)
                    abort();
                used += s[k]->len;
            }
            if (ev[i].kind == 0 || ev[i].kind > PC_EV_KIND_MAX)
                abort();
        }
        if (used > strcap)
            abort();
    }
    abort(); /* the queue never emptied */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int lt = LINKTYPES[data[0] % NLINK];
    uint8_t opt = data[1];
    pc_limits lim;
    memset(&lim, 0, sizeof lim);
    if (opt & 1) {
        lim.max_flows = 2;
        lim.flow_idle_s = 1;
        lim.max_stream_bytes = 64;
        lim.max_ooo_segments = 2;
        lim.max_frag_bytes = 2048;
        lim.max_queue_events = 16;
    }
    size_t strcap = (opt & 8) ? 4 : 2048;
    pc_reader *r = NULL;
    if (pc_reader_open_feed(&r, &lim) != PC_OK)
        return 0;
    int64_t ts = 1000000000LL;
    size_t off = 2;
    while (off < size) {
        size_t len;
        uint8_t *frame = fz_next_frame(data, size, &off, &len);
        if (!frame)
            break;
        pc_reader_feed(r, lt, ts, frame, len, len + ((opt & 2) ? 9 : 0));
        free(frame);
        ts += (opt & 4) ? 100 * 1000000000LL : 1000;
        drain(r, strcap);
    }
    pc_reader_finish(r);
    drain(r, strcap);
    if (pc_reader_status(r) != PC_EOF)
        abort();
    pc_reader_free(r);
    return 0;
}
