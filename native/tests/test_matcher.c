/*
 * test_matcher.c - unit tests of the indicator matcher (pc_matcher.h):
 * lifecycle misuse, the label-boundary table, keywords, IP prefixes,
 * fingerprints, resuming a full hit array, the compiled file (round trip,
 * flipped bytes, truncation, another version) and allocation failures.
 * Prints "test_matcher: N passed, M failed"; exits non-zero on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "crc_ref.h"
#include "pc_alloc.h"
#include "pc_matcher.h"


/* Matches one name; writes up to 16 ids into ids and returns how many (or a status). */
static int match1(const pc_matcher *m, const char *name, uint32_t *ids, uint64_t *rej)
{
    pc_hit hits[16];
    uint32_t off[2] = {0, (uint32_t)strlen(name)};
    size_t next = 0;
    int n = pc_matcher_match_names(m, (const uint8_t *)name, off, 1, &next, hits, 16, rej);
    for (int i = 0; i < n; i++)
        ids[i] = hits[i].id;
    return n;
}

/* Formats ids as "1,2" for comparison with the expected string. */
static void fmt_ids(char *out, const uint32_t *ids, int n)
{
    out[0] = 0;
    for (int i = 0; i < n; i++)
        sprintf(out + strlen(out), "%s%u", i ? "," : "", ids[i]);
}

static pc_matcher *build_names(void)
{
    pc_matcher *m = NULL;
    static const struct { const char *d; uint32_t id; } doms[] = {
        {"evil.com", 1}, {"a.evil.com", 2}, {"firebaseio.com", 3}, {"Shared.Example.", 4},
        {"shared.example", 5}, {"x.y.z.deep.test", 6}, {"deep.test", 6},
    };
    if (pc_matcher_new(&m) != PC_OK)
        return NULL;
    for (size_t i = 0; i < sizeof doms / sizeof doms[0]; i++)
        if (pc_matcher_add_domain(m, doms[i].d, strlen(doms[i].d), doms[i].id) != 1)
            goto fail;
    if (pc_matcher_add_keyword(m, "Track", 5, 9) != 1 || pc_matcher_add_keyword(m, "rack", 4, 10) != 1 ||
        pc_matcher_add_keyword(m, "spy.", 4, 11) != 1)
        goto fail;
    if (pc_matcher_prepare(m) != PC_OK)
        goto fail;
    return m;
fail:
    pc_matcher_free(m);
    return NULL;
}

/* The label-boundary and normalisation table (expected ids derived by hand). */
static const struct { const char *name; const char *want; int rejected; } name_cases[] = {
    {"evil.com", "1", 0},
    {"a.b.evil.com", "1", 0},
    {"a.evil.com", "2,1", 0},              /* most specific first */
    {"b.a.evil.com", "2,1", 0},
    {"notevil.com", "", 0},
    {"evil.com.au", "", 0},
    {"evil.comx", "", 0},
    {"evil-com.net", "", 0},
    {"xevil.com", "", 0},
    {"aevil.com", "", 0},
    {"EVIL.COM", "1", 0},
    {"Evil.Com.", "1", 0},                 /* one trailing dot dropped */
    {"evil.com..", "", 1},                 /* only one */
    {"a..evil.com", "", 1},
    {".evil.com", "", 1},
    {".", "", 1},
    {"", "", 1},
    {"com", "", 0},
    {"x.firebaseio.com", "3", 0},
    {"firebaseio.com", "3", 0},
    {"firebaseio.com.evil.com", "1", 0},
    {"myfirebaseio.com", "", 0},
    {"shared.example", "4,5", 0},          /* one pattern, two ids (folded, dot dropped) */
    {"q.x.y.z.deep.test", "6", 0},         /* same id through two domains: once */
    {"tracker.net", "9,10", 0},            /* keywords, reversed scan: "rack" found first? no: both */
    {"TRACK.evil.com", "1,9,10", 0},       /* domains before keywords */
    {"myspy.app", "11", 0},
    {"spy", "", 0},
};

