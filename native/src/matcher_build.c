/*
 * matcher_build.c - pc_matcher_prepare(): turns the staged patterns into
 * the sections of matcher_int.h (the domain hash table and its Bloom
 * filter, the keyword automaton with its complete transition function,
 * the sorted prefix groups and hash keys), and the two helpers of the bulk
 * path from a big indicator list to the matcher (pocketcheck.h): reading a
 * file of clean domains into one buffer, and sorting such a buffer (for
 * duplicates and the set's canonical hash) without a string object each.
 */
#include <stdlib.h>

#include "matcher_int.h"

/* Heap section sec of nbytes, zeroed; NULL on failure. */
static void *sec_alloc(void **owned, uint64_t *sz, int sec, size_t nbytes)
{
    owned[sec] = pc_calloc(1, nbytes ? nbytes : 8);
    sz[sec] = nbytes;
    return owned[sec];
}

/* Assigns ids to entries: rec_ent[i] is record i's entry; fills ent ids offset/count and ids. */
static int fill_ids(const srec *rec, const uint32_t *rec_ent, size_t nrec, uint32_t *ent, size_t stride,
                    size_t idoff_field, uint32_t nent, uint32_t *ids)
{
    uint32_t pos = 0;
    for (uint32_t e = 0; e < nent; e++) {
        uint32_t cnt = ent[stride * e + idoff_field + 1];
        ent[stride * e + idoff_field] = pos;
        ent[stride * e + idoff_field + 1] = 0;
        pos += cnt;
    }
    for (size_t i = 0; i < nrec; i++) {
        uint32_t *f = &ent[stride * rec_ent[i] + idoff_field];
        ids[f[0] + f[1]] = rec[i].id;
        f[1]++;
    }
    return PC_OK;
}

/* A record's key and index, radix-sorted by key (stable, so records keep their order within a key). */
typedef struct keyrec {
    uint32_t key, rec;
} keyrec;

/* Sorts n keyrecs by key in two stable 16-bit passes; tmp holds n more. */
static int radix_sort(keyrec *a, keyrec *tmp, size_t n)
{
    uint32_t *count = pc_calloc(65537, 4);
    if (!count)
        return PC_ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        unsigned sh = 16u * (unsigned)pass;
        keyrec *src = pass ? tmp : a, *dst = pass ? a : tmp;
        memset(count, 0, 65537 * 4);
        for (size_t i = 0; i < n; i++)
            count[((src[i].key >> sh) & 0xffff) + 1]++;
        for (size_t i = 1; i <= 65536; i++)
            count[i] += count[i - 1];
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].key >> sh) & 0xffff]++] = src[i];
    }
    pc_free(count);
    return PC_OK;
}

/* Shrinks a heap section to its final size (a failed shrink keeps the larger block). */
static void sec_shrink(void **owned, uint64_t *sz, int sec, size_t nbytes)
{
    void *p = pc_realloc(owned[sec], nbytes ? nbytes : 8);
    if (p)
        owned[sec] = p;
    sz[sec] = nbytes;
}

