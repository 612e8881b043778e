/*
 * matcher_match.c - matching batches of names (domains on label
 * boundaries, keywords anywhere), addresses (longest prefixes first) and
 * certificate hashes against a prepared or loaded matcher.
 *
 * Just over 500 lines because the four batch calls share the hit buffer,
 * the argument checks and the resume rule; the name path (two passes, see
 * pending) is most of it.
 */
#include "matcher_int.h"

/* The hits of one item under construction: [start, pos) of the caller's array. */
typedef struct hitbuf {
    pc_hit *hits;
    size_t cap, start, pos;
    int overflow;
} hitbuf;

static inline void hb_add(hitbuf *hb, uint32_t item, uint32_t id)
{
    for (size_t k = hb->start; k < hb->pos; k++)
        if (hb->hits[k].id == id)
            return;
    if (hb->pos >= hb->cap) {
        hb->overflow = 1;
        return;
    }
    hb->hits[hb->pos].item = item;
    hb->hits[hb->pos].id = id;
    hb->pos++;
}

/* Starts a batch over the caller's hits[cap]. */
static void hb_init(hitbuf *hb, pc_hit *hits, size_t cap)
{
    hb->hits = hits;
    hb->cap = cap;
    hb->start = hb->pos = 0;
    hb->overflow = 0;
}

/* Starts the hits of the next item. */
static void hb_begin(hitbuf *hb)
{
    hb->start = hb->pos;
    hb->overflow = 0;
}

/*
 * Ends an item: when its hits did not fit, they are taken back and the batch
 * stops (returns 1); *rc becomes PC_ERR_LIMIT when not even one item fits.
 */
static int hb_end(hitbuf *hb, int *rc)
{
    if (!hb->overflow)
        return 0;
    hb->pos = hb->start;
    if (hb->start == 0)
        *rc = PC_ERR_LIMIT;
    return 1;
}

static void hb_add_ids(hitbuf *hb, uint32_t item, const uint8_t *idsec, uint32_t off, uint32_t cnt)
{
    for (uint32_t k = 0; k < cnt; k++)
        hb_add(hb, item, u32at(idsec, (size_t)off + k));
}