static void test_boundaries(void)
{
    pc_matcher *m = build_names();
    CHECK(m != NULL, "build");
    if (!m)
        return;
    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        uint32_t ids[16];
        char got[128];
        uint64_t rej = 0;
        int n = match1(m, name_cases[i].name, ids, &rej);
        CHECK(n >= 0, "%s: status %d", name_cases[i].name, n);
        fmt_ids(got, ids, n < 0 ? 0 : n);
        /* Keyword order within a name is the order of discovery; compare as written. */
        CHECK(strcmp(got, name_cases[i].want) == 0 || (strcmp(name_cases[i].want, "9,10") == 0 &&
              strcmp(got, "10,9") == 0) || (strcmp(name_cases[i].want, "1,9,10") == 0 &&
              strcmp(got, "1,10,9") == 0),
              "%s: got [%s] want [%s]", name_cases[i].name, got, name_cases[i].want);
        CHECK(rej == (uint64_t)name_cases[i].rejected, "%s: rejected %llu", name_cases[i].name,
              (unsigned long long)rej);
    }
    pc_matcher_free(m);
}

static void test_lengths(void)
{
    pc_matcher *m = NULL;
    char name[300], dom[300];
    uint32_t ids[16];
    uint64_t rej = 0;
    /* A 253-byte name: labels of 63 bytes ("a"*63 + ".") x3 + 61 bytes. */
    memset(name, 'a', sizeof name);
    name[63] = name[127] = name[191] = '.';
    memcpy(name + 192, "b", 1);
    name[253] = 0;
    memcpy(dom, name + 128, 126); /* the last two labels */
    dom[125] = 0;
    CHECK(pc_matcher_new(&m) == PC_OK, "new");
    CHECK(pc_matcher_add_domain(m, dom, strlen(dom), 7) == 1, "add");
    CHECK(pc_matcher_add_domain(m, name, 253, 8) == 1, "253-byte domain");
    CHECK(pc_matcher_add_domain(m, name, 254, 8) == PC_ERR_ARG, "254-byte domain");
    CHECK(pc_matcher_add_domain(m, "a..b", 4, 8) == PC_ERR_ARG, "empty label");
    CHECK(pc_matcher_add_domain(m, ".ab", 3, 8) == PC_ERR_ARG, "leading dot");
    CHECK(pc_matcher_add_domain(m, "", 0, 8) == PC_ERR_ARG, "empty");
    CHECK(pc_matcher_add_domain(m, ".", 1, 8) == PC_ERR_ARG, "dot");
    CHECK(pc_matcher_add_keyword(m, "", 0, 8) == PC_ERR_ARG, "empty keyword");
    CHECK(pc_matcher_prepare(m) == PC_OK, "prepare");
    CHECK(match1(m, name, ids, &rej) == 2 && ids[0] == 8 && ids[1] == 7 && rej == 0, "253 bytes match");
    name[253] = '.';
    name[254] = 0;
    CHECK(match1(m, name, ids, &rej) == 2 && rej == 0, "253 bytes + trailing dot match");
    name[253] = 'c';
    CHECK(match1(m, name, ids, &rej) == 0 && rej == 1, "254 bytes rejected");
    pc_matcher_free(m);
}

/*
 * Dots at every offset around the 64-byte words in which the matcher keeps
 * the dots of a name: a suffix starting just after, a dot pair straddling
 * two words (an empty label), a first and a last label of one byte.
 */
static void test_dot_words(void)
{
    pc_matcher *m = NULL;
    char name[260];
    uint32_t ids[16];
    uint64_t rej;
    CHECK(pc_matcher_new(&m) == PC_OK, "new");
    CHECK(pc_matcher_add_domain(m, "x.com", 5, 1) == 1, "add");
    CHECK(pc_matcher_prepare(m) == PC_OK, "prepare");
    for (size_t len = 6; len <= 253; len++) {
        /* "aaa...a.x.com": the boundary dot at len - 6. */
        memset(name, 'a', len);
        memcpy(name + len - 6, ".x.com", 6);
        name[len] = 0;
        rej = 0;
        CHECK(match1(m, name, ids, &rej) == (len > 6 ? 1 : 0) && rej == (len > 6 ? 0u : 1u),
              "len %zu: hit expected (a leading dot rejected)", len);
        /* Two dots in a row just before the suffix: an empty label, wherever it falls. */
        if (len > 7) {
            name[len - 7] = '.';
            rej = 0;
            CHECK(match1(m, name, ids, &rej) == 0 && rej == 1, "len %zu: empty label at %zu", len, len - 7);
            name[len - 7] = 'a';
        }
        /* A one-byte first label, and the name without the suffix's boundary. */
        if (len > 8) {
            name[1] = '.';
            rej = 0;
            CHECK(match1(m, name, ids, &rej) == 1 && rej == 0, "len %zu: one-byte first label", len);
            name[len - 6] = 'a';
            CHECK(match1(m, name, ids, &rej) == 0 && rej == 0, "len %zu: no boundary, no hit", len);
        }
    }
    for (size_t d = 1; d + 1 < 253; d++) {
        /* One pair of dots at offsets d, d + 1 of a 253-byte name (no suffix domain). */
        memset(name, 'b', 253);
        name[253] = 0;
        name[d] = name[d + 1] = '.';
        rej = 0;
        CHECK(match1(m, name, ids, &rej) == 0 && rej == 1, "dots at %zu, %zu: rejected", d, d + 1);
    }
    pc_matcher_free(m);
}

