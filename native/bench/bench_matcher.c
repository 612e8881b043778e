/*
 * bench_matcher.c - the C-level batch rate of the domain matcher, without
 * Python: the same names and indicators as tests/bench/test_bench_matcher.py
 * (which writes them, `python tests/bench/test_bench_matcher.py dump N DIR`),
 * matched with pc_matcher_match_names() over one packed buffer, as
 * Matcher.match_names_bytes() does (same hit-array size).
 *
 *   bench_matcher DOMAINS NAMES [ROUNDS]
 *
 * DOMAINS and NAMES are files of one name per line; indicator i carries id i.
 * Prints one JSON line: names, hits, rejected, the best round's CPU time
 * (process CPU time: the machine is shared, and CPU time is what another
 * engineer's load disturbs least) and wall time, and M names/s from each.
 * Under `valgrind --tool=callgrind` run it with ROUNDS=1 and divide the
 * instructions of pc_matcher_match_names (inclusive) by the names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pc_matcher.h"

#define HITS_CAP (1u << 14)   /* appliance/matcher.py's _HITS_START */

/* Reads a whole file into a malloc'ed, NUL-terminated buffer; NULL on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
done:
    fclose(f);
    return buf;
}

/* Splits buf into lines in place: returns the n+1 offsets of the packed names (newlines removed). */
static uint32_t *pack_lines(char *buf, size_t len, size_t *n)
{
    size_t cnt = 0, w = 0;
    uint32_t *off;
    for (size_t i = 0; i < len; i++)
        cnt += buf[i] == '\n';
    if (len && buf[len - 1] != '\n')
        cnt++;
    off = malloc((cnt + 1) * sizeof *off);
    if (!off)
        return NULL;
    *n = 0;
    off[0] = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n')
            off[++*n] = (uint32_t)w;
        else
            buf[w++] = buf[i];
    }
    if (len && buf[len - 1] != '\n')
        off[++*n] = (uint32_t)w;
    return off;
}

static double secs(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t dlen = 0, nlen = 0, nd = 0, nn = 0;
    char *dbuf = NULL, *nbuf = NULL;
    uint32_t *doff = NULL, *noff = NULL, *ids = NULL;
    pc_matcher *m = NULL;
    pc_hit *hits = NULL;
    int rounds = argc > 3 ? atoi(argv[3]) : 5, rc = 1;
    double best_cpu = 1e30, best_wall = 1e30;
    uint64_t nhits = 0, rej = 0;

    if (argc < 3 || rounds < 1) {
        fprintf(stderr, "usage: %s DOMAINS NAMES [ROUNDS]\n", argv[0]);
        return 2;
    }
    dbuf = slurp(argv[1], &dlen);
    nbuf = slurp(argv[2], &nlen);
    if (!dbuf || !nbuf) {
        fprintf(stderr, "bench_matcher: cannot read %s\n", !dbuf ? argv[1] : argv[2]);
        goto done;
    }
    doff = pack_lines(dbuf, dlen, &nd);
    noff = pack_lines(nbuf, nlen, &nn);
    ids = malloc((nd ? nd : 1) * sizeof *ids);
    hits = malloc(HITS_CAP * sizeof *hits);
    if (!doff || !noff || !ids || !hits)
        goto done;
    for (size_t i = 0; i < nd; i++)
        ids[i] = (uint32_t)i;
    if (pc_matcher_new(&m) != PC_OK || pc_matcher_add_domains(m, (uint8_t *)dbuf, doff, ids, nd) != (int)nd ||
        pc_matcher_prepare(m) != PC_OK) {
        fprintf(stderr, "bench_matcher: building the matcher failed: %s\n", m ? pc_matcher_error(m) : "");
        goto done;
    }
    for (int r = 0; r < rounds; r++) {
        double c0 = secs(CLOCK_PROCESS_CPUTIME_ID), w0 = secs(CLOCK_MONOTONIC), c, w;
        size_t next = 0;
        nhits = 0;
        rej = 0;
        while (next < nn) {
            int got = pc_matcher_match_names(m, (uint8_t *)nbuf, noff, nn, &next, hits, HITS_CAP, &rej);
            if (got < 0) {
                fprintf(stderr, "bench_matcher: match failed (%d)\n", got);
                goto done;
            }
            nhits += (uint64_t)got;
        }
        c = secs(CLOCK_PROCESS_CPUTIME_ID) - c0;
        w = secs(CLOCK_MONOTONIC) - w0;
        if (c < best_cpu)
            best_cpu = c;
        if (w < best_wall)
            best_wall = w;
    }
    printf("{\"indicators\": %zu, \"names\": %zu, \"hits\": %llu, \"rejected\": %llu, \"rounds\": %d, "
           "\"cpu_s\": %.6f, \"wall_s\": %.6f, \"cpu_mnames_per_s\": %.2f, \"wall_mnames_per_s\": %.2f}\n",
           nd, nn, (unsigned long long)nhits, (unsigned long long)rej, rounds, best_cpu, best_wall,
           (double)nn / best_cpu / 1e6, (double)nn / best_wall / 1e6);
    rc = 0;
done:
    pc_matcher_free(m);
    free(hits);
    free(ids);
    free(noff);
    free(doff);
    free(nbuf);
    free(dbuf);
    return rc;
}