static int check_match_args(const pc_matcher *m, const void *a, const void *b, size_t n,
                            const size_t *next, const pc_hit *hits, size_t cap)
{
    if (!m || !next || !hits || !cap || (n && (!a || !b)) || *next > n)
        return PC_ERR_ARG;
    if (m->state != ST_PREPARED)
        return PC_ERR_STATE;
    if (cap > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    return PC_OK;
}

/* The domain tables, copied out of the matcher once per batch. */
typedef struct domtab {
    const uint8_t *buck, *key, *soff, *str, *bloom;
    uint32_t n, dmin, dspan, bits, nstr;   /* dspan = dmax - dmin (see domtab_init) */
    unsigned shift;
} domtab;

static void domtab_init(const pc_matcher *m, domtab *d)
{
    d->buck = m->sec[S_DBUCK];
    d->key = m->sec[S_DKEY];
    d->soff = m->sec[S_DSOFF];
    d->str = m->sec[S_DSTR];
    d->bloom = m->sec[S_DBLOOM];
    d->n = m->par[P_DENT];
    d->bits = m->par[P_DBITS];
    d->shift = d_shift(m->par[P_DBUCK]);
    /* One unsigned compare then tests dmin <= len <= dmax (dom_probe); with no
     * domains (or a range that is empty) dmin = UINT32_MAX lets no length through. */
    d->dmin = m->par[P_DMIN];
    d->dspan = m->par[P_DMAX] - m->par[P_DMIN];
    if (!d->n || m->par[P_DMAX] < m->par[P_DMIN]) {
        d->dmin = UINT32_MAX;
        d->dspan = 0;
    }
    d->nstr = (uint32_t)m->secsz[S_DSTR];
}

/*
 * Looks up name[from, to) (folded on the fly; f is pc_mix32 of its hash)
 * in f's bucket and records the entry in dhit: the rare path, taken when
 * the bit filter lets the name through (dom_probe). Every index read from
 * the table is checked here rather than at load (a damaged file then
 * misses, it never reads outside).
 */
static void dom_find(const domtab *d, const uint8_t *name, size_t from, uint32_t len, uint32_t f,
                     uint32_t *dhit, size_t *nd)
{
    uint32_t b = d_bucket(f, d->shift), lo = u32at(d->buck, b), hi = u32at(d->buck, (size_t)b + 1);
    if (hi > d->n)
        hi = d->n;
    for (uint32_t e = lo; e < hi; e++) {
        uint32_t k = u32at(d->key, e), so, se;
        if (k > f)
            return;
        if (k != f)
            continue;
        so = u32at(d->soff, e);
        se = u32at(d->soff, (size_t)e + 1);
        if (se - so == len && so < se && se <= d->nstr) {
            const uint8_t *s = d->str + so;
            uint32_t j = 0;
            while (j < len && pc_m_fold[name[from + j]] == s[j])
                j++;
            if (j == len) {
                dhit[(*nd)++] = e;
                return;
            }
        }
    }
}

/*
 * Looks up name[from, to) (h is its hash) among the domains. The length
 * range and the bit filter answer most misses (one bit per domain's byte),
 * inline: a probe is made at every label boundary of every name, and most
 * are misses.
 */
static inline void dom_probe(const domtab *d, const uint8_t *name, size_t from, size_t to, uint32_t h,
                             uint32_t *dhit, size_t *nd)
{
    uint32_t len = (uint32_t)(to - from), f, bit;
    if (len - d->dmin > d->dspan)   /* outside [dmin, dmax] (unsigned wrap), or no domains */
        return;
    f = pc_mix32(h);
    bit = d_bloom_bit(f, d->bits);
    if ((u32at(d->bloom, bit >> 5) >> (bit & 31)) & 1)
        dom_find(d, name, from, len, f, dhit, nd);
}

/* Adds the ids of domain entry e (checked against the id lists' size). */
static void dom_ids(const pc_matcher *m, hitbuf *hb, uint32_t item, uint32_t e)
{
    uint32_t v = u32at(m->sec[S_DID], e), nids = (uint32_t)(m->secsz[S_DIDS] / 4), pos, cnt;
    if (!(v & D_MANY)) {
        hb_add(hb, item, v);
        return;
    }
    pos = v & ~D_MANY;
    if (pos >= nids)
        return;
    cnt = u32at(m->sec[S_DIDS], pos);
    if (cnt > nids - pos - 1)
        cnt = nids - pos - 1;
    hb_add_ids(hb, item, m->sec[S_DIDS], pos + 1, cnt);
}

#define KW_LOCAL 256

/* Index of the lowest set bit of t (t != 0). */
static inline unsigned low_bit(uint64_t t)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctzll(t);
#else
    unsigned n = 0;
    while (!(t & 1)) {
        t >>= 1;
        n++;
    }
    return n;
#endif
}

#define DOT_WORDS ((PC_MATCHER_MAX_NAME + 63) / 64)

/*
 * A name between its two passes. The first (name_hash, right to left, as the
 * hash is defined) keeps the hash of every suffix and a bit for every dot;
 * the second (match_one) probes the table at the dots, in a loop over the
 * set bits. Deciding at each byte whether to probe is a branch no predictor
 * learns ('.' at random places in random names): it cost several
 * mispredictions per name, the largest part of the time at 10 k indicators.
 * Now the unpredictable branches are the two loops' exits.
 * (Hashing name i + 1 before probing name i, so that the probes fill the
 * latency of the hash's chain of multiplications, gained under 2 %: not
 * worth a second pending name.)
 */
typedef struct pending {
    const uint8_t *name;
    size_t len;                              /* without the trailing dot; 0 = rejected */
    uint32_t item;
    uint32_t hs[PC_MATCHER_MAX_NAME + 1];    /* hs[i]: the hash of name[i, len) */
    uint64_t dots[DOT_WORDS];                /* bit i % 64 of word i / 64: name[i] is a dot */
    /* keyword entries found, each once, in order of discovery; more than
     * KW_LOCAL distinct ones in one name (pathological) set kw_spill */
    uint32_t kent[KW_LOCAL];
    size_t nk;
    int kw_spill;
} pending;

/* The keyword automaton's tables, copied out of the matcher once per batch. */
typedef struct kwtab {
    const uint8_t *cls, *trans, *kout, *kdict;
    uint32_t ncls;
} kwtab;