/*
 * More distinct keywords in one name than the matcher records on its first
 * pass (256): the second run of the automaton still reports each id once.
 */
static void test_keyword_spill(void)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char name[201], kw[5];
    static char seen[400][5];
    size_t nkw = 0, next = 0;
    static pc_hit hits[1024];
    uint8_t got[400] = {0};
    uint32_t off[2] = {0, 200}, x = 12345;
    pc_matcher *m = NULL;
    int n, once = 1;
    for (int i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        name[i] = alpha[(x >> 16) % 36];
    }
    name[200] = 0;
    CHECK(pc_matcher_new(&m) == PC_OK, "new");
    /* Every distinct 3- and 4-byte substring of the name is a keyword. */
    for (size_t k = 3; k <= 4; k++)
        for (size_t i = 0; i + k <= 200 && nkw < 400; i++) {
            size_t j = 0;
            memcpy(kw, name + i, k);
            kw[k] = 0;
            while (j < nkw && strcmp(seen[j], kw) != 0)
                j++;
            if (j < nkw)
                continue;
            memcpy(seen[nkw], kw, k + 1);
            CHECK(pc_matcher_add_keyword(m, kw, k, (uint32_t)nkw) == 1, "add %s", kw);
            nkw++;
        }
    CHECK(nkw > 300, "%zu keywords", nkw);
    CHECK(pc_matcher_prepare(m) == PC_OK, "prepare");
    n = pc_matcher_match_names(m, (const uint8_t *)name, off, 1, &next, hits, 1024, NULL);
    CHECK(n == (int)nkw, "%d hits for %zu keywords", n, nkw);
    for (int i = 0; i < n; i++) {
        if (hits[i].id >= nkw || got[hits[i].id])
            once = 0;
        else
            got[hits[i].id] = 1;
    }
    CHECK(once, "each keyword id once");
    pc_matcher_free(m);
}

static void test_lifecycle(void)
{
    pc_matcher *m = NULL;
    pc_hit hits[4];
    uint32_t off[2] = {0, 3};
    uint8_t addr[16] = {10, 0, 0, 1}, v4 = 4, plen = 32;
    uint32_t id = 1;
    size_t next = 0;
    const uint8_t *md;
    size_t mdlen;
    char err[200];
    CHECK(pc_matcher_new(NULL) == PC_ERR_ARG, "new NULL");
    CHECK(pc_matcher_new(&m) == PC_OK, "new");
    CHECK(pc_matcher_match_names(m, (const uint8_t *)"abc", off, 1, &next, hits, 4, NULL) == PC_ERR_STATE,
          "match before prepare");
    CHECK(pc_matcher_match_ips(m, addr, &v4, 1, &next, hits, 4) == PC_ERR_STATE, "ips before prepare");
    CHECK(pc_matcher_save(m, "/tmp/never", NULL, NULL, 0, err, sizeof err) == PC_ERR_STATE, "save before prepare");
    CHECK(pc_matcher_add_ips(m, addr, &v4, &plen, &id, 1) == 1, "add ip");
    plen = 33;
    CHECK(pc_matcher_add_ips(m, addr, &v4, &plen, &id, 1) == PC_ERR_ARG, "v4 /33");
    v4 = 5;
    plen = 8;
    CHECK(pc_matcher_add_ips(m, addr, &v4, &plen, &id, 1) == PC_ERR_ARG, "version 5");
    CHECK(pc_matcher_add_hashes(m, addr, off, &id, 1) == PC_ERR_ARG, "3-byte fingerprint");
    CHECK(pc_matcher_prepare(m) == PC_OK, "prepare");
    CHECK(pc_matcher_prepare(m) == PC_ERR_STATE, "prepare twice");
    CHECK(pc_matcher_add_domain(m, "x.com", 5, 1) == PC_ERR_STATE, "add after prepare");
    CHECK(pc_matcher_add_keyword(m, "x", 1, 1) == PC_ERR_STATE, "keyword after prepare");
    v4 = 4;
    plen = 32;
    CHECK(pc_matcher_add_ips(m, addr, &v4, &plen, &id, 1) == PC_ERR_STATE, "ip after prepare");
    CHECK(strlen(pc_matcher_error(m)) > 0, "error text");
    CHECK(pc_matcher_metadata(m, 0, &md, &mdlen) == PC_ERR_STATE, "metadata of a built matcher");
    CHECK(pc_matcher_match_names(m, (const uint8_t *)"abc", off, 1, NULL, hits, 4, NULL) == PC_ERR_ARG, "NULL next");
    CHECK(pc_matcher_match_names(m, (const uint8_t *)"abc", off, 1, &next, hits, 0, NULL) == PC_ERR_ARG, "cap 0");
    next = 2;
    CHECK(pc_matcher_match_names(m, (const uint8_t *)"abc", off, 1, &next, hits, 4, NULL) == PC_ERR_ARG, "next > n");
    next = 0;
    CHECK(pc_matcher_match_names(m, (const uint8_t *)"abc", off, 1, &next, hits, 4, NULL) == 0 && next == 1,
          "match after prepare");
    CHECK(pc_matcher_match_names(m, NULL, NULL, 0, &next, hits, 4, NULL) == PC_ERR_ARG, "next > n = 0");
    next = 0;
    CHECK(pc_matcher_match_names(m, NULL, NULL, 0, &next, hits, 4, NULL) == 0, "empty batch");
    pc_matcher_free(m);
    pc_matcher_free(NULL);
}

