/*
 * fuzz_pcapng.c - libFuzzer harness for the pcapng router (pcapng_route.c)
 * and the file reader's switch to it (capture.c). The input is a capture
 * file: routed directly (fmemopen), then read whole through
 * pc_reader_open_file() on a memfd, so the plain handle's first pass, the
 * fallback and the skip of already-delivered packets all run.
 *
 * Invariants checked: every packet's bytes can be read to its caplen (ASan
 * sees a short buffer), its link type is a DLT, a -1 always comes with a
 * one-line reason, the end is sticky, and the router never returns more
 * packets than the file has blocks of 12+ bytes (each packet consumes one).
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <unistd.h>

#include "pcapng_route.h"
#include "reader.h"

static volatile uint8_t sink;

static void route(const uint8_t *data, size_t size)
{
    char err[256];
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (!fp)
        return;
    pc_route *rt = pc_route_open(fp, err, sizeof err);
    if (!rt)
        return;
    struct pcap_pkthdr *h;
    const u_char *d;
    int dlt, rc;
    size_t packets = 0;
    while ((rc = pc_route_next(rt, &h, &d, &dlt)) == 1) {
        packets++;
        if (dlt < 0 || packets > size / 12)
            abort();
        for (uint32_t i = 0; i < h->caplen; i++)
            sink ^= d[i];
    }
    const char *why = pc_route_error(rt);
    if ((rc == -1) != (why[0] != 0) || strchr(why, '\n'))
        abort();
    if (pc_route_next(rt, &h, &d, &dlt) != rc)
        abort(); /* the end, or the error, stays */
    pc_route_close(rt);
}

static void reader(const uint8_t *data, size_t size)
{
    char path[64], err[256];
    static pc_event ev[64];
    static uint8_t sb[1 << 12];
    int fd = memfd_create("fuzz_pcapng", 0);
    if (fd < 0)
        return;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pc_reader *r = NULL;
    if (pc_reader_open_file(&r, path, NULL, err, sizeof err) == PC_OK) {
        while (pc_reader_next(r, ev, 64, sb, sizeof sb) > 0)
            ;
        if (pc_reader_status(r) < 0 && strlen(pc_reader_error(r)) == 0)
            abort();
        pc_reader_free(r);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1 << 20))
        return 0;
    route(data, size);
    reader(data, size);
    return 0;
}