static int build_domains(pc_matcher *m, void **owned, uint64_t *sz, uint32_t *par)
{
    const srec *rec = (const srec *)(void *)m->drec.p;
    size_t nrec = m->drec.n / sizeof(srec), nent = 0, nids = 0, strbytes = 0, maxrun = 0;
    uint32_t nbuck = 1, nbits = 64, dmin = 0xffffffffu, dmax = 0;
    uint32_t *buck, *key, *soff, *did, *ids, *bloom, *which = NULL, *rep = NULL;
    keyrec *kr = NULL, *tmp = NULL;
    uint8_t *str;
    unsigned shift;
    int rc = PC_ERR_NOMEM;

    kr = pc_malloc(nrec * sizeof *kr + 8);
    key = sec_alloc(owned, sz, S_DKEY, nrec * 4);
    soff = sec_alloc(owned, sz, S_DSOFF, nrec * 4 + 4);
    str = sec_alloc(owned, sz, S_DSTR, m->dstr.n);
    did = sec_alloc(owned, sz, S_DID, nrec * 4);
    ids = sec_alloc(owned, sz, S_DIDS, nrec * 8);   /* at most two words per record */
    if (!kr || !key || !soff || !str || !did || !ids)
        goto fail;
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *s = m->dstr.p + rec[i].off;
        uint32_t h = H_INIT;
        for (uint32_t j = rec[i].len; j-- > 0;)
            h = H_STEP(h, s[j]);
        kr[i].key = pc_mix32(h);
        kr[i].rec = (uint32_t)i;
    }
    /* The sort's second array lives only as long as the sort: a big set's peak is here. */
    tmp = pc_malloc(nrec * sizeof *tmp + 8);
    if (!tmp || radix_sort(kr, tmp, nrec) < 0)
        goto fail;
    pc_free(tmp);
    tmp = NULL;
    /* which and rep hold one run of equal keys: sized by the longest run, not the set. */
    for (size_t a = 0, b; a < nrec; a = b) {
        for (b = a + 1; b < nrec && kr[b].key == kr[a].key; b++)
            ;
        if (b - a > maxrun)
            maxrun = b - a;
    }
    which = pc_malloc(maxrun * 4 + 4);
    rep = pc_malloc(maxrun * 4 + 4);
    if (!which || !rep)
        goto fail;
    /* One run per key: its distinct strings become entries (duplicates merge their ids, in record order). */
    for (size_t a = 0, b; a < nrec; a = b) {
        size_t ndist = 0;
        for (b = a; b < nrec && kr[b].key == kr[a].key; b++) {
            const srec *r = &rec[kr[b].rec];
            size_t d = 0;
            while (d < ndist && !(rec[rep[d]].len == r->len &&
                                  memcmp(m->dstr.p + rec[rep[d]].off, m->dstr.p + r->off, r->len) == 0))
                d++;
            if (d == ndist)
                rep[ndist++] = kr[b].rec;
            which[b - a] = (uint32_t)d;
        }
        for (size_t d = 0; d < ndist; d++) {
            const srec *r = &rec[rep[d]];
            size_t cnt = 0;
            for (size_t k = a; k < b; k++)
                cnt += which[k - a] == d;
            key[nent] = kr[a].key;
            soff[nent] = (uint32_t)strbytes;
            memcpy(str + strbytes, m->dstr.p + r->off, r->len);
            strbytes += r->len;
            if (cnt == 1 && r->id < D_MANY) {
                did[nent] = r->id;
            } else {
                did[nent] = D_MANY | (uint32_t)nids;
                ids[nids++] = (uint32_t)cnt;
                for (size_t k = a; k < b; k++)
                    if (which[k - a] == d)
                        ids[nids++] = rec[kr[k].rec].id;
            }
            if (r->len < dmin)
                dmin = r->len;
            if (r->len > dmax)
                dmax = r->len;
            nent++;
        }
    }
    soff[nent] = (uint32_t)strbytes;
    while (nbuck < nent / 2)
        nbuck *= 2;
    while (nbits < 8 * nent)
        nbits *= 2;
    buck = sec_alloc(owned, sz, S_DBUCK, ((size_t)nbuck + 1) * 4);
    bloom = sec_alloc(owned, sz, S_DBLOOM, (size_t)nbits / 8);
    if (!buck || !bloom)
        goto fail;
    /* buck[b] = the first entry whose bucket is >= b (entries are sorted by key). */
    shift = d_shift(nbuck);
    for (size_t e = 0, b = 0; b <= nbuck; b++) {
        while (e < nent && d_bucket(key[e], shift) < b)
            e++;
        buck[b] = (uint32_t)e;
    }
    for (size_t e = 0; e < nent; e++) {
        uint32_t bit = d_bloom_bit(key[e], nbits);
        bloom[bit >> 5] |= 1u << (bit & 31);
    }
    sec_shrink(owned, sz, S_DKEY, nent * 4);
    sec_shrink(owned, sz, S_DSOFF, (nent + 1) * 4);
    sec_shrink(owned, sz, S_DSTR, strbytes);
    sec_shrink(owned, sz, S_DID, nent * 4);
    sec_shrink(owned, sz, S_DIDS, nids * 4);
    par[P_DBUCK] = nbuck;
    par[P_DBITS] = nbits;
    par[P_DENT] = (uint32_t)nent;
    par[P_DMIN] = nent ? dmin : 0;
    par[P_DMAX] = dmax;
    rc = PC_OK;
fail:
    pc_free(kr);
    pc_free(tmp);
    pc_free(which);
    pc_free(rep);
    return rc;
}