/* Builds the IP / fingerprint matcher used by two tests. */
static pc_matcher *build_ips(void)
{
    static const struct { uint8_t a[16]; uint8_t v, p; uint32_t id; } pre[] = {
        {{0}, 4, 0, 100},                                     /* 0.0.0.0/0 */
        {{10}, 4, 8, 101},                                    /* 10.0.0.0/8 */
        {{10, 1, 2, 3}, 4, 32, 102},                          /* 10.1.2.3 */
        {{10, 1, 2, 99}, 4, 24, 103},                         /* host bits ignored: 10.1.2.0/24 */
        {{0x20, 0x01, 0x0d, 0xb8}, 6, 32, 200},               /* 2001:db8::/32 */
        {{0x20, 0x01, 0x0d, 0xb8, [15] = 1}, 6, 128, 201},    /* 2001:db8::1 */
        {{[10] = 0xff, [11] = 0xff, 192, 0, 2, 0}, 6, 120, 104}, /* ::ffff:192.0.2.0/120 = 192.0.2.0/24 */
        {{0}, 6, 0, 202},                                     /* ::/0 */
    };
    pc_matcher *m = NULL;
    uint8_t fp[20 + 32 + 20];
    uint32_t foff[4] = {0, 20, 52, 72}, fid[3] = {300, 301, 302};
    if (pc_matcher_new(&m) != PC_OK)
        return NULL;
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (pc_matcher_add_ips(m, pre[i].a, &pre[i].v, &pre[i].p, &pre[i].id, 1) != 1)
            goto fail;
    memset(fp, 0xab, 20);
    memset(fp + 20, 0xcd, 32);
    memset(fp + 52, 0xab, 20);     /* the same SHA-1 with a second id */
    if (pc_matcher_add_hashes(m, fp, foff, fid, 3) != 3 || pc_matcher_prepare(m) != PC_OK)
        goto fail;
    return m;
fail:
    pc_matcher_free(m);
    return NULL;
}

