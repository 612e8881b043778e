/*
 * test_matcher_build.c - unit tests of the bulk path from an indicator list
 * to the matcher (pocketcheck.h, matcher_build.c): pc_domain_lines() (which
 * lines are clean domains, where it stops, folding, CRLF, a full offsets
 * array, bad arguments), pc_strings_sort() (order, stability, keys,
 * duplicates, an allocation failure) and pc_strings_join() (pieces, a string
 * too long for the buffer, bad indexes).
 * Prints "test_matcher_build: N passed, M failed"; exits non-zero on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pc_alloc.h"
#include "pocketcheck.h"


/* Runs pc_domain_lines over text from 0; returns its status, sets *stop and *n, and "a,b" of the values into got. */
static int scan(const char *text, size_t *stop, size_t *n, char *got, size_t gotcap)
{
    size_t len = strlen(text), vlen = 0, pos = 0;
    uint8_t *vals = malloc(len + 1);
    uint32_t off[64] = {0};
    int rc;
    *n = 0;
    rc = pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, off, 64, n);
    *stop = pos;
    got[0] = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t at = strlen(got);
        snprintf(got + at, gotcap - at, "%s%.*s", i ? "," : "", (int)(off[i + 1] - off[i]), (char *)vals + off[i]);
    }
    free(vals);
    return rc;
}

/* One line alone: 1 when pc_domain_lines takes it as a clean domain. */
static int clean(const char *line)
{
    char got[600];
    size_t stop, n;
    int rc = scan(line, &stop, &n, got, sizeof got);
    return rc == 0 && n == 1;
}

/* One line alone: 1 when pc_domain_lines stops at it (not clean, and not skipped as empty). */
static int stops(const char *line)
{
    char got[600];
    size_t stop, n;
    return scan(line, &stop, &n, got, sizeof got) == 1 && stop == 0 && n == 0;
}

static void test_clean_lines(void)
{
    char lab63[64], lab64[65], name253[254], name254[255];
    memset(lab63, 'a', 63);
    lab63[63] = 0;
    memset(lab64, 'a', 64);
    lab64[64] = 0;
    /* 253 bytes: four labels of 62 and ".com" would be 255; build it from labels of 61. */
    memset(name253, 'b', 253);
    for (int i = 61; i < 253; i += 62)
        name253[i] = '.';
    name253[253] = 0;
    memcpy(name254, name253, 253);
    name254[253] = 'b';
    name254[254] = 0;

    CHECK(clean("evil.example"), "two labels");
    CHECK(clean("localhost.localdomain"), "alone on its line it is a domain, as the per-line reader has it");
    CHECK(clean("a-b.c_d.example"), "hyphen inside, underscore");
    CHECK(clean("x1.2com"), "last label with a letter");
    CHECK(clean("EVIL.Example"), "either case");
    CHECK(stops("example"), "one label");
    CHECK(stops("1.2.3.4"), "an address: the last label is all digits");
    CHECK(stops("evil.123"), "numeric top-level label");
    CHECK(stops("-evil.example"), "leading hyphen");
    CHECK(stops("evil-.example"), "trailing hyphen");
    CHECK(stops("evil..example"), "empty label");
    CHECK(stops(".evil.example"), "leading dot");
    CHECK(stops("evil.example."), "trailing dot (the per-line reader handles it)");
    CHECK(stops("evil.example # c"), "a comment");
    CHECK(clean("0.0.0.0 evil.example"), "a hosts-file line");
    CHECK(clean("127.0.0.1\t Evil.Example \t"), "a hosts-file line with tabs and trailing blanks");
    CHECK(stops("0.0.0.0 a.example b.example"), "a hosts-file line of two names");
    CHECK(stops("0.0.0.0 LocalHost.LocalDomain"), "localhost.localdomain on a hosts-file line");
    CHECK(stops("0.0.0.0 1.2.3.4"), "an address on a hosts-file line");
    CHECK(stops("0.0.0.0"), "the sinkhole alone");
    CHECK(stops("0.0.0.0 "), "the sinkhole and a blank");
    CHECK(stops("0.0.0.00 evil.example"), "another address");
    CHECK(stops("10.0.0.0 evil.example"), "not a sinkhole address");
    CHECK(stops("http://evil.example/x"), "a URL");
    CHECK(stops("b\xc3\xbc" "cher.example"), "non-ASCII");
    CHECK(stops("evil.exa\tmple"), "a tab");
    {
        char buf[80];
        snprintf(buf, sizeof buf, "%s.example", lab63);
        CHECK(clean(buf), "a 63-byte label");
        snprintf(buf, sizeof buf, "%s.example", lab64);
        CHECK(stops(buf), "a 64-byte label");
    }
    CHECK(strlen(name253) == 253 && clean(name253), "253 bytes");
    CHECK(stops(name254), "254 bytes");
}