static int build_keywords(pc_matcher *m, void **owned, uint64_t *sz, uint32_t *par)
{
    const srec *rec = (const srec *)(void *)m->krec.p;
    size_t nrec = m->krec.n / sizeof(srec);
    uint8_t *cls = sec_alloc(owned, sz, S_KCLS, 256);
    uint32_t *trans = NULL, *out = NULL, *dict = NULL, *fail_ = NULL, *queue = NULL, *rec_ent = NULL;
    uint32_t *ent, *ids;
    uint32_t ncls = 1, nstates = 1, nent = 0, cap = 0;
    int rc = PC_ERR_NOMEM;

    if (!cls)
        goto fail;
    /* Class 0 is every byte no keyword uses: it always leads back to the root. */
    for (size_t i = 0; i < nrec; i++)
        for (uint32_t j = 0; j < rec[i].len; j++) {
            uint8_t c = m->kstr.p[rec[i].off + j];
            if (!cls[c])
                cls[c] = (uint8_t)ncls++;
        }
    if (nrec == 0) {
        ncls = 0;
        nstates = 0;
    } else {
        size_t bound = 1, limit;
        for (size_t i = 0; i < nrec; i++)
            bound += rec[i].len;
        /* The table grows as states appear, up to both bounds of the header. */
        limit = PC_MATCHER_MAX_KW_CELLS / ncls;
        if (limit > PC_MATCHER_MAX_KW_STATES)
            limit = PC_MATCHER_MAX_KW_STATES;
        if (bound < limit)
            limit = bound;
        cap = (uint32_t)(limit < 4096 ? limit : 4096);
        trans = pc_calloc((size_t)cap * ncls, 4);
        out = pc_calloc(cap, 4);
        rec_ent = pc_malloc(nrec * 4);
        if (!trans || !out || !rec_ent)
            goto fail;
        /* The trie of reversed keywords (0 = no edge; the root is never a target). */
        for (size_t i = 0; i < nrec; i++) {
            uint32_t s = 0;
            for (uint32_t j = rec[i].len; j-- > 0;) {
                uint32_t c = cls[m->kstr.p[rec[i].off + j]];
                uint32_t t = trans[(size_t)s * ncls + c];
                if (!t) {
                    if (nstates >= cap) {
                        uint32_t ncap = cap * 2 < limit ? cap * 2 : (uint32_t)limit;
                        uint32_t *nt, *no;
                        if (cap >= limit) {
                            pc_m_seterr(m, "keyword automaton over %u states or %u transitions",
                                   PC_MATCHER_MAX_KW_STATES, PC_MATCHER_MAX_KW_CELLS);
                            rc = PC_ERR_LIMIT;
                            goto fail;
                        }
                        nt = pc_realloc(trans, (size_t)ncap * ncls * 4);
                        if (!nt)
                            goto fail;
                        trans = nt;
                        no = pc_realloc(out, (size_t)ncap * 4);
                        if (!no)
                            goto fail;
                        out = no;
                        memset(trans + (size_t)cap * ncls, 0, (size_t)(ncap - cap) * ncls * 4);
                        memset(out + cap, 0, (size_t)(ncap - cap) * 4);
                        cap = ncap;
                    }
                    t = nstates++;
                    trans[(size_t)s * ncls + c] = t;
                }
                s = t;
            }
            if (!out[s])
                out[s] = ++nent;
            rec_ent[i] = out[s] - 1;
        }
        dict = pc_calloc(nstates, 4);
        fail_ = pc_calloc(nstates, 4);
        queue = pc_malloc((size_t)nstates * 4);
        if (!dict || !fail_ || !queue)
            goto fail;
        /* Breadth-first: failure links, then the missing edges filled in (a DFA). */
        size_t qh = 0, qt = 0;
        for (uint32_t c = 0; c < ncls; c++) {
            uint32_t t = trans[c];
            if (t) {
                fail_[t] = 0;
                queue[qt++] = t;
            }
        }
        while (qh < qt) {
            uint32_t s = queue[qh++];
            uint32_t f = fail_[s];
            dict[s] = out[f] ? f + 1 : dict[f];
            for (uint32_t c = 0; c < ncls; c++) {
                uint32_t *t = &trans[(size_t)s * ncls + c];
                if (*t) {
                    fail_[*t] = trans[(size_t)f * ncls + c];
                    queue[qt++] = *t;
                } else {
                    *t = trans[(size_t)f * ncls + c];
                }
            }
        }
    }
    ent = sec_alloc(owned, sz, S_KENT, (size_t)nent * 8);
    ids = sec_alloc(owned, sz, S_KIDS, nrec * 4);
    if (!ent || !ids)
        goto fail;
    for (size_t i = 0; i < nrec; i++)
        ent[2 * rec_ent[i] + 1]++;
    fill_ids(rec, rec_ent, nrec, ent, 2, 0, nent, ids);
    /* Hand the automaton over as sections, shrunk to the states used. */
    if (nstates) {
        uint32_t *t2 = pc_realloc(trans, (size_t)nstates * ncls * 4);
        if (t2)
            trans = t2;
    }
    owned[S_KTRANS] = trans;
    sz[S_KTRANS] = (uint64_t)nstates * ncls * 4;
    owned[S_KOUT] = out;
    sz[S_KOUT] = (uint64_t)nstates * 4;
    owned[S_KDICT] = dict;
    sz[S_KDICT] = (uint64_t)nstates * 4;
    trans = out = dict = NULL;
    if (!owned[S_KTRANS] && !(owned[S_KTRANS] = pc_calloc(1, 8)))
        goto fail;
    if (!owned[S_KOUT] && !(owned[S_KOUT] = pc_calloc(1, 8)))
        goto fail;
    if (!owned[S_KDICT] && !(owned[S_KDICT] = pc_calloc(1, 8)))
        goto fail;
    par[P_KSTATES] = nstates;
    par[P_KCLS] = ncls;
    par[P_KENT] = nent;
    rc = PC_OK;
fail:
    pc_free(trans);
    pc_free(out);
    pc_free(dict);
    pc_free(fail_);
    pc_free(queue);
    pc_free(rec_ent);
    return rc;
}

