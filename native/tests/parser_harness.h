/*
 * parser_harness.h - shared helpers of the parser unit tests (test_dns.c,
 * test_tls.c, test_http.c): a real feed reader whose engine receives the
 * events, a reader of those events with copied strings, a small TCP stream
 * driver that keeps unconsumed bytes the way the packet path does, and (check.h)
 * the pass/fail counters. Header-only: each test is one translation unit.
 */
#ifndef PARSER_HARNESS_H
#define PARSER_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dispatch.h"
#include "meta_harness.h"
#include "reader.h"


/* One event read back, strings copied and NUL-terminated. */
typedef struct h_ev {
    pc_event ev;
    char *name, *data, *s1, *s2, *s3;
    size_t data_len;
} h_ev;

#define H_MAX_EV 512
static h_ev h_evs[H_MAX_EV];
static int h_nev;
static pc_reader *h_r;
static pc_ctx *h_cx;

static inline char *h_dup(const uint8_t *buf, pc_str s)
{
    char *p = malloc((size_t)s.len + 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    memcpy(p, buf + s.off, s.len);
    p[s.len] = 0;
    return p;
}

static inline void h_clear(void)
{
    for (int i = 0; i < h_nev; i++) {
        free(h_evs[i].name); free(h_evs[i].data); free(h_evs[i].s1);
        free(h_evs[i].s2); free(h_evs[i].s3);
    }
    h_nev = 0;
}

/* Opens a fresh feed reader (closing the previous one). */
static inline void h_open(void)
{
    h_clear();
    if (h_r)
        pc_reader_free(h_r);
    h_r = NULL;
    if (pc_reader_open_feed(&h_r, NULL) != PC_OK || !(h_cx = pc_reader_ctx(h_r))) {
        fprintf(stderr, "cannot open a feed reader\n");
        exit(2);
    }
}

static inline void h_close(void)
{
    h_clear();
    pc_reader_free(h_r);
    h_r = NULL;
}

/* Reads every queued event into h_evs (replacing what was there). */
static inline int h_drain(void)
{
    static pc_event ev[64];
    static uint8_t str[1 << 20];
    int n;

    h_clear();
    while ((n = pc_reader_next(h_r, ev, 64, str, sizeof str)) > 0) {
        for (int i = 0; i < n && h_nev < H_MAX_EV; i++) {
            h_ev *e = &h_evs[h_nev++];
            e->ev = ev[i];
            e->name = h_dup(str, ev[i].name);
            e->data = h_dup(str, ev[i].data);
            e->data_len = ev[i].data.len;
            e->s1 = h_dup(str, ev[i].s1);
            e->s2 = h_dup(str, ev[i].s2);
            e->s3 = h_dup(str, ev[i].s3);
        }
    }
    return h_nev;
}

/* Number of drained events of one kind. */
static inline int h_count(uint32_t kind)
{
    int n = 0;
    for (int i = 0; i < h_nev; i++)
        n += h_evs[i].ev.kind == kind;
    return n;
}

/* The i-th drained event of a kind, or NULL. */
static inline h_ev *h_get(uint32_t kind, int i)
{
    for (int k = 0; k < h_nev; k++)
        if (h_evs[k].ev.kind == kind && i-- == 0)
            return &h_evs[k];
    return NULL;
}

static inline uint64_t h_malformed(void)
{
    pc_stats st;
    pc_reader_stats(h_r, &st);
    return st.malformed;
}

/*
 * Drives one TCP direction like the packet path: appends each chunk to a
 * buffer, calls pc_app_tcp, drops what it consumed, stops after
 * PC_STREAM_DONE. The chunks are data cut every `step` bytes; final = 1 is
 * given with the last chunk when fin is set. Returns the last return value.
 */
static inline int h_stream(const pc_meta *m, pc_dirstate *ds, const uint8_t *data, size_t len,
                    size_t step, int fin)
{
    uint8_t *buf = malloc(len + 1);
    size_t have = 0, pos = 0;
    int r = PC_STREAM_MORE;

    if (!buf) { fprintf(stderr, "out of memory\n"); exit(2); }
    while (pos < len || (len == 0 && fin)) {
        size_t k = len - pos < step ? len - pos : step, consumed = 0;
        int last;
        memcpy(buf + have, data + pos, k);
        have += k;
        pos += k;
        last = fin && pos == len;
        r = pc_app_tcp(h_cx, m, ds, buf, have, last, &consumed);
        if (consumed > have) {
            printf("FAIL: consumed %zu > %zu\n", consumed, have);
            failed++;
            consumed = have;
        }
        memmove(buf, buf + consumed, have - consumed);
        have -= consumed;
        if (r == PC_STREAM_DONE || len == 0)
            break;
    }
    free(buf);
    return r;
}

#endif