static void check_ips(pc_matcher *m, const char *what)
{
    static const struct { uint8_t a[16]; uint8_t v; const char *want; } q[] = {
        {{10, 1, 2, 3}, 4, "102,103,101,100"},
        {{10, 1, 2, 4}, 4, "103,101,100"},
        {{10, 2, 0, 0}, 4, "101,100"},
        {{11, 0, 0, 0}, 4, "100"},
        {{192, 0, 2, 7}, 4, "104,100"},
        {{[10] = 0xff, [11] = 0xff, 10, 1, 2, 3}, 6, "102,103,101,100"}, /* v4-mapped */
        {{0x20, 0x01, 0x0d, 0xb8, [15] = 1}, 6, "201,200,202"},
        {{0x20, 0x01, 0x0d, 0xb8, [15] = 2}, 6, "200,202"},
        {{0x20, 0x01, 0x0d, 0xb9}, 6, "202"},
        {{10, 1, 2, 3}, 7, ""},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        pc_hit hits[16];
        uint32_t ids[16];
        char got[128];
        size_t next = 0;
        int n = pc_matcher_match_ips(m, q[i].a, &q[i].v, 1, &next, hits, 16);
        for (int k = 0; k < n; k++)
            ids[k] = hits[k].id;
        fmt_ids(got, ids, n < 0 ? 0 : n);
        CHECK(strcmp(got, q[i].want) == 0, "%s: address %zu: got [%s] want [%s]", what, i, got, q[i].want);
    }
    {
        uint8_t d[20 + 32 + 20 + 5];
        uint32_t off[5] = {0, 20, 52, 72, 77};
        pc_hit hits[16];
        size_t next = 0;
        int n;
        memset(d, 0xab, 20);
        memset(d + 20, 0xcd, 32);
        memset(d + 52, 0xcd, 20);
        memset(d + 72, 0xab, 5);
        n = pc_matcher_match_hashes(m, d, off, 4, &next, hits, 16);
        CHECK(n == 3 && hits[0].item == 0 && hits[1].item == 0 && hits[2].item == 1 && hits[2].id == 301 &&
              next == 4, "%s: fingerprints: %d hits", what, n);
        CHECK(n == 3 && ((hits[0].id == 300 && hits[1].id == 302) || (hits[0].id == 302 && hits[1].id == 300)),
              "%s: both ids of one SHA-1", what);
    }
}

static void test_ips(void)
{
    pc_matcher *m = build_ips();
    CHECK(m != NULL, "build ips");
    if (m)
        check_ips(m, "built");
    pc_matcher_free(m);
}

/* A small hit array: calls resume by *next and the union is the full answer. */
static void test_resume(void)
{
    pc_matcher *m = build_names();
    const char *names[] = {"a.evil.com", "x", "evil.com", "b.a.evil.com", "tracker", "firebaseio.com"};
    uint8_t buf[256];
    uint32_t off[7];
    pc_hit hits[3], all[32];
    size_t next = 0, got = 0, p = 0;
    int calls = 0, n;
    for (int i = 0; i < 6; i++) {
        off[i] = (uint32_t)p;
        memcpy(buf + p, names[i], strlen(names[i]));
        p += strlen(names[i]);
    }
    off[6] = (uint32_t)p;
    CHECK(m != NULL, "build");
    if (!m)
        return;
    while (next < 6 && calls < 20) {
        n = pc_matcher_match_names(m, buf, off, 6, &next, hits, 3, NULL);
        CHECK(n > 0, "call %d: %d", calls, n);
        if (n <= 0)
            break;
        memcpy(all + got, hits, (size_t)n * sizeof hits[0]);
        got += (size_t)n;
        calls++;
    }
    /* 2 + 0 + 1 + 2 + 2 + 1 hits; groups of whole names fit in 3: (2)(1,2)... */
    CHECK(got == 8 && next == 6, "resume: %zu hits, next %zu", got, next);
    CHECK(got == 8 && all[0].item == 0 && all[0].id == 2 && all[7].item == 5 && all[7].id == 3, "resume order");
    CHECK(calls >= 3, "resumed %d times", calls);
    next = 0;
    CHECK(pc_matcher_match_names(m, buf, off, 6, &next, hits, 1, NULL) == PC_ERR_LIMIT && next == 0,
          "one name with more hits than cap");
    pc_matcher_free(m);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fclose(f);
    return n;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    long n = file_size(path);
    uint8_t *p;
    FILE *f;
    if (n < 0 || !(p = malloc((size_t)n + 1)) || !(f = fopen(path, "rb")))
        return NULL;
    *len = fread(p, 1, (size_t)n, f);
    fclose(f);
    return p;
}