static int cmp_ip(const void *a, const void *b)
{
    const iprec *x = a, *y = b;
    if (x->ver != y->ver)
        return x->ver < y->ver ? -1 : 1;
    if (x->plen != y->plen)
        return x->plen > y->plen ? -1 : 1;   /* longest prefix first */
    return memcmp(x->addr, y->addr, 16);
}

static int build_ips(pc_matcher *m, void **owned, uint64_t *sz, uint32_t *par)
{
    iprec *r = (iprec *)(void *)m->ips.p;
    size_t n = m->ips.n / sizeof(iprec), ng = 0;
    uint32_t *grp, *ids;
    uint8_t *addr;
    if (n)
        qsort(r, n, sizeof *r, cmp_ip);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || r[i].ver != r[i - 1].ver || r[i].plen != r[i - 1].plen)
            ng++;
    grp = sec_alloc(owned, sz, S_IGRP, ng * 16);
    addr = sec_alloc(owned, sz, S_IADDR, n * 16);
    ids = sec_alloc(owned, sz, S_IIDS, n * 4);
    if (!grp || !addr || !ids)
        return PC_ERR_NOMEM;
    ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || r[i].ver != r[i - 1].ver || r[i].plen != r[i - 1].plen) {
            grp[4 * ng] = r[i].ver;
            grp[4 * ng + 1] = r[i].plen;
            grp[4 * ng + 2] = (uint32_t)i;
            ng++;
        }
        grp[4 * (ng - 1) + 3]++;
        memcpy(addr + 16 * i, r[i].addr, 16);
        ids[i] = r[i].id;
    }
    par[P_IGRP] = (uint32_t)ng;
    par[P_IN] = (uint32_t)n;
    return PC_OK;
}

static int cmp_hash(const void *a, const void *b)
{
    const hrec *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->key, y->key, x->len);
}

static int build_hashes(pc_matcher *m, void **owned, uint64_t *sz, uint32_t *par)
{
    hrec *r = (hrec *)(void *)m->hashes.p;
    size_t n = m->hashes.n / sizeof(hrec), n1 = 0;
    uint8_t *k1, *k2;
    uint32_t *i1, *i2;
    if (n)
        qsort(r, n, sizeof *r, cmp_hash);
    while (n1 < n && r[n1].len == 20)
        n1++;
    k1 = sec_alloc(owned, sz, S_H1KEY, n1 * 20);
    i1 = sec_alloc(owned, sz, S_H1IDS, n1 * 4);
    k2 = sec_alloc(owned, sz, S_H2KEY, (n - n1) * 32);
    i2 = sec_alloc(owned, sz, S_H2IDS, (n - n1) * 4);
    if (!k1 || !i1 || !k2 || !i2)
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < n1; i++) {
        memcpy(k1 + 20 * i, r[i].key, 20);
        i1[i] = r[i].id;
    }
    for (size_t i = n1; i < n; i++) {
        memcpy(k2 + 32 * (i - n1), r[i].key, 32);
        i2[i - n1] = r[i].id;
    }
    par[P_H1] = (uint32_t)n1;
    par[P_H2] = (uint32_t)(n - n1);
    return PC_OK;
}

