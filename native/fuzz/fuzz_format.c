/*
 * fuzz_format.c - libFuzzer harness for pc_format_events (format.c), the
 * C side of `pocketcheck extract`: hostile names, paths and User-Agents from
 * the packet path are written as JSON lines or TSV rows.
 *
 * Input layout (as fuzz_packet.c, so its seeds work here):
 *   byte 0   link type: index into the DLTs below (mod their count)
 *   byte 1   options: bit 0 TSV instead of JSON lines; bit 1 flow records
 *            too; bits 4-7 pick the output buffer size (16 << (bits % 9))
 *   then     records: 2-byte big-endian length + that many frame bytes.
 * Events of each batch are formatted into an output buffer of exactly the
 * chosen size on the heap (AddressSanitizer sees any write past it), in as
 * many calls as needed. Invariants checked: the return is a byte count
 * within the buffer, progress is made or the event is one the caller must
 * format (then skipped, as extract.py does), every written chunk ends with a
 * newline, and JSON output never holds a raw control byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_frames.h"

static void check_chunk(const char *out, size_t len, int fmt)
{
    if (len == 0)
        return;
    if (out[len - 1] != '\n')
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '\n' || (fmt == PC_FMT_TSV && c == '\t'))
            continue;
        if (c < 0x20 || c == 0x7f)
            abort(); /* a raw control byte would break a line or a terminal */
    }
}

static void format_batch(const pc_event *ev, size_t n, const uint8_t *sb, int fmt, int flows, char *out,
                         size_t outcap)
{
    static const char file_json[] = "\"f.pcap\"";
    static const char file_tsv[] = "f.pcap";
    const char *file = fmt == PC_FMT_JSONL ? file_json : file_tsv;
    size_t file_len = strlen(file);
    size_t pos = 0;
    while (pos < n) {
        size_t done = 0;
        int w = pc_format_events(ev + pos, n - pos, sb, fmt, flows, file, file_len, out, outcap, &done);
        if (w < 0 || (size_t)w > outcap || done > n - pos)
            abort();
        check_chunk(out, (size_t)w, fmt);
        if (done == 0)
            done = 1; /* the caller formats this one itself (a certificate, non-ASCII, or too big) */
        pos += done;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int lt = LINKTYPES[data[0] % NLINK];
    uint8_t opt = data[1];
    int fmt = (opt & 1) ? PC_FMT_TSV : PC_FMT_JSONL;
    int flows = (opt >> 1) & 1;
    size_t outcap = (size_t)16 << ((opt >> 4) % 9);
    char *out = malloc(outcap);
    pc_reader *r = NULL;
    if (!out || pc_reader_open_feed(&r, NULL) != PC_OK)
        goto fail;
    int64_t ts = 1000000000LL;
    size_t off = 2;
    pc_event ev[16];
    uint8_t sb[4096];
    while (off < size) {
        size_t len;
        uint8_t *frame = fz_next_frame(data, size, &off, &len);
        if (!frame)
            goto fail;
        pc_reader_feed(r, lt, ts, frame, len, len);
        free(frame);
        ts += 1000000;
        int n;
        while ((n = pc_reader_next(r, ev, 16, sb, sizeof sb)) > 0)
            format_batch(ev, (size_t)n, sb, fmt, flows, out, outcap);
        if (n < 0)
            abort();
    }
    pc_reader_finish(r);
    for (int guard = 0; guard < 100000; guard++) {
        int n = pc_reader_next(r, ev, 16, sb, sizeof sb);
        if (n < 0)
            abort();
        if (n == 0)
            break;
        format_batch(ev, (size_t)n, sb, fmt, flows, out, outcap);
    }
fail:
    pc_reader_free(r);
    free(out);
    return 0;
}
