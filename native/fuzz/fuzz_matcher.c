/*
 * fuzz_matcher.c - libFuzzer harness for the indicator matcher.
 *
 * The first byte picks a mode:
 *   0: build a matcher from an arbitrary pattern list, then match arbitrary
 *      names, addresses and digests through a tiny hit array (so resuming is
 *      exercised), and sometimes save and reload it;
 *   1: load arbitrary bytes as a compiled file;
 *   2: patch bytes of a valid compiled file and fix its checksum, so the
 *      structural checks behind the checksum are reached; if the file still
 *      loads, match with it (the domain table's indexes, checked where they
 *      are read since format 2, are reached this way).
 * Nothing may crash, leak or read out of bounds.
 *
 * The seeds of mode 1 that are compiled files (corpus/fuzz_matcher/file-*)
 * are written by the real builder, in the current format, by this harness:
 *
 *     make build/fuzz/fuzz_matcher
 *     FUZZ_MATCHER_SEEDS=native/fuzz/corpus/fuzz_matcher build/fuzz/fuzz_matcher -runs=0
 *
 * Rerun it whenever PC_MATCHER_FORMAT changes: a seed of another format
 * stops at the version check and reaches none of the loader's other checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/crc_ref.h"
#include "pc_alloc.h"
#include "pc_matcher.h"

static uint8_t *g_template;
static size_t g_template_len;


/* Drives every match call over the given bytes; results are ignored. */
static void exercise(const pc_matcher *m, const uint8_t *data, size_t len)
{
    uint32_t off[65];
    size_t n = 0, start = 0, next;
    pc_hit hits[3];
    uint64_t rej = 0;
    uint8_t addrs[16 * 8], vers[8];
    off[0] = 0;
    for (size_t i = 0; i <= len && n < 64; i++)
        if (i == len || data[i] == '\n') {
            off[++n] = (uint32_t)i;
            start = i + 1;
        }
    (void)start;
    /* Names i are data[off[i] .. off[i+1]) (each but the first starts with the '\n'). */
    for (next = 0; next < n;)
        if (pc_matcher_match_names(m, data, off, n, &next, hits, 3, &rej) < 0)
            break;
    for (next = 0; next < n;)
        if (pc_matcher_match_hashes(m, data, off, n, &next, hits, 3) < 0)
            break;
    memset(addrs, 0, sizeof addrs);
    for (size_t i = 0; i < 8; i++) {
        size_t o = i * 17;
        vers[i] = o < len ? (uint8_t)(data[o] % 8) : 4;
        if (o + 1 < len)
            memcpy(addrs + 16 * i, data + o + 1, len - o - 1 < 16 ? len - o - 1 : 16);
    }
    for (next = 0; next < 8;)
        if (pc_matcher_match_ips(m, addrs, vers, 8, &next, hits, 3) < 0)
            break;
    /* The same bytes as one block of lines. */
    for (next = 0; next < len;)
        if (pc_matcher_match_lines(m, data, len, &next, hits, 3, &rej) < 0)
            break;
}

static void build_and_match(const uint8_t *data, size_t len)
{
    pc_matcher *m = NULL, *l = NULL;
    const uint8_t *sep = memchr(data, 0, len);
    size_t plen = sep ? (size_t)(sep - data) : len;
    size_t pos = 0;
    char err[128];
    if (pc_matcher_new(&m) != PC_OK)
        return;
    /* Patterns: lines; the first byte of a line says the kind. */
    while (pos < plen) {
        const uint8_t *nl = memchr(data + pos, '\n', plen - pos);
        size_t end = nl ? (size_t)(nl - data) : plen, ll = end - pos;
        const uint8_t *p = data + pos;
        if (ll >= 1) {
            uint32_t id = (uint32_t)(pos * 2654435761u) % 64;
            switch (p[0] & 3) {
            case 0:
                pc_matcher_add_domain(m, (const char *)p + 1, ll - 1, id);
                break;
            case 1:
                pc_matcher_add_keyword(m, (const char *)p + 1, ll - 1, id);
                break;
            case 2:
                if (ll >= 3) {
                    uint8_t a[16] = {0}, v = p[1] & 1 ? 6 : 4, pl = p[2];
                    memcpy(a, p + 3, ll - 3 < 16 ? ll - 3 : 16);
                    pc_matcher_add_ips(m, a, &v, &pl, &id, 1);
                }
                break;
            default: {
                uint32_t off[2] = {0, (uint32_t)(ll - 1)};
                pc_matcher_add_hashes(m, p + 1, off, &id, 1);
            }
            }
        }
        pos = end + 1;
    }
    if (pc_matcher_prepare(m) != PC_OK)
        goto done;
    if (sep)
        exercise(m, sep + 1, len - plen - 1);
    if (len && (data[len - 1] & 0xf0) == 0xf0) {
        char path[64];
        static const uint8_t meta[4] = "meta";
        uint64_t moff[3] = {0, 1, 4};
        snprintf(path, sizeof path, "/tmp/fuzz_matcher.%d.pcm", (int)getpid());
        if (pc_matcher_save(m, path, meta, moff, 2, err, sizeof err) == PC_OK &&
            pc_matcher_load(&l, path, err, sizeof err) == PC_OK && sep)
            exercise(l, sep + 1, len - plen - 1);
        unlink(path);
    }
done:
    pc_matcher_free(l);
    pc_matcher_free(m);
}