/* Builds every table from the staged patterns (see pc_matcher.h). */
int pc_matcher_prepare(pc_matcher *m)
{
    void *owned[S_COUNT] = {0};
    uint64_t sz[S_COUNT] = {0};
    uint32_t par[P_COUNT_] = {0};
    int rc;
    if (!m)
        return PC_ERR_ARG;
    if (m->state != ST_ADDING) {
        pc_m_seterr(m, "the matcher is already prepared");
        return PC_ERR_STATE;
    }
    rc = build_domains(m, owned, sz, par);
    if (rc == PC_OK)
        rc = build_keywords(m, owned, sz, par);
    if (rc == PC_OK)
        rc = build_ips(m, owned, sz, par);
    if (rc == PC_OK)
        rc = build_hashes(m, owned, sz, par);
    if (rc == PC_OK) {
        par[P_IDS] = (uint32_t)(m->drec.n / sizeof(srec) + m->krec.n / sizeof(srec) +
                                m->ips.n / sizeof(iprec) + m->hashes.n / sizeof(hrec));
        owned[S_PARAMS] = pc_calloc(P_COUNT_, 4);
        if (!owned[S_PARAMS])
            rc = PC_ERR_NOMEM;
    }
    if (rc != PC_OK)
        goto fail;
    memcpy(owned[S_PARAMS], par, sizeof par);
    sz[S_PARAMS] = sizeof par;
    for (int i = 0; i < S_COUNT; i++) {
        m->owned[i] = owned[i];
        m->sec[i] = owned[i];
        m->secsz[i] = sz[i];
    }
    memcpy(m->par, par, sizeof par);
    pc_m_staging_free(m);
    m->state = ST_PREPARED;
    m->err[0] = 0;
    return PC_OK;
fail:
    for (int i = 0; i < S_COUNT; i++)
        pc_free(owned[i]);
    if (rc == PC_ERR_NOMEM)
        pc_m_seterr(m, "out of memory while preparing");
    return rc;
}


/* ---- indicator lists (pocketcheck.h): the bulk path from a file to the matcher ---- */

/* Whether s[0 .. len) is a clean domain indicator (see pc_domain_lines() in pocketcheck.h). */
static int clean_domain(const uint8_t *s, size_t len)
{
    size_t lab = 0, labels = 0;
    int digits = 1; /* the current label is all digits so far */
    if (len == 0 || len > PC_MATCHER_MAX_NAME)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        uint8_t c;
        if (i == len || s[i] == '.') {
            if (lab == 0 || lab > 63 || s[i - lab] == '-' || s[i - 1] == '-')
                return 0;
            labels++;
            lab = 0;
            if (i == len)
                return labels >= 2 && !digits; /* "com" would match every name under it; "1.2" is no domain */
            digits = 1;
            continue;
        }
        c = s[i];
        if (c >= '0' && c <= '9') {
            lab++;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
            return 0;
        digits = 0;
        lab++;
    }
    return 0;
}

/* Whether s[0 .. len) is lower (lower-case ASCII) with ASCII case folded. */
static int same_folded(const uint8_t *s, const char *lower, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if ((c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c) != (uint8_t)lower[i])
            return 0;
    }
    return 1;
}

/*
 * The domain of a one-name hosts-file line ("0.0.0.0 evil.example", the
 * sinkhole address then blanks), else s itself: big community lists are
 * hosts files. "localhost.localdomain" is the one name such files map to
 * themselves that looks like a domain; it is left to the caller, which
 * skips and counts it.
 */
static const uint8_t *hosts_name(const uint8_t *s, size_t *len)
{
    static const char *const sinks[] = {"0.0.0.0", "127.0.0.1"};
    for (size_t k = 0; k < sizeof sinks / sizeof sinks[0]; k++) {
        size_t a = strlen(sinks[k]), i = a, l = *len;
        if (l <= a || memcmp(s, sinks[k], a) != 0 || (s[a] != ' ' && s[a] != '\t'))
            continue;
        while (i < l && (s[i] == ' ' || s[i] == '\t'))
            i++;
        while (l > i && (s[l - 1] == ' ' || s[l - 1] == '\t'))
            l--;
        if (l == i) /* "0.0.0.0" and blanks: no name (the caller counts the line) */
            return s;
        if (l - i == 21 && same_folded(s + i, "localhost.localdomain", 21))
            return s;
        *len = l - i;
        return s + i;
    }
    return s;
}

