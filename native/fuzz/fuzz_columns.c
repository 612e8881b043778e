/*
 * fuzz_columns.c - libFuzzer harness for the bulk path of a big indicator
 * list (matcher_build.c, pocketcheck.h): pc_domain_lines() over hostile
 * list files, then pc_strings_sort() and pc_strings_join() over what it
 * stored.
 *
 * Input layout:
 *   byte 0   capacity of the offsets array (2 + byte % 64), so the
 *            PC_ERR_LIMIT path (store, reset, go on) is reached often
 *   byte 1   output size of each pc_strings_join() call (1 + byte)
 *   then     the list file.
 * Checked: every return is one the contract names; the read position only
 * moves forward and stops at a line start; the offsets grow; every stored
 * name passes this file's own reading of "clean domain" (written from the
 * contract, not from matcher_build.c) and is lower case; the sort's order is
 * a permutation in (key, bytes, index) order with exactly the duplicate
 * positions reported; the joined pieces are the sorted names, each with its
 * '\n', with no byte missing or extra.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pocketcheck.h"

/* The contract's clean domain, lower case (what pc_domain_lines stores). */
static int clean(const uint8_t *s, size_t len)
{
    size_t start = 0, labels = 0;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            uint8_t c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                return 0;
            continue;
        }
        size_t l = i - start;
        if (l < 1 || l > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        labels++;
        if (i == len) {
            int digits = 1;
            for (size_t k = start; k < i; k++)
                digits &= s[k] >= '0' && s[k] <= '9';
            if (digits)
                return 0;
        }
        start = i + 1;
    }
    return labels >= 2;
}

static int cmp_str(const uint8_t *vals, const uint32_t *off, uint32_t a, uint32_t b)
{
    uint32_t la = off[a + 1] - off[a], lb = off[b + 1] - off[b], l = la < lb ? la : lb;
    int c = l ? memcmp(vals + off[a], vals + off[b], l) : 0;
    return c ? c : (la > lb) - (la < lb);
}

/* Sorts and joins the n stored names; aborts on any broken promise. */
static void check_sort_join(const uint8_t *vals, const uint32_t *off, size_t n, size_t cap)
{
    uint32_t *order = malloc((n ? n : 1) * sizeof *order), *dups = malloc((n ? n : 1) * sizeof *dups);
    uint8_t *key = malloc(n ? n : 1), *seen = calloc(n ? n : 1, 1), *out = malloc(cap);
    int nd, k = 0;
    size_t next = 0, total = 0;
    if (!order || !dups || !key || !seen || !out)
        goto end;
    for (size_t i = 0; i < n; i++)
        key[i] = (uint8_t)(n > 0 ? vals[off[i]] % 3 : 0); /* a few keys, derived from the data */
    nd = pc_strings_sort(vals, off, key, n, order, dups);
    if (nd == PC_ERR_NOMEM)
        goto end;
    if (nd < 0 || (size_t)nd > n)
        abort();
    for (size_t p = 0; p < n; p++) {
        if (order[p] >= n || seen[order[p]])
            abort(); /* not a permutation */
        seen[order[p]] = 1;
        if (p) {
            uint32_t a = order[p - 1], b = order[p];
            int c = key[a] != key[b] ? (key[a] > key[b]) - (key[a] < key[b]) : cmp_str(vals, off, a, b);
            if (c > 0 || (c == 0 && a > b))
                abort(); /* out of (key, bytes, index) order */
            if (c == 0 && (k >= nd || dups[k++] != p))
                abort(); /* a duplicate not reported where it is */
        }
    }
    if (k != nd)
        abort(); /* a duplicate reported that is not one */
    while (next < n) {
        size_t before = next;
        int w = pc_strings_join(vals, off, n, order, n, &next, out, cap);
        if (w == PC_ERR_LIMIT) {
            if (off[order[next] + 1] - off[order[next]] + 1 <= cap)
                abort(); /* it would have fitted */
            break;
        }
        if (w < 0 || (size_t)w > cap || next <= before || next > n)
            abort();
        for (size_t q = before, o = 0; q < next; q++) {
            uint32_t s = order[q], l = off[s + 1] - off[s];
            if (o + l + 1 > (size_t)w || memcmp(out + o, vals + off[s], l) != 0 || out[o + l] != '\n')
                abort(); /* a piece is not the next sorted name */
            o += l + 1;
            if (q + 1 == next && o != (size_t)w)
                abort();
        }
        total += (size_t)w;
    }
    (void)total;
end:
    free(order);
    free(dups);
    free(key);
    free(seen);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap, join_cap, len, pos = 0, vlen = 0, n = 0;
    const uint8_t *buf;
    uint8_t *vals;
    uint32_t *off;

    if (size < 2)
        return 0;
    cap = 2 + data[0] % 64;
    join_cap = 1 + (size_t)data[1];
    buf = data + 2;
    len = size - 2;
    vals = malloc(len ? len : 1);
    off = malloc(cap * sizeof *off);
    if (!vals || !off)
        goto end;
    off[0] = 0;
    for (;;) {
        size_t before = pos;
        int rc = pc_domain_lines(buf, len, &pos, vals, &vlen, off, cap, &n);
        if (pos < before || pos > len || (pos && pos < len && rc != 0 && buf[pos - 1] != '\n'))
            abort(); /* the position went back, past the end, or into a line */
        if (n >= cap || vlen > len || off[n] != vlen)
            abort();
        for (size_t i = 0; i < n; i++)
            if (off[i] > off[i + 1] || !clean(vals + off[i], off[i + 1] - off[i]))
                abort(); /* a stored name the contract calls unclean */
        if (rc == 0) {
            if (pos != len)
                abort();
            break;
        }
        if (rc == 1) {
            const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
            pos = nl ? (size_t)(nl - buf) + 1 : len; /* the caller reads that line its own way */
            continue;
        }
        if (rc != PC_ERR_LIMIT || (n == 0 && pos == before))
            abort();
        check_sort_join(vals, off, n, join_cap); /* full: use what is stored, start again */
        n = vlen = 0;
    }
    check_sort_join(vals, off, n, join_cap);
end:
    free(vals);
    free(off);
    return 0;
}