static void test_file(void)
{
    char path[64], err[256];
    pc_matcher *m = build_names(), *ip = build_ips(), *l = NULL;
    static const uint8_t meta[] = "zeroonetwo";
    uint64_t moff[4] = {0, 4, 7, 10};
    const uint8_t *md;
    size_t mdlen, len = 0;
    uint8_t *img;
    snprintf(path, sizeof path, "/tmp/test_matcher.%d.pcm", (int)getpid());
    CHECK(m && ip, "build");
    if (!m || !ip)
        goto done;
    CHECK(pc_matcher_save(m, path, meta, moff, 3, err, sizeof err) == PC_OK, "save: %s", err);
    CHECK(pc_matcher_load(&l, path, err, sizeof err) == PC_OK, "load: %s", err);
    if (l) {
        pc_matcher_stats st;
        for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
            uint32_t a[16], b[16];
            int na = match1(m, name_cases[i].name, a, NULL), nb = match1(l, name_cases[i].name, b, NULL);
            CHECK(na == nb && memcmp(a, b, sizeof a[0] * (size_t)(na > 0 ? na : 0)) == 0, "round trip %s",
                  name_cases[i].name);
        }
        CHECK(pc_matcher_metadata(l, 1, &md, &mdlen) == PC_OK && mdlen == 3 && memcmp(md, "one", 3) == 0,
              "metadata 1");
        CHECK(pc_matcher_metadata(l, 2, &md, &mdlen) == PC_OK && mdlen == 3 && memcmp(md, "two", 3) == 0,
              "metadata 2");
        CHECK(pc_matcher_metadata(l, 3, &md, &mdlen) == PC_ERR_ARG, "metadata 3 does not exist");
        CHECK(pc_matcher_add_domain(l, "x.com", 5, 1) == PC_ERR_STATE, "add to a loaded matcher");
        pc_matcher_stats_get(l, &st);
        CHECK(st.loaded == 1 && st.domains == 6 && st.keywords == 3 && st.meta_records == 3 &&
              st.memory_bytes == (uint64_t)file_size(path), "loaded stats");
        pc_matcher_free(l);
        l = NULL;
    }
    CHECK(pc_matcher_save(ip, path, NULL, NULL, 0, err, sizeof err) == PC_OK, "save ips: %s", err);
    CHECK(pc_matcher_load(&l, path, err, sizeof err) == PC_OK, "load ips: %s", err);
    if (l) {
        check_ips(l, "loaded");
        pc_matcher_free(l);
        l = NULL;
    }
    /* Damage: every single flipped byte, every truncation, another version. */
    CHECK(pc_matcher_save(m, path, meta, moff, 3, err, sizeof err) == PC_OK, "save again");
    img = read_file(path, &len);
    CHECK(img != NULL && len > 200, "read back");
    if (img) {
        int undetected = 0, truncated_ok = 0;
        for (size_t i = 0; i < len; i++) {
            img[i] ^= 0x40;
            if (pc_matcher_load_mem(&l, img, len, err, sizeof err) != PC_ERR_CORRUPT) {
                /* Only alignment padding inside the header is not covered; there is none. */
                undetected++;
                pc_matcher_free(l);
                l = NULL;
            }
            img[i] ^= 0x40;
        }
        CHECK(undetected == 0, "%d flipped bytes went unnoticed", undetected);
        for (size_t cut = 0; cut < len; cut += (cut < 300 ? 1 : 97))
            if (pc_matcher_load_mem(&l, img, cut, err, sizeof err) == PC_ERR_CORRUPT)
                truncated_ok++;
            else
                pc_matcher_free(l), l = NULL;
        CHECK(truncated_ok > 0 && pc_matcher_load_mem(&l, img, len - 1, err, sizeof err) == PC_ERR_CORRUPT &&
              strstr(err, "truncated") != NULL, "truncated: %s", err);
        img[8] = 1;   /* a file of format 1 (the layout before the sorted domain table) */
        CHECK(pc_matcher_load_mem(&l, img, len, err, sizeof err) == PC_ERR_CORRUPT && strstr(err, "version 1") &&
                  strstr(err, "recompile"),
              "an old version: %s", err);
        img[8] = PC_MATCHER_FORMAT;
        CHECK(pc_matcher_load_mem(&l, img, len, err, sizeof err) == PC_OK, "undamaged: %s", err);
        pc_matcher_free(l);
        l = NULL;
        free(img);
    }
    CHECK(pc_matcher_load(&l, "/nonexistent/x.pcm", err, sizeof err) == PC_ERR_OPEN && strlen(err) > 0, "missing");
done:
    unlink(path);
    pc_matcher_free(m);
    pc_matcher_free(ip);
}