int pc_domain_lines(const uint8_t *buf, size_t len, size_t *pos, uint8_t *vals, size_t *vlen,
                    uint32_t *off, size_t cap, size_t *n)
{
    size_t p, v, k;
    int rc = 0;
    if (!buf || !pos || !vals || !vlen || !off || !n || *pos > len || len >= UINT32_MAX ||
        *vlen >= UINT32_MAX - (len - *pos))
        return PC_ERR_ARG;
    p = *pos;
    v = *vlen;
    k = *n;
    while (p < len) {
        const uint8_t *s = buf + p;
        const uint8_t *nl = memchr(s, '\n', len - p);
        size_t end = nl ? (size_t)(nl - buf) : len, l = end - p;
        if (l && buf[end - 1] == '\r')
            l--;
        s = hosts_name(s, &l);
        if (l) {
            if (!clean_domain(s, l)) {
                rc = 1;
                break;
            }
            if (k + 1 >= cap) {
                rc = PC_ERR_LIMIT;
                break;
            }
            for (size_t i = 0; i < l; i++) {
                uint8_t c = s[i];
                vals[v + i] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c;
            }
            v += l;
            off[++k] = (uint32_t)v;
        }
        p = nl ? end + 1 : len;
    }
    *pos = p;
    *vlen = v;
    *n = k;
    return rc;
}

/* One string to sort: its first bytes (after the key) packed big-endian, so most comparisons are one integer compare. */
typedef struct sortrec {
    uint64_t pre;
    const uint8_t *s;
    uint32_t len, idx;
} sortrec;

/* Bytewise order of two strings (a prefix first). */
static int str_cmp(const sortrec *x, const sortrec *y)
{
    uint32_t l = x->len < y->len ? x->len : y->len;
    int c = l ? memcmp(x->s, y->s, l) : 0;
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int cmp_sortrec(const void *a, const void *b)
{
    const sortrec *x = a, *y = b;
    int c;
    if (x->pre != y->pre)
        return x->pre < y->pre ? -1 : 1;
    c = str_cmp(x, y);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int pc_strings_sort(const uint8_t *buf, const uint32_t *off, const uint8_t *key, size_t n,
                    uint32_t *order, uint32_t *dups)
{
    sortrec *r;
    size_t nd = 0;
    if (n == 0)
        return 0;
    if (!buf || !off || !order || n > INT32_MAX)
        return PC_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (off[i] > off[i + 1])
            return PC_ERR_ARG;
    r = pc_malloc(n * sizeof *r);
    if (!r)
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = buf + off[i];
        uint32_t len = off[i + 1] - off[i];
        uint64_t pre = key ? key[i] : 0;
        for (uint32_t j = 0; j < 7; j++)
            pre = (pre << 8) | (j < len ? s[j] : 0);
        r[i].pre = pre;
        r[i].s = s;
        r[i].len = len;
        r[i].idx = (uint32_t)i;
    }
    qsort(r, n, sizeof *r, cmp_sortrec);
    for (size_t i = 0; i < n; i++) {
        order[i] = r[i].idx;
        if (i && r[i].pre == r[i - 1].pre && str_cmp(&r[i], &r[i - 1]) == 0) {
            if (dups)
                dups[nd] = (uint32_t)i;
            nd++;
        }
    }
    pc_free(r);
    return (int)nd;
}

int pc_strings_join(const uint8_t *buf, const uint32_t *off, size_t n, const uint32_t *order, size_t count,
                    size_t *next, uint8_t *out, size_t cap)
{
    size_t at = 0, i;
    if (!buf || !off || !order || !next || !out || *next > count || cap > INT32_MAX)
        return PC_ERR_ARG;
    for (i = *next; i < count; i++) {
        uint32_t k = order[i], len;
        if (k >= n || off[k] > off[k + 1])
            return PC_ERR_ARG;
        len = off[k + 1] - off[k];
        if (len >= cap - at)
            break;
        memcpy(out + at, buf + off[k], len);
        at += len;
        out[at++] = '\n';
    }
    if (i < count && i == *next)
        return PC_ERR_LIMIT; /* one string does not fit even alone */
    *next = i;
    return (int)at;
}