static void load_patched(const uint8_t *data, size_t len)
{
    uint8_t *img;
    pc_matcher *l = NULL;
    char err[128];
    uint32_t crc;
    if (!g_template || (img = malloc(g_template_len)) == NULL)
        return;
    memcpy(img, g_template, g_template_len);
    /* (2-byte little-endian offset, value) triples patch the image past the fixed header. */
    for (size_t i = 0; i + 3 <= len; i += 3) {
        size_t o = 24 + ((size_t)data[i] | ((size_t)data[i + 1] << 8)) % (g_template_len - 24);
        img[o] = data[i + 2];
    }
    crc = crc32_ref(img + 24, g_template_len - 24);
    for (int k = 0; k < 4; k++)
        img[20 + k] = (uint8_t)(crc >> (8 * k));
    if (pc_matcher_load_mem(&l, img, g_template_len, err, sizeof err) == PC_OK) {
        const uint8_t *md;
        size_t mdl;
        exercise(l, data, len);
        uint8_t copy[16];
        for (uint32_t id = 0; id < 4; id++) {
            if (pc_matcher_metadata(l, id, &md, &mdl) == PC_OK && mdl)
                (void)md[mdl - 1];
            (void)pc_matcher_metadata_copy(l, id, copy, sizeof copy, &mdl);
        }
    }
    pc_matcher_free(l);
    free(img);
}

/*
 * The patterns of one small compiled file: which kinds it has (bits: 1
 * domains, 2 keywords, 4 addresses, 8 fingerprints, 16 metadata).
 */
static pc_matcher *build_kinds(unsigned kinds)
{
    static const char *doms[] = {"evil.com", "a.evil.com", "x.y"};
    static const char *kws[] = {"track", "ab", "b"};
    uint8_t a4[16] = {10, 0, 0, 1}, a6[16] = {0x20, 0x01, 0x0d, 0xb8}, v4 = 4, v6 = 6, pl4 = 8, pl6 = 32;
    uint8_t fp[32] = {1};
    uint32_t id = 7, foff1[2] = {0, 20}, foff2[2] = {0, 32};
    pc_matcher *m = NULL;
    if (pc_matcher_new(&m) != PC_OK)
        return NULL;
    for (uint32_t i = 0; i < 3; i++) {
        if (kinds & 1)
            pc_matcher_add_domain(m, doms[i], strlen(doms[i]), i);
        if (kinds & 2)
            pc_matcher_add_keyword(m, kws[i], strlen(kws[i]), 10 + i);
    }
    if (kinds & 4) {
        pc_matcher_add_ips(m, a4, &v4, &pl4, &id, 1);
        pc_matcher_add_ips(m, a6, &v6, &pl6, &id, 1);
    }
    if (kinds & 8) {
        pc_matcher_add_hashes(m, fp, foff1, &id, 1);
        pc_matcher_add_hashes(m, fp, foff2, &id, 1);
    }
    if (pc_matcher_prepare(m) != PC_OK) {
        pc_matcher_free(m);
        return NULL;
    }
    return m;
}

/* Saves a matcher of those kinds and reads the file back into a malloc'ed buffer; NULL on failure. */
static uint8_t *compiled_file(unsigned kinds, size_t *len)
{
    static const uint8_t meta[] = "onetwothree";
    uint64_t moff[4] = {0, 3, 6, 11};
    pc_matcher *m = build_kinds(kinds);
    char path[64], err[128];
    uint8_t *buf = NULL;
    FILE *f;
    long n;
    if (!m)
        return NULL;
    snprintf(path, sizeof path, "/tmp/fuzz_matcher_tpl.%d.pcm", (int)getpid());
    if (pc_matcher_save(m, path, meta, moff, kinds & 16 ? 3 : 0, err, sizeof err) == PC_OK &&
        (f = fopen(path, "rb")) != NULL) {
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf)
            *len = (size_t)n;
        fclose(f);
    }
    unlink(path);
    pc_matcher_free(m);
    return buf;
}

/* Writes the mode-1 seeds (see the top comment) into dir: byte 1, then a compiled file. */
static void write_seeds(const char *dir)
{
    static const struct { const char *name; unsigned kinds; } seeds[] = {
        {"file-all", 31}, {"file-domains", 1}, {"file-keywords", 2}, {"file-addresses", 4},
        {"file-fingerprints", 8}, {"file-empty", 0}, {"file-domains-meta", 17},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[512];
        size_t len = 0;
        uint8_t *img = compiled_file(seeds[i].kinds, &len);
        FILE *f;
        snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
        if (!img || (f = fopen(path, "wb")) == NULL) {
            fprintf(stderr, "fuzz_matcher: cannot write %s\n", path);
            free(img);
            exit(1);
        }
        fputc(1, f);
        fwrite(img, 1, len, f);
        fclose(f);
        free(img);
        fprintf(stderr, "fuzz_matcher: wrote %s (%zu bytes)\n", path, len + 1);
    }
}

/* Builds the valid compiled file that mode 2 patches (and writes the seeds when asked). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seed_dir = getenv("FUZZ_MATCHER_SEEDS");
    (void)argc;
    (void)argv;
    if (seed_dir)
        write_seeds(seed_dir);
    g_template = compiled_file(31, &g_template_len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_matcher *l = NULL;
    char err[128];
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        build_and_match(data + 1, size - 1);
        break;
    case 1:
        if (pc_matcher_load_mem(&l, data + 1, size - 1, err, sizeof err) == PC_OK)
            exercise(l, data + 1, size - 1);
        pc_matcher_free(l);
        break;
    default:
        load_patched(data + 1, size - 1);
    }
    return 0;
}