/* Every allocation point fails once in turn: a status comes back, never a crash or a leak. */
static void test_alloc_failures(void)
{
    char path[64], err[256];
    int ok_runs = 0, nomem = 0;
    snprintf(path, sizeof path, "/tmp/test_matcher_af.%d.pcm", (int)getpid());
    for (long k = 0; k < 400 && ok_runs == 0; k++) {
        pc_matcher *m = NULL, *l = NULL;
        uint32_t ids[16];
        int rc;
        pc_alloc_fail_after(k);
        rc = pc_matcher_new(&m);
        if (rc == PC_OK)
            rc = pc_matcher_add_domain(m, "evil.com", 8, 1) == 1 ? PC_OK : PC_ERR_NOMEM;
        if (rc == PC_OK)
            rc = pc_matcher_add_keyword(m, "track", 5, 2) == 1 ? PC_OK : PC_ERR_NOMEM;
        if (rc == PC_OK) {
            uint8_t a[16] = {10}, v = 4, p = 8;
            uint32_t id = 3;
            rc = pc_matcher_add_ips(m, a, &v, &p, &id, 1) == 1 ? PC_OK : PC_ERR_NOMEM;
        }
        if (rc == PC_OK) {
            rc = pc_matcher_prepare(m);
            if (rc == PC_ERR_NOMEM) {
                /* A failed prepare leaves the matcher usable: it may be retried. */
                pc_alloc_fail_after(-1);
                CHECK(pc_matcher_prepare(m) == PC_OK, "prepare retried after NOMEM (k=%ld)", k);
                CHECK(match1(m, "a.evil.com", ids, NULL) == 1, "match after retried prepare");
                rc = PC_ERR_NOMEM;
            }
        }
        if (rc == PC_OK)
            rc = pc_matcher_save(m, path, NULL, NULL, 0, err, sizeof err);
        if (rc == PC_OK)
            rc = pc_matcher_load(&l, path, err, sizeof err);
        pc_alloc_fail_after(-1);
        CHECK(rc == PC_OK || rc == PC_ERR_NOMEM, "k=%ld: status %d", k, rc);
        if (rc == PC_OK) {
            ok_runs++;
            CHECK(match1(l, "x.evil.com", ids, NULL) == 1 && ids[0] == 1, "match after the run");
        } else {
            nomem++;
        }
        pc_matcher_free(l);
        pc_matcher_free(m);
    }
    CHECK(ok_runs == 1 && nomem > 10, "%d failing runs before a clean one", nomem);
    unlink(path);
}

