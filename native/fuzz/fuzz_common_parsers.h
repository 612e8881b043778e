/*
 * fuzz_common_parsers.h - shared pieces of fuzz_dns.c and fuzz_tls.c: one
 * feed reader whose engine receives the events (drained after every input
 * so the queue stays small) and a TCP stream driver that keeps unconsumed
 * bytes the way the packet path does, cutting the input into chunks. The
 * flow meta comes from tests/meta_harness.h, as in the parser unit tests.
 */
#ifndef FUZZ_COMMON_PARSERS_H
#define FUZZ_COMMON_PARSERS_H

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "reader.h"
#include "../tests/meta_harness.h"

static pc_reader *fz_r;
static pc_ctx *fz_cx;

static inline void fz_init(void)
{
    if (fz_r)
        return;
    if (pc_reader_open_feed(&fz_r, NULL) != PC_OK || !(fz_cx = pc_reader_ctx(fz_r)))
        abort();
}

/* Reads every queued event; touches the strings so ASan checks them. */
static inline void fz_drain(void)
{
    static pc_event ev[64];
    static uint8_t str[1 << 18];
    volatile uint8_t sink = 0;
    int n;
    while ((n = pc_reader_next(fz_r, ev, 64, str, sizeof str)) > 0)
        for (int i = 0; i < n; i++)
            for (uint32_t k = 0; k < ev[i].name.len; k++)
                sink ^= str[ev[i].name.off + k];
    (void)sink;
}

/* An exact-size heap copy of data[n], so a read past the payload is an ASan error; NULL when out of memory. */
static inline uint8_t *fz_copy(const uint8_t *data, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy)
        memcpy(copy, data, n);
    return copy;
}

typedef int (*fz_tcp_fn)(pc_ctx *, const pc_meta *, pc_dirstate *, const uint8_t *, size_t, int, size_t *);

/*
 * Feeds data to fn (pc_app_tcp, or one stream parser directly so that a
 * consumed count past the data, which pc_app_tcp would hide, aborts) in
 * chunks of `step` bytes (each chunk is copied to its own heap block so ASan
 * sees reads past it), the last one with final = 1.
 */
static inline void fz_stream(fz_tcp_fn fn, const pc_meta *m, const uint8_t *data, size_t len, size_t step)
{
    pc_dirstate ds;
    uint8_t *buf = malloc(len + 1);
    size_t have = 0, pos = 0;

    if (!buf)
        return;
    memset(&ds, 0, sizeof ds);
    for (;;) {
        size_t k = len - pos < step ? len - pos : step, consumed = 0;
        int last = pos + k == len, r;
        uint8_t *exact;
        memcpy(buf + have, data + pos, k);
        have += k;
        pos += k;
        exact = malloc(have ? have : 1);
        if (!exact)
            break;
        memcpy(exact, buf, have);
        r = fn(fz_cx, m, &ds, exact, have, last, &consumed);
        free(exact);
        if (consumed > have)
            abort();
        memmove(buf, buf + consumed, have - consumed);
        have -= consumed;
        if (r == PC_STREAM_DONE || last)
            break;
    }
    free(buf);
}

#endif