static void kwtab_init(const pc_matcher *m, kwtab *k)
{
    k->cls = m->sec[S_KCLS];
    k->trans = m->sec[S_KTRANS];
    k->kout = m->sec[S_KOUT];
    k->kdict = m->sec[S_KDICT];
    k->ncls = m->par[P_KCLS];
}

/* Records the keyword entries that end in state s (s has an output or a dict link). */
static void kw_outputs(const kwtab *k, pending *pn, uint32_t s)
{
    for (uint32_t t = s;;) {
        uint32_t e = u32at(k->kout, t), d;
        if (e) {
            size_t j = 0;
            while (j < pn->nk && pn->kent[j] != e - 1)
                j++;
            if (j == pn->nk) {
                if (pn->nk < KW_LOCAL)
                    pn->kent[pn->nk++] = e - 1;
                else
                    pn->kw_spill = 1;
            }
        }
        d = u32at(k->kdict, t);
        if (!d)
            break;
        t = d - 1;
    }
}

/*
 * The first pass (see pending), with the keyword automaton when kw is not
 * NULL. Inlined where kw is a constant, so the domains-only loop has no test
 * of kw in it.
 */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void hash_pass(pending *pn, const kwtab *kw, const uint8_t *name, size_t len)
{
    uint32_t h = H_INIT, s = 0;
    /* 64 bytes at a time, the dots of each in a register (almost every name is
     * one such chunk); shifted in from the top, so the chunk's first byte ends
     * in bit 0 (a shift by one is two instructions on 32-bit ARM, a variable
     * 64-bit shift many more). */
    for (size_t i = len; i > 0;) {
        size_t lo = (i - 1) & ~(size_t)63;
        uint64_t d = 0;
        do {
            uint32_t c = pc_m_fold[name[--i]];
            h = H_STEP(h, c);
            pn->hs[i] = h;
            d = (d << 1) | (c == '.');
            if (kw) {
                s = u32at(kw->trans, (size_t)s * kw->ncls + kw->cls[c]);
                if (u32at(kw->kout, s) | u32at(kw->kdict, s))
                    kw_outputs(kw, pn, s);
            }
        } while (i > lo);
        pn->dots[lo >> 6] = d;
    }
}

/* The first pass with the keyword automaton (a call: the domains-only pass stays inlined in the batch loops). */
static void hash_pass_kw(pending *pn, const kwtab *kw, const uint8_t *name, size_t len)
{
    pn->nk = 0;
    pn->kw_spill = 0;
    hash_pass(pn, kw, name, len);
}

/* The first pass over name[0, len): drops one trailing dot, rejects the empty and the too long. */
static inline void name_hash(pending *pn, const kwtab *kw, const uint8_t *name, size_t len, uint32_t item)
{
    if (len && name[len - 1] == '.')
        len--;
    if (len > PC_MATCHER_MAX_NAME)
        len = 0;
    pn->name = name;
    pn->len = len;
    pn->item = item;
    if (kw)
        hash_pass_kw(pn, kw, name, len);
    else
        hash_pass(pn, NULL, name, len);
}

/*
 * Probes every label-boundary suffix of a hashed name (len > 0), longest
 * first, into dhit. Returns 1 when the name has an empty label (a first or
 * last '.', or two in a row).
 */
static int probe_suffixes(const domtab *dt, const pending *pn, uint32_t *dhit, size_t *nd)
{
    const size_t len = pn->len, nw = (len + 63) / 64;
    uint64_t bad = (pn->dots[0] & 1) | ((pn->dots[(len - 1) / 64] >> ((len - 1) % 64)) & 1);
    for (size_t w = 0; w < nw; w++) {
        uint64_t d = pn->dots[w];
        bad |= d & (d >> 1);
        if (w + 1 < nw)
            bad |= (d >> 63) & pn->dots[w + 1];
    }
    if (bad)
        return 1;
    dom_probe(dt, pn->name, 0, len, pn->hs[0], dhit, nd);
    for (size_t w = 0; w < nw; w++)
        for (uint64_t d = pn->dots[w]; d; d &= d - 1) {
            size_t p = 64 * w + low_bit(d);
            dom_probe(dt, pn->name, p + 1, len, pn->hs[p + 1], dhit, nd);
        }
    return 0;
}