/* Keywords whose automaton would pass the transition-table bound: PC_ERR_LIMIT, no crash. */
static void test_keyword_limit(void)
{
    pc_matcher *m = NULL;
    uint8_t kw[253];
    uint32_t seed = 12345;
    int rc = PC_OK;
    CHECK(pc_matcher_new(&m) == PC_OK, "new");
    for (uint32_t i = 0; i < 300 && rc >= 0; i++) {
        uint32_t off[2] = {0, sizeof kw};
        for (size_t j = 0; j < sizeof kw; j++) {
            seed = seed * 1103515245u + 12345u;
            kw[j] = (uint8_t)(seed >> 16);   /* every byte value: 256 classes */
        }
        rc = pc_matcher_add_keywords(m, kw, off, &i, 1);
    }
    CHECK(rc == 1, "add keywords: %d", rc);
    rc = pc_matcher_prepare(m);
    CHECK(rc == PC_ERR_LIMIT && strstr(pc_matcher_error(m), "keyword automaton"), "limit: %d %s", rc,
          pc_matcher_error(m));
    pc_matcher_free(m);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/*
 * match_lines: the same hits as match_names, items being line offsets, an
 * empty line rejected, resumable with a tiny hit array; metadata_copy from a
 * file and from memory; and a file whose domain sections are damaged behind
 * a valid CRC (format 2 checks those indexes where they are read) loads,
 * matches without reading outside (ASan) and never crashes.
 */
static void test_lines_and_copy(void)
{
    static const char block[] = "evil.com\nnotevil.com\n\nx.a.evil.com\nshared.example";
    static const uint8_t meta[] = "zeroonetwo";
    uint64_t moff[4] = {0, 4, 7, 10};
    pc_matcher *m = build_names(), *l = NULL;
    pc_hit hits[2], all[16];
    size_t next = 0, got = 0, len = 0;
    uint64_t rej = 0;
    uint8_t buf[8], *img;
    char path[64], err[256];
    int rc;
    CHECK(m != NULL, "build");
    if (!m)
        return;
    while (next < sizeof block - 1) {
        rc = pc_matcher_match_lines(m, (const uint8_t *)block, sizeof block - 1, &next, hits, 2, &rej);
        CHECK(rc >= 0, "match_lines: %d", rc);
        if (rc < 0)
            break;
        for (int i = 0; i < rc && got < 16; i++)
            all[got++] = hits[i];
    }
    /* evil.com@0 -> 1; x.a.evil.com@22 -> 2,1; shared.example@35 -> 4,5 (dedup of the folded pattern). */
    CHECK(got == 5 && all[0].item == 0 && all[0].id == 1 && all[1].item == 22 && all[1].id == 2 &&
              all[2].item == 22 && all[2].id == 1 && all[3].item == 35 && all[3].id == 4 &&
              all[4].item == 35 && all[4].id == 5,
          "match_lines hits (%zu)", got);
    CHECK(rej == 1, "the empty line is rejected (%llu)", (unsigned long long)rej);
    next = 99;
    CHECK(pc_matcher_match_lines(m, (const uint8_t *)block, sizeof block - 1, &next, hits, 2, NULL) == PC_ERR_ARG,
          "next past the end");
    snprintf(path, sizeof path, "/tmp/test_matcher_lines.%d.pcm", (int)getpid());
    CHECK(pc_matcher_save(m, path, meta, moff, 3, err, sizeof err) == PC_OK, "save: %s", err);
    CHECK(pc_matcher_load(&l, path, err, sizeof err) == PC_OK, "load: %s", err);
    if (l) {
        CHECK(pc_matcher_metadata_copy(l, 1, buf, sizeof buf, &len) == PC_OK && len == 3 && memcmp(buf, "one", 3) == 0,
              "metadata_copy 1 (pread)");
        CHECK(pc_matcher_metadata_copy(l, 0, buf, 2, &len) == PC_ERR_LIMIT && len == 4, "metadata_copy too small");
        CHECK(pc_matcher_metadata_copy(l, 3, buf, sizeof buf, &len) == PC_ERR_ARG, "metadata_copy 3 does not exist");
        pc_matcher_free(l);
        l = NULL;
    }
    CHECK(pc_matcher_metadata_copy(m, 0, buf, sizeof buf, &len) == PC_ERR_STATE, "metadata_copy of a built matcher");
    img = read_file(path, &len);
    if (img) {
        size_t imglen = len;
        CHECK(pc_matcher_load_mem(&l, img, imglen, err, sizeof err) == PC_OK, "load_mem: %s", err);
        if (l) {
            CHECK(pc_matcher_metadata_copy(l, 2, buf, sizeof buf, &len) == PC_OK && len == 3 &&
                      memcmp(buf, "two", 3) == 0, "metadata_copy 2 (memory)");
            pc_matcher_free(l);
            l = NULL;
        }
        /* Sections 1..7 are the domain table: fill each with 0xff or 0x00, fix the CRC. */
        for (int sec = 1; sec <= 7; sec++)
            for (int fill = 0; fill < 2; fill++) {
                uint8_t *bad = malloc(imglen);
                uint64_t o = rd64(img + 32 + 16 * sec), n = rd64(img + 32 + 16 * sec + 8);
                uint32_t c;
                if (!bad)
                    continue;
                memcpy(bad, img, imglen);
                memset(bad + o, fill ? 0xff : 0x00, (size_t)n);
                c = crc32_ref(bad + 24, imglen - 24);
                for (int k = 0; k < 4; k++)
                    bad[20 + k] = (uint8_t)(c >> (8 * k));
                if (pc_matcher_load_mem(&l, bad, imglen, err, sizeof err) == PC_OK) {
                    uint32_t ids[16];
                    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++)
                        (void)match1(l, name_cases[i].name, ids, NULL);
                    next = 0;
                    while (next < sizeof block - 1 &&
                           pc_matcher_match_lines(l, (const uint8_t *)block, sizeof block - 1, &next, all, 16,
                                                  NULL) >= 0)
                        ;
                    pc_matcher_free(l);
                    l = NULL;
                }
                free(bad);
                passed++;
            }
        free(img);
    }
    remove(path);
    pc_matcher_free(m);
}

int main(void)
{
    test_keyword_limit();
    test_lifecycle();
    test_boundaries();
    test_lengths();
    test_dot_words();
    test_keyword_spill();
    test_ips();
    test_resume();
    test_file();
    test_lines_and_copy();
    test_alloc_failures();
    return check_report("test_matcher");
}