static void test_lines_stop_and_fold(void)
{
    char got[600];
    size_t stop, n;
    const char *text = "A.Example\r\n\n\r\nb.example\n# comment\nc.example";
    int rc = scan(text, &stop, &n, got, sizeof got);
    CHECK(rc == 1 && n == 2 && strcmp(got, "a.example,b.example") == 0, "rc %d n %zu got %s", rc, n, got);
    CHECK(stop == (size_t)(strstr(text, "# comment") - text), "stops at the comment's start: %zu", stop);

    /* Resuming after the bad line reads the rest, appending to the same arrays. */
    {
        size_t len = strlen(text), vlen = 0, pos = 0, k = 0;
        uint8_t vals[64];
        uint32_t off[8] = {0};
        CHECK(pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, off, 8, &k) == 1, "first stop");
        pos = (size_t)(strchr(text + pos, '\n') - text) + 1;
        CHECK(pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, off, 8, &k) == 0 && pos == len,
              "to the end (a last line without a newline)");
        CHECK(k == 3 && off[3] == vlen && memcmp(vals + off[2], "c.example", 9) == 0, "k %zu", k);
    }
    rc = scan("", &stop, &n, got, sizeof got);
    CHECK(rc == 0 && n == 0 && stop == 0, "empty buffer");
}

static void test_lines_limits(void)
{
    const char *text = "a.example\nb.example\nc.example\n";
    size_t len = strlen(text), vlen = 0, pos = 0, k = 0;
    uint8_t vals[64];
    uint32_t off[3] = {0};
    int rc = pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, off, 3, &k);
    CHECK(rc == PC_ERR_LIMIT && k == 2 && pos == 20, "offsets full: rc %d k %zu pos %zu", rc, k, pos);
    pos = len + 1;
    CHECK(pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, off, 3, &k) == PC_ERR_ARG, "pos > len");
    pos = 0;
    CHECK(pc_domain_lines(NULL, len, &pos, vals, &vlen, off, 3, &k) == PC_ERR_ARG, "NULL buf");
    CHECK(pc_domain_lines((const uint8_t *)text, len, &pos, vals, &vlen, NULL, 3, &k) == PC_ERR_ARG, "NULL off");
}

/* Packs strs into buf and off; returns n. */
static size_t pack(const char **strs, size_t n, uint8_t *buf, uint32_t *off)
{
    off[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(strs[i]);
        memcpy(buf + off[i], strs[i], l);
        off[i + 1] = off[i] + (uint32_t)l;
    }
    return n;
}

static void test_sort(void)
{
    const char *strs[] = {"b.example", "a.example", "b.example", "abcdefghij.x", "abcdefghi.x", "", "a.example",
                          "abcdefg", "abcdefg\x01"};
    uint8_t buf[128], key[9] = {1, 1, 1, 1, 1, 1, 0, 1, 1};
    uint32_t off[10], order[9], dups[9];
    size_t n = pack(strs, 9, buf, off);
    /* By bytes, equal strings in index order; index 6 has key 0 and comes first. */
    const uint32_t want[9] = {6, 5, 1, 7, 8, 4, 3, 0, 2};
    int rc = pc_strings_sort(buf, off, key, n, order, dups);
    CHECK(rc == 1 && dups[0] == 8, "one duplicate (b.example twice, same key): rc %d", rc);
    CHECK(memcmp(order, want, sizeof want) == 0, "order %u %u %u %u %u %u %u %u %u", order[0], order[1], order[2],
          order[3], order[4], order[5], order[6], order[7], order[8]);
    rc = pc_strings_sort(buf, off, NULL, n, order, NULL);
    CHECK(rc == 2 && order[1] == 1 && order[2] == 6, "without keys a.example is a duplicate too: rc %d", rc);
    CHECK(pc_strings_sort(buf, off, NULL, 0, NULL, NULL) == 0, "nothing to sort");
    off[3] = off[2] - 1;
    CHECK(pc_strings_sort(buf, off, NULL, n, order, NULL) == PC_ERR_ARG, "offsets going backwards");
    pack(strs, 9, buf, off);
    pc_alloc_fail_after(0);
    CHECK(pc_strings_sort(buf, off, NULL, n, order, NULL) == PC_ERR_NOMEM, "allocation failure");
    pc_alloc_fail_after(-1);
}

static void test_join(void)
{
    const char *strs[] = {"ccc", "a", "bb"};
    uint8_t buf[16], out[16];
    uint32_t off[4], order[3] = {1, 2, 0};
    size_t n = pack(strs, 3, buf, off), next = 0;
    int rc = pc_strings_join(buf, off, n, order, 3, &next, out, sizeof out);
    CHECK(rc == 9 && next == 3 && memcmp(out, "a\nbb\nccc\n", 9) == 0, "all at once: rc %d", rc);
    next = 0;
    rc = pc_strings_join(buf, off, n, order, 3, &next, out, 5);
    CHECK(rc == 5 && next == 2 && memcmp(out, "a\nbb\n", 5) == 0, "a 5-byte piece: rc %d next %zu", rc, next);
    rc = pc_strings_join(buf, off, n, order, 3, &next, out, 3);
    CHECK(rc == PC_ERR_LIMIT && next == 2, "ccc\\n does not fit 3 bytes: rc %d", rc);
    rc = pc_strings_join(buf, off, n, order, 3, &next, out, 4);
    CHECK(rc == 4 && next == 3, "then it does in 4: rc %d", rc);
    order[0] = 3;
    next = 0;
    CHECK(pc_strings_join(buf, off, n, order, 3, &next, out, sizeof out) == PC_ERR_ARG, "an index out of range");
    next = 4;
    CHECK(pc_strings_join(buf, off, n, order, 3, &next, out, sizeof out) == PC_ERR_ARG, "next beyond count");
}

int main(void)
{
    test_clean_lines();
    test_lines_stop_and_fold();
    test_lines_limits();
    test_sort();
    test_join();
    return check_report("test_matcher_build");
}