/*
 * Adds the ids of the keywords the first pass found. After a spill (more
 * than KW_LOCAL distinct keywords in the name) a second run of the automaton
 * adds every output as it comes (hb_add drops repeats).
 */
static void kw_add(const pc_matcher *m, const kwtab *k, const pending *pn, hitbuf *hb)
{
    const uint8_t *kent = m->sec[S_KENT], *kids = m->sec[S_KIDS];
    if (!pn->kw_spill) {
        for (size_t j = 0; j < pn->nk; j++)
            hb_add_ids(hb, pn->item, kids, u32at(kent, 2 * (size_t)pn->kent[j]),
                       u32at(kent, 2 * (size_t)pn->kent[j] + 1));
        return;
    }
    for (size_t i = pn->len, s = 0; i-- > 0;) {
        s = u32at(k->trans, s * k->ncls + k->cls[pc_m_fold[pn->name[i]]]);
        for (uint32_t t = (uint32_t)s;;) {
            uint32_t e = u32at(k->kout, t), d;
            if (e)
                hb_add_ids(hb, pn->item, kids, u32at(kent, 2 * (size_t)(e - 1)), u32at(kent, 2 * (size_t)(e - 1) + 1));
            d = u32at(k->kdict, t);
            if (!d)
                break;
            t = d - 1;
        }
    }
}

/*
 * The second pass over a hashed name: hits into hb (domains longest first,
 * then keywords). Returns 1 when the name was rejected.
 */
static int match_one(const pc_matcher *m, const domtab *dt, const kwtab *kw, const pending *pn, hitbuf *hb)
{
    uint32_t dhit[PC_MATCHER_MAX_NAME / 2 + 2];
    size_t nd = 0;
    if (pn->len == 0 || probe_suffixes(dt, pn, dhit, &nd))
        return 1;
    for (size_t k = 0; k < nd; k++)
        dom_ids(m, hb, pn->item, dhit[k]);
    if (kw)
        kw_add(m, kw, pn, hb);
    return 0;
}

/*
 * One item of a batch: its hits into hb, or none and *rej counted when it is
 * rejected. Returns 1 when its hits did not fit (the batch stops; see hb_end).
 */
static int match_item(const pc_matcher *m, const domtab *dt, const kwtab *kw, hitbuf *hb, const pending *pn,
                      uint64_t *rej, int *rc)
{
    hb_begin(hb);
    if (match_one(m, dt, kw, pn, hb)) {
        (*rej)++;
        hb->pos = hb->start;
        return 0;
    }
    return hb_end(hb, rc);
}

/* Matches a batch of names into the caller's hit array (see pc_matcher.h). */
int pc_matcher_match_names(const pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                           size_t n, size_t *next, pc_hit *hits, size_t cap,
                           uint64_t *rejected)
{
    hitbuf hb;
    domtab dt;
    pending pn;
    kwtab kt;
    const kwtab *kw = m && m->par[P_KSTATES] ? &kt : NULL;   /* NULL: no keywords, the bare loop */
    uint64_t rej = 0;
    size_t i;
    int rc = check_match_args(m, buf, off, n, next, hits, cap);
    if (rc < 0)
        return rc;
    domtab_init(m, &dt);
    kwtab_init(m, &kt);
    hb_init(&hb, hits, cap);
    for (i = *next; i < n; i++) {
        if (off[i + 1] < off[i]) {
            rc = PC_ERR_ARG;
            break;
        }
        name_hash(&pn, kw, buf + off[i], off[i + 1] - off[i], (uint32_t)i);
        if (match_item(m, &dt, kw, &hb, &pn, &rej, &rc))
            break;
    }
    *next = i;
    if (rejected)
        *rejected += rej;
    return rc < 0 ? rc : (int)hb.pos;
}

/* Matches the lines of a block (see pc_matcher.h): as pc_matcher_match_names, items being line offsets. */
int pc_matcher_match_lines(const pc_matcher *m, const uint8_t *buf, size_t len, size_t *next,
                           pc_hit *hits, size_t cap, uint64_t *rejected)
{
    hitbuf hb;
    domtab dt;
    pending pn;
    kwtab kt;
    const kwtab *kw = m && m->par[P_KSTATES] ? &kt : NULL;   /* NULL: no keywords, the bare loop */
    uint64_t rej = 0;
    size_t pos;
    int rc = check_match_args(m, buf, buf, len, next, hits, cap);
    if (rc < 0)
        return rc;
    if (len > UINT32_MAX)
        return PC_ERR_ARG;
    domtab_init(m, &dt);
    kwtab_init(m, &kt);
    hb_init(&hb, hits, cap);
    for (pos = *next; pos < len;) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        name_hash(&pn, kw, buf + pos, end - pos, (uint32_t)pos);
        if (match_item(m, &dt, kw, &hb, &pn, &rej, &rc))
            break;
        pos = nl ? end + 1 : len;
    }
    *next = pos;
    if (rejected)
        *rejected += rej;
    return rc < 0 ? rc : (int)hb.pos;
}

/* lower_bound over n keys of klen bytes. */
static size_t lower_bound(const uint8_t *keys, size_t klen, size_t lo, size_t hi, const uint8_t *key)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(keys + klen * mid, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Matches a batch of addresses (see pc_matcher.h). */
int pc_matcher_match_ips(const pc_matcher *m, const uint8_t *addrs, const uint8_t *versions,
                         size_t n, size_t *next, pc_hit *hits, size_t cap)
{
    hitbuf hb;
    size_t i;
    int rc = check_match_args(m, addrs, versions, n, next, hits, cap);
    if (rc < 0)
        return rc;
    hb_init(&hb, hits, cap);
    for (i = *next; i < n; i++) {
        uint8_t a[16] = {0};
        uint8_t ver = versions[i];
        hb_begin(&hb);
        if (ver == 4) {
            memcpy(a, addrs + 16 * i, 4);
        } else if (ver == 6) {
            memcpy(a, addrs + 16 * i, 16);
            if (memcmp(a, pc_m_v4mapped, 12) == 0) {
                memmove(a, a + 12, 4);
                memset(a + 4, 0, 12);
                ver = 4;
            }
        } else {
            continue;
        }
        for (uint32_t g = 0; g < m->par[P_IGRP]; g++) {
            const uint8_t *gr = m->sec[S_IGRP];
            uint8_t k[16];
            size_t start = u32at(gr, 4 * (size_t)g + 2), end = start + u32at(gr, 4 * (size_t)g + 3);
            if (u32at(gr, 4 * (size_t)g) != ver)
                continue;
            memcpy(k, a, 16);
            pc_m_mask_addr(k, u32at(gr, 4 * (size_t)g + 1));
            for (size_t j = lower_bound(m->sec[S_IADDR], 16, start, end, k);
                 j < end && memcmp(m->sec[S_IADDR] + 16 * j, k, 16) == 0; j++)
                hb_add(&hb, (uint32_t)i, u32at(m->sec[S_IIDS], j));
        }
        if (hb_end(&hb, &rc))
            break;
    }
    *next = i;
    return rc < 0 ? rc : (int)hb.pos;
}

/* Matches a batch of certificate fingerprints (see pc_matcher.h). */
int pc_matcher_match_hashes(const pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                            size_t n, size_t *next, pc_hit *hits, size_t cap)
{
    hitbuf hb;
    size_t i;
    int rc = check_match_args(m, buf, off, n, next, hits, cap);
    if (rc < 0)
        return rc;
    hb_init(&hb, hits, cap);
    for (i = *next; i < n; i++) {
        uint32_t len = off[i + 1] - off[i];
        const uint8_t *keys, *ids;
        size_t cnt;
        if (off[i + 1] < off[i]) {
            rc = PC_ERR_ARG;
            break;
        }
        if (len == 20) {
            keys = m->sec[S_H1KEY];
            ids = m->sec[S_H1IDS];
            cnt = m->par[P_H1];
        } else if (len == 32) {
            keys = m->sec[S_H2KEY];
            ids = m->sec[S_H2IDS];
            cnt = m->par[P_H2];
        } else {
            continue;
        }
        hb_begin(&hb);
        for (size_t j = lower_bound(keys, len, 0, cnt, buf + off[i]);
             j < cnt && memcmp(keys + (size_t)len * j, buf + off[i], len) == 0; j++)
            hb_add(&hb, (uint32_t)i, u32at(ids, j));
        if (hb_end(&hb, &rc))
            break;
    }
    *next = i;
    return rc < 0 ? rc : (int)hb.pos;
}

