/*
 * matcher.c - the indicator matcher (see pc_matcher.h for the contract).
 *
 * The prepared matcher is a set of flat arrays ("sections"): the same arrays
 * are built on the heap by pc_matcher_prepare(), written as they are by
 * pc_matcher_save() and used in place from a read-only mapping after
 * pc_matcher_load(). So matching code only ever sees sec[] pointers and does
 * not care where they live.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pc_matcher.h"

/* ---- sections of the prepared matcher / compiled file ------------------ */
enum {
    S_PARAMS,   /* uint32[P_COUNT] */
    S_DSLOT,    /* uint32[2 * slots]: hash, entry + 1 (0 = empty) */
    S_DENT,     /* uint32[4 * domains]: string offset, length, ids offset, ids count */
    S_DSTR,     /* uint8[]: folded domain strings */
    S_DIDS,     /* uint32[] */
    S_DBLOOM,   /* uint32[slots / 8]: a bit per pc_mix32(hash) & (4 * slots - 1), set for every domain */
    S_KCLS,     /* uint8[256]: byte -> class of the keyword automaton */
    S_KTRANS,   /* uint32[states * classes]: the complete transition function */
    S_KOUT,     /* uint32[states]: keyword entry + 1 ending here, 0 = none */
    S_KDICT,    /* uint32[states]: next state + 1 on the failure chain with an output */
    S_KENT,     /* uint32[2 * keywords]: ids offset, ids count */
    S_KIDS,     /* uint32[] */
    S_IGRP,     /* uint32[4 * groups]: version, prefix length, start, count */
    S_IADDR,    /* uint8[16 * prefixes], masked, sorted within each group */
    S_IIDS,     /* uint32[prefixes] */
    S_H1KEY,    /* uint8[20 * n], sorted */
    S_H1IDS,    /* uint32[n] */
    S_H2KEY,    /* uint8[32 * n], sorted */
    S_H2IDS,    /* uint32[n] */
    S_MOFF,     /* uint64[records + 1] (only in files) */
    S_MBLOB,    /* uint8[] (only in files) */
    S_COUNT
};

enum {
    P_DSLOTS, P_DENT, P_DMIN, P_DMAX, P_KSTATES, P_KCLS, P_KENT, P_IGRP, P_IN,
    P_H1, P_H2, P_NMETA, P_IDS, P_COUNT_ = 16
};

#define ST_ADDING   0
#define ST_PREPARED 1

#define MAGIC       "PCMATCH\x1a"
#define ENDIAN_MARK 0x01020304u
#define HDR_FIXED   32u
#define HDR_SIZE    (HDR_FIXED + 16u * S_COUNT)

/* A growable array of the staging area. */
typedef struct vec {
    uint8_t *p;
    size_t n;     /* bytes used */
    size_t cap;
} vec;

/* A staged string pattern: where its bytes are in the staging pool. */
typedef struct srec {
    uint32_t off, len, id;
} srec;

typedef struct iprec {
    uint8_t addr[16];
    uint8_t ver, plen;
    uint32_t id;
} iprec;

typedef struct hrec {
    uint8_t key[32];
    uint8_t len;
    uint32_t id;
} hrec;

struct pc_matcher {
    int state;
    int loaded;              /* sections point into map / filebuf */
    /* staging (adding state) */
    vec dstr, drec, kstr, krec, ips, hashes;
    /* prepared tables */
    const uint8_t *sec[S_COUNT];
    uint64_t secsz[S_COUNT];
    uint32_t par[P_COUNT_];
    void *owned[S_COUNT];    /* heap sections of a built matcher */
    void *map;               /* mmap of a loaded file */
    size_t maplen;
    void *filebuf;           /* pc_matcher_load_mem copy */
    char err[200];
};

static uint8_t g_fold[256];
static int g_fold_ready;

static void fold_init(void)
{
    if (g_fold_ready)
        return;
    for (int i = 0; i < 256; i++)
        g_fold[i] = (uint8_t)((i >= 'A' && i <= 'Z') ? i + 32 : i);
    g_fold_ready = 1;
}

static void seterr(pc_matcher *m, const char *fmt, ...)
{
    va_list ap;
    if (!m)
        return;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
}

static void seterrbuf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!buf || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static int vec_push(vec *v, const void *data, size_t len)
{
    if (len > SIZE_MAX - v->n)
        return PC_ERR_NOMEM;
    if (v->n + len > v->cap) {
        size_t ncap = v->cap ? v->cap : 256;
        while (ncap < v->n + len)
            ncap *= 2;
        uint8_t *np = pc_realloc(v->p, ncap);
        if (!np)
            return PC_ERR_NOMEM;
        v->p = np;
        v->cap = ncap;
    }
    memcpy(v->p + v->n, data, len);
    v->n += len;
    return PC_OK;
}

static void vec_free(vec *v)
{
    pc_free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* FNV-1a over the name from its last byte to its first; pc_mix32 picks the slot. */
#define H_INIT  2166136261u
#define H_STEP(h, c) (((h) ^ (c)) * 16777619u)

static inline uint32_t u32at(const uint8_t *base, size_t i)
{
    /* Sections are 8-byte aligned in memory and in the file, so this is an aligned load. */
    return ((const uint32_t *)(const void *)base)[i];
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Creates an empty matcher in the adding state (see pc_matcher.h). */
int pc_matcher_new(pc_matcher **out)
{
    pc_matcher *m;
    if (!out)
        return PC_ERR_ARG;
    *out = NULL;
    fold_init();
    m = pc_calloc(1, sizeof *m);
    if (!m)
        return PC_ERR_NOMEM;
    m->state = ST_ADDING;
    *out = m;
    return PC_OK;
}

static void free_tables(pc_matcher *m)
{
    for (int i = 0; i < S_COUNT; i++) {
        pc_free(m->owned[i]);
        m->owned[i] = NULL;
        m->sec[i] = NULL;
        m->secsz[i] = 0;
    }
    if (m->map)
        munmap(m->map, m->maplen);
    m->map = NULL;
    pc_free(m->filebuf);
    m->filebuf = NULL;
    memset(m->par, 0, sizeof m->par);
}

/* Frees the matcher and everything it owns or maps; NULL is allowed. */
void pc_matcher_free(pc_matcher *m)
{
    if (!m)
        return;
    free_tables(m);
    vec_free(&m->dstr);
    vec_free(&m->drec);
    vec_free(&m->kstr);
    vec_free(&m->krec);
    vec_free(&m->ips);
    vec_free(&m->hashes);
    pc_free(m);
}

/* The last failure of the matcher, "" if none. */
const char *pc_matcher_error(const pc_matcher *m)
{
    return m ? m->err : "no matcher";
}

/* ---- adding ------------------------------------------------------------- */

/*
 * Folds and checks one domain pattern; returns its new length (trailing dot
 * dropped) or 0 when it is not a valid domain.
 */
static size_t domain_check(const uint8_t *s, size_t len)
{
    size_t label = 0;
    if (len && s[len - 1] == '.')
        len--;
    if (len == 0 || len > PC_MATCHER_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else {
            label++;
        }
    }
    return label ? len : 0;
}

static int add_strings(pc_matcher *m, int domain, const uint8_t *buf, const uint32_t *off,
                       const uint32_t *ids, size_t n)
{
    vec *str, *rec;
    uint8_t tmp[PC_MATCHER_MAX_NAME + 1];
    if (!m || (n && (!buf || !off || !ids)))
        return PC_ERR_ARG;
    str = domain ? &m->dstr : &m->kstr;
    rec = domain ? &m->drec : &m->krec;
    if (m->state != ST_ADDING) {
        seterr(m, "patterns cannot be added after prepare");
        return PC_ERR_STATE;
    }
    if (n > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        srec r;
        if (off[i + 1] < off[i]) {
            seterr(m, "pattern %zu: offsets go backwards", i);
            return PC_ERR_ARG;
        }
        len = off[i + 1] - off[i];
        if (domain) {
            len = domain_check(buf + off[i], len);
            if (!len) {
                seterr(m, "domain %zu: empty, longer than 253 bytes or with an empty label", i);
                return PC_ERR_ARG;
            }
        } else if (len == 0 || len > PC_MATCHER_MAX_NAME) {
            seterr(m, "keyword %zu: empty or longer than 253 bytes", i);
            return PC_ERR_ARG;
        }
        for (size_t j = 0; j < len; j++)
            tmp[j] = g_fold[buf[off[i] + j]];
        if (str->n > UINT32_MAX - len) {
            seterr(m, "too many pattern bytes");
            return PC_ERR_LIMIT;
        }
        r.off = (uint32_t)str->n;
        r.len = (uint32_t)len;
        r.id = ids[i];
        if (vec_push(str, tmp, len) < 0)
            return PC_ERR_NOMEM;
        if (vec_push(rec, &r, sizeof r) < 0) {
            str->n -= len;
            return PC_ERR_NOMEM;
        }
    }
    return (int)n;
}

/* Adds n domain indicators (see pc_matcher.h). */
int pc_matcher_add_domains(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                           const uint32_t *ids, size_t n)
{
    return add_strings(m, 1, buf, off, ids, n);
}

/* Adds one domain indicator of len bytes. */
int pc_matcher_add_domain(pc_matcher *m, const char *s, size_t len, uint32_t id)
{
    uint32_t off[2] = {0, (uint32_t)len};
    if (!s || len > UINT32_MAX)
        return PC_ERR_ARG;
    return add_strings(m, 1, (const uint8_t *)s, off, &id, 1);
}

/* Adds n keyword indicators (see pc_matcher.h). */
int pc_matcher_add_keywords(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                            const uint32_t *ids, size_t n)
{
    return add_strings(m, 0, buf, off, ids, n);
}

/* Adds one keyword indicator of len bytes. */
int pc_matcher_add_keyword(pc_matcher *m, const char *s, size_t len, uint32_t id)
{
    uint32_t off[2] = {0, (uint32_t)len};
    if (!s || len > UINT32_MAX)
        return PC_ERR_ARG;
    return add_strings(m, 0, (const uint8_t *)s, off, &id, 1);
}

static void mask_addr(uint8_t *a, unsigned plen)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = plen > 8 * i ? plen - 8 * i : 0;
        if (bits < 8)
            a[i] = (uint8_t)(a[i] & (uint8_t)(0xff00u >> bits));
    }
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Adds n IP addresses or prefixes (see pc_matcher.h). */
int pc_matcher_add_ips(pc_matcher *m, const uint8_t *addrs, const uint8_t *versions,
                       const uint8_t *plens, const uint32_t *ids, size_t n)
{
    if (!m || (n && (!addrs || !versions || !plens || !ids)))
        return PC_ERR_ARG;
    if (m->state != ST_ADDING) {
        seterr(m, "patterns cannot be added after prepare");
        return PC_ERR_STATE;
    }
    if (n > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        iprec r;
        memset(&r, 0, sizeof r);
        r.ver = versions[i];
        r.plen = plens[i];
        r.id = ids[i];
        if ((r.ver != 4 && r.ver != 6) || r.plen > (r.ver == 4 ? 32 : 128)) {
            seterr(m, "address %zu: bad version %u or prefix length %u", i, r.ver, r.plen);
            return PC_ERR_ARG;
        }
        memcpy(r.addr, addrs + 16 * i, r.ver == 4 ? 4 : 16);
        if (r.ver == 6 && r.plen >= 96 && memcmp(r.addr, v4mapped, 12) == 0) {
            /* ::ffff:a.b.c.d/p is the IPv4 prefix a.b.c.d/(p-96). */
            memmove(r.addr, r.addr + 12, 4);
            memset(r.addr + 4, 0, 12);
            r.ver = 4;
            r.plen = (uint8_t)(r.plen - 96);
        }
        mask_addr(r.addr, r.plen);
        if (vec_push(&m->ips, &r, sizeof r) < 0)
            return PC_ERR_NOMEM;
    }
    return (int)n;
}

/* Adds n certificate fingerprints (see pc_matcher.h). */
int pc_matcher_add_hashes(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                          const uint32_t *ids, size_t n)
{
    if (!m || (n && (!buf || !off || !ids)))
        return PC_ERR_ARG;
    if (m->state != ST_ADDING) {
        seterr(m, "patterns cannot be added after prepare");
        return PC_ERR_STATE;
    }
    if (n > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        hrec r;
        uint32_t len = off[i + 1] - off[i];
        if (off[i + 1] < off[i] || (len != 20 && len != 32)) {
            seterr(m, "fingerprint %zu: %u bytes, expected 20 (SHA-1) or 32 (SHA-256)", i, len);
            return PC_ERR_ARG;
        }
        memset(&r, 0, sizeof r);
        memcpy(r.key, buf + off[i], len);
        r.len = (uint8_t)len;
        r.id = ids[i];
        if (vec_push(&m->hashes, &r, sizeof r) < 0)
            return PC_ERR_NOMEM;
    }
    return (int)n;
}

/* ---- prepare ------------------------------------------------------------ */

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

static int build_domains(pc_matcher *m, void **owned, uint64_t *sz, uint32_t *par)
{
    const srec *rec = (const srec *)(void *)m->drec.p;
    size_t nrec = m->drec.n / sizeof(srec);
    uint32_t nslots = 0, nent = 0, dmin = 0xffffffffu, dmax = 0;
    uint32_t *slots, *ent, *ids, *bloom, *rec_ent = NULL;
    uint8_t *str;
    size_t strbytes = 0;
    int rc = PC_ERR_NOMEM;

    if (nrec) {
        nslots = 16;
        while (nslots < 2 * nrec)
            nslots *= 2;
    }
    slots = sec_alloc(owned, sz, S_DSLOT, (size_t)nslots * 8);
    ent = sec_alloc(owned, sz, S_DENT, nrec * 16);
    ids = sec_alloc(owned, sz, S_DIDS, nrec * 4);
    bloom = sec_alloc(owned, sz, S_DBLOOM, (size_t)nslots / 2);
    rec_ent = pc_malloc(nrec * 4 + 4);
    if (!slots || !ent || !ids || !bloom || !rec_ent)
        goto fail;
    /* Entries, deduplicated by string through the slot table itself. */
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *s = m->dstr.p + rec[i].off;
        uint32_t len = rec[i].len, h = H_INIT, slot;
        for (uint32_t j = len; j-- > 0;)
            h = H_STEP(h, s[j]);
        slot = pc_mix32(h);
        bloom[(slot >> 5) & (nslots / 8 - 1)] |= 1u << (slot & 31);
        slot &= nslots - 1;
        for (;;) {
            uint32_t e1 = slots[2 * slot + 1];
            if (e1 == 0) {
                slots[2 * slot] = h;
                slots[2 * slot + 1] = nent + 1;
                ent[4 * nent] = rec[i].off;     /* staging offset for now */
                ent[4 * nent + 1] = len;
                rec_ent[i] = nent++;
                strbytes += len;
                break;
            }
            if (slots[2 * slot] == h && ent[4 * (e1 - 1) + 1] == len &&
                memcmp(m->dstr.p + ent[4 * (e1 - 1)], s, len) == 0) {
                rec_ent[i] = e1 - 1;
                break;
            }
            slot = (slot + 1) & (nslots - 1);
        }
        ent[4 * rec_ent[i] + 3]++;
        if (len < dmin)
            dmin = len;
        if (len > dmax)
            dmax = len;
    }
    /* Compact the strings of the distinct entries. */
    str = sec_alloc(owned, sz, S_DSTR, strbytes);
    if (!str)
        goto fail;
    strbytes = 0;
    for (uint32_t e = 0; e < nent; e++) {
        memcpy(str + strbytes, m->dstr.p + ent[4 * e], ent[4 * e + 1]);
        ent[4 * e] = (uint32_t)strbytes;
        strbytes += ent[4 * e + 1];
    }
    sz[S_DENT] = (uint64_t)nent * 16;
    fill_ids(rec, rec_ent, nrec, ent, 4, 2, nent, ids);
    par[P_DSLOTS] = nslots;
    par[P_DENT] = nent;
    par[P_DMIN] = nent ? dmin : 0;
    par[P_DMAX] = dmax;
    rc = PC_OK;
fail:
    pc_free(rec_ent);
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
                            seterr(m, "keyword automaton over %u states or %u transitions",
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
        seterr(m, "the matcher is already prepared");
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
    vec_free(&m->dstr);
    vec_free(&m->drec);
    vec_free(&m->kstr);
    vec_free(&m->krec);
    vec_free(&m->ips);
    vec_free(&m->hashes);
    m->state = ST_PREPARED;
    m->err[0] = 0;
    return PC_OK;
fail:
    for (int i = 0; i < S_COUNT; i++)
        pc_free(owned[i]);
    if (rc == PC_ERR_NOMEM)
        seterr(m, "out of memory while preparing");
    return rc;
}

/* ---- matching ----------------------------------------------------------- */

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
    const uint8_t *slots, *ent, *str, *bloom;
    uint32_t mask, bmask, n, dmin, dmax;
} domtab;

static void domtab_init(const pc_matcher *m, domtab *d)
{
    d->slots = m->sec[S_DSLOT];
    d->ent = m->sec[S_DENT];
    d->str = m->sec[S_DSTR];
    d->bloom = m->sec[S_DBLOOM];
    d->n = m->par[P_DENT];
    d->mask = m->par[P_DSLOTS] - 1;
    d->bmask = m->par[P_DSLOTS] / 8 - 1;
    d->dmin = m->par[P_DMIN];
    d->dmax = m->par[P_DMAX];
}

/*
 * Looks up name[from, to) (folded on the fly; h is its hash) among the
 * domains and records the entry in dhit. The bit filter answers most misses
 * from a table a quarter of the slot table's size.
 */
static inline void dom_probe(const domtab *d, const uint8_t *name, size_t from, size_t to, uint32_t h,
                             uint32_t *dhit, size_t *nd)
{
    uint32_t len = (uint32_t)(to - from), f, slot;
    if (!d->n || len < d->dmin || len > d->dmax)
        return;
    f = pc_mix32(h);
    if (!((u32at(d->bloom, (f >> 5) & d->bmask) >> (f & 31)) & 1))
        return;
    for (slot = f & d->mask;; slot = (slot + 1) & d->mask) {
        uint32_t e1 = u32at(d->slots, 2 * (size_t)slot + 1);
        if (!e1)
            return;
        if (u32at(d->slots, 2 * (size_t)slot) == h && u32at(d->ent, 4 * (size_t)(e1 - 1) + 1) == len) {
            const uint8_t *s = d->str + u32at(d->ent, 4 * (size_t)(e1 - 1));
            uint32_t j = 0;
            while (j < len && g_fold[name[from + j]] == s[j])
                j++;
            if (j == len) {
                dhit[(*nd)++] = e1 - 1;
                return;
            }
        }
    }
}

#define KW_LOCAL 256

/*
 * Matches one name: hits into hb (domains longest first, then keywords).
 * Returns 1 when the name was rejected.
 */
static int match_one(const pc_matcher *m, const domtab *dt, const uint8_t *name, size_t len,
                     uint32_t item, hitbuf *hb)
{
    uint32_t dhit[PC_MATCHER_MAX_NAME / 2 + 2];
    uint32_t kent[KW_LOCAL];
    size_t nd = 0, nk = 0;
    int kw_spill = 0;
    const uint32_t ncls = m->par[P_KCLS];
    const uint8_t *cls = m->sec[S_KCLS], *trans = m->sec[S_KTRANS];
    const uint8_t *kout = m->sec[S_KOUT], *kdict = m->sec[S_KDICT];
    uint32_t h = H_INIT, s = 0;
    size_t label = 0;

    if (len && name[len - 1] == '.')
        len--;
    if (len == 0 || len > PC_MATCHER_MAX_NAME)
        return 1;
    if (!m->par[P_KSTATES]) {
        /* Domains only: the common case, kept to the bare loop. */
        for (size_t i = len; i-- > 0;) {
            uint8_t c = g_fold[name[i]];
            if (c == '.') {
                if (label == 0)
                    return 1;
                label = 0;
                dom_probe(dt, name, i + 1, len, h, dhit, &nd);
            } else {
                label++;
            }
            h = H_STEP(h, c);
        }
    } else {
        for (size_t i = len; i-- > 0;) {
            uint8_t c = g_fold[name[i]];
            if (c == '.') {
                if (label == 0)
                    return 1;
                label = 0;
                dom_probe(dt, name, i + 1, len, h, dhit, &nd);
            } else {
                label++;
            }
            h = H_STEP(h, c);
            s = u32at(trans, (size_t)s * ncls + cls[c]);
            if (u32at(kout, s) | u32at(kdict, s)) {
                for (uint32_t t = s;;) {
                    uint32_t e = u32at(kout, t), d;
                    if (e) {
                        size_t k = 0;
                        while (k < nk && kent[k] != e - 1)
                            k++;
                        if (k == nk) {
                            if (nk < KW_LOCAL)
                                kent[nk++] = e - 1;
                            else
                                kw_spill = 1;
                        }
                    }
                    d = u32at(kdict, t);
                    if (!d)
                        break;
                    t = d - 1;
                }
            }
        }
    }
    if (label == 0)
        return 1;
    dom_probe(dt, name, 0, len, h, dhit, &nd);
    while (nd-- > 0) {
        uint32_t e = dhit[nd];
        hb_add_ids(hb, item, m->sec[S_DIDS], u32at(m->sec[S_DENT], 4 * (size_t)e + 2),
                   u32at(m->sec[S_DENT], 4 * (size_t)e + 3));
    }
    /* kent holds entries in order of discovery; more than KW_LOCAL distinct
     * keywords in one name (pathological) means a second pass for all of them. */
    if (kw_spill) {
        s = 0;
        for (size_t i = len; i-- > 0;) {
            s = u32at(trans, (size_t)s * ncls + cls[g_fold[name[i]]]);
            for (uint32_t t = s;;) {
                uint32_t e = u32at(kout, t), d;
                if (e)
                    hb_add_ids(hb, item, m->sec[S_KIDS], u32at(m->sec[S_KENT], 2 * (size_t)(e - 1)),
                               u32at(m->sec[S_KENT], 2 * (size_t)(e - 1) + 1));
                d = u32at(kdict, t);
                if (!d)
                    break;
                t = d - 1;
            }
        }
    } else {
        for (size_t k = 0; k < nk; k++)
            hb_add_ids(hb, item, m->sec[S_KIDS], u32at(m->sec[S_KENT], 2 * (size_t)kent[k]),
                       u32at(m->sec[S_KENT], 2 * (size_t)kent[k] + 1));
    }
    return 0;
}

/* Matches a batch of names into the caller's hit array (see pc_matcher.h). */
int pc_matcher_match_names(const pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                           size_t n, size_t *next, pc_hit *hits, size_t cap,
                           uint64_t *rejected)
{
    hitbuf hb;
    domtab dt;
    uint64_t rej = 0;
    size_t i;
    int rc = check_match_args(m, buf, off, n, next, hits, cap);
    if (rc < 0)
        return rc;
    domtab_init(m, &dt);
    hb.hits = hits;
    hb.cap = cap;
    hb.pos = 0;
    for (i = *next; i < n; i++) {
        if (off[i + 1] < off[i]) {
            rc = PC_ERR_ARG;
            break;
        }
        hb.start = hb.pos;
        hb.overflow = 0;
        if (match_one(m, &dt, buf + off[i], off[i + 1] - off[i], (uint32_t)i, &hb)) {
            rej++;
            hb.pos = hb.start;
            continue;
        }
        if (hb.overflow) {
            hb.pos = hb.start;
            if (hb.start == 0)
                rc = PC_ERR_LIMIT;
            break;
        }
    }
    *next = i;
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
    hb.hits = hits;
    hb.cap = cap;
    hb.pos = 0;
    for (i = *next; i < n; i++) {
        uint8_t a[16] = {0};
        uint8_t ver = versions[i];
        hb.start = hb.pos;
        hb.overflow = 0;
        if (ver == 4) {
            memcpy(a, addrs + 16 * i, 4);
        } else if (ver == 6) {
            memcpy(a, addrs + 16 * i, 16);
            if (memcmp(a, v4mapped, 12) == 0) {
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
            mask_addr(k, u32at(gr, 4 * (size_t)g + 1));
            for (size_t j = lower_bound(m->sec[S_IADDR], 16, start, end, k);
                 j < end && memcmp(m->sec[S_IADDR] + 16 * j, k, 16) == 0; j++)
                hb_add(&hb, (uint32_t)i, u32at(m->sec[S_IIDS], j));
        }
        if (hb.overflow) {
            hb.pos = hb.start;
            if (hb.start == 0)
                rc = PC_ERR_LIMIT;
            break;
        }
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
    hb.hits = hits;
    hb.cap = cap;
    hb.pos = 0;
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
        hb.start = hb.pos;
        hb.overflow = 0;
        for (size_t j = lower_bound(keys, len, 0, cnt, buf + off[i]);
             j < cnt && memcmp(keys + (size_t)len * j, buf + off[i], len) == 0; j++)
            hb_add(&hb, (uint32_t)i, u32at(ids, j));
        if (hb.overflow) {
            hb.pos = hb.start;
            if (hb.start == 0)
                rc = PC_ERR_LIMIT;
            break;
        }
    }
    *next = i;
    return rc < 0 ? rc : (int)hb.pos;
}

/* ---- the compiled file -------------------------------------------------- */

/* CRC-32 (IEEE 802.3), table-driven "slicing by 4": four table lookups per
 * four bytes, so verifying a 50 MB file on load costs tens of milliseconds. */
static uint32_t crc_table[4][256];
static int crc_ready;

static void crc_init(void)
{
    if (crc_ready)
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 4; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = 1;
}

/* CRC-32 continued from crc (0 to start); bytes are read one by one (no alignment needs). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    size_t i = 0;
    crc = ~crc;
    for (; i + 4 <= n; i += 4) {
        crc ^= (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8) | ((uint32_t)p[i + 2] << 16) | ((uint32_t)p[i + 3] << 24);
        crc = crc_table[3][crc & 0xff] ^ crc_table[2][(crc >> 8) & 0xff] ^ crc_table[1][(crc >> 16) & 0xff] ^
              crc_table[0][crc >> 24];
    }
    for (; i < n; i++)
        crc = crc_table[0][(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int host_is_le(void)
{
    const uint32_t x = 1;
    uint8_t b;
    memcpy(&b, &x, 1);
    return b == 1;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return pc_rd32le(p);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)pc_rd32le(p) | ((uint64_t)pc_rd32le(p + 4) << 32);
}

static int write_all(FILE *f, const void *p, size_t n, uint32_t *crc)
{
    if (n && fwrite(p, 1, n, f) != n)
        return PC_ERR_IO;
    if (crc)
        *crc = crc32_update(*crc, p, n);
    return PC_OK;
}

/* Writes the prepared matcher and a metadata section to path (see pc_matcher.h). */
int pc_matcher_save(const pc_matcher *m, const char *path, const uint8_t *meta,
                    const uint64_t *meta_off, size_t n_meta, char *errbuf, size_t errlen)
{
    static const uint8_t zeros[8] = {0};
    const uint8_t *data[S_COUNT];
    uint64_t size[S_COUNT], offs[S_COUNT], pos = HDR_SIZE;
    uint8_t hdr[HDR_SIZE], params[P_COUNT_ * 4];
    uint32_t crc = 0;
    char *tmp = NULL;
    FILE *f = NULL;
    int rc = PC_ERR_IO;

    if (!m || !path || (n_meta && (!meta || !meta_off))) {
        seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    if (m->state != ST_PREPARED) {
        seterrbuf(errbuf, errlen, "the matcher is not prepared");
        return PC_ERR_STATE;
    }
    if (!host_is_le()) {
        seterrbuf(errbuf, errlen, "compiled files are little-endian; this host is not");
        return PC_ERR_ARG;
    }
    if (n_meta > UINT32_MAX - 1 || (n_meta && meta_off[0] != 0)) {
        seterrbuf(errbuf, errlen, "bad metadata offsets");
        return PC_ERR_ARG;
    }
    for (size_t i = 0; i < n_meta; i++)
        if (meta_off[i + 1] < meta_off[i]) {
            seterrbuf(errbuf, errlen, "metadata offsets go backwards at record %zu", i);
            return PC_ERR_ARG;
        }
    crc_init();
    for (int i = 0; i < S_COUNT; i++) {
        data[i] = m->sec[i];
        size[i] = m->secsz[i];
    }
    memcpy(params, m->par, sizeof params);
    put32(params + 4 * P_NMETA, (uint32_t)n_meta);
    data[S_PARAMS] = params;
    size[S_PARAMS] = sizeof params;
    data[S_MOFF] = (const uint8_t *)meta_off;
    size[S_MOFF] = n_meta ? (n_meta + 1) * 8 : 0;
    data[S_MBLOB] = meta;
    size[S_MBLOB] = n_meta ? meta_off[n_meta] : 0;
    for (int i = 0; i < S_COUNT; i++) {
        offs[i] = pos;
        pos += (size[i] + 7) & ~(uint64_t)7;
    }
    tmp = pc_malloc(strlen(path) + 5);
    if (!tmp) {
        rc = PC_ERR_NOMEM;
        goto fail;
    }
    memcpy(tmp, path, strlen(path));
    memcpy(tmp + strlen(path), ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) {
        seterrbuf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
        goto fail;
    }
    /* The checksum covers the file size, the section table and every section. */
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, MAGIC, 8);
    put32(hdr + 8, PC_MATCHER_FORMAT);
    put32(hdr + 12, ENDIAN_MARK);
    put32(hdr + 16, S_COUNT);
    put64(hdr + 24, pos);
    for (int i = 0; i < S_COUNT; i++) {
        put64(hdr + HDR_FIXED + 16 * i, offs[i]);
        put64(hdr + HDR_FIXED + 16 * i + 8, size[i]);
    }
    crc = crc32_update(0, hdr + 24, HDR_SIZE - 24);
    if (write_all(f, hdr, sizeof hdr, NULL) < 0)
        goto ioerr;
    for (int i = 0; i < S_COUNT; i++) {
        size_t pad = (size_t)(((size[i] + 7) & ~(uint64_t)7) - size[i]);
        if (write_all(f, data[i], (size_t)size[i], &crc) < 0 || write_all(f, zeros, pad, &crc) < 0)
            goto ioerr;
    }
    put32(hdr + 20, crc);
    if (fseek(f, 20, SEEK_SET) != 0 || write_all(f, hdr + 20, 4, NULL) < 0 || fflush(f) != 0)
        goto ioerr;
    if (fclose(f) != 0) {
        f = NULL;
        goto ioerr;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto ioerr;
    pc_free(tmp);
    return PC_OK;
ioerr:
    seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
    rc = PC_ERR_IO;
fail:
    if (f)
        fclose(f);
    if (tmp) {
        remove(tmp);
        pc_free(tmp);
    }
    return rc;
}

/* Checks that following dict links from any state terminates (no cycle). */
static int dict_acyclic(const uint8_t *dict, uint32_t n)
{
    uint8_t *mark = pc_calloc(n ? n : 1, 1);   /* 0 new, 1 on the current path, 2 known good */
    int ok = 1;
    if (!mark)
        return -1;
    for (uint32_t s = 0; s < n && ok; s++) {
        uint32_t t = s;
        while (mark[t] == 0) {
            uint32_t d = u32at(dict, t);
            mark[t] = 1;
            if (!d)
                break;
            t = d - 1;
        }
        if (mark[t] == 1 && u32at(dict, t) != 0) {
            ok = 0;
            break;
        }
        /* Everything on this path is good now. */
        for (t = s; mark[t] == 1;) {
            uint32_t d = u32at(dict, t);
            mark[t] = 2;
            if (!d)
                break;
            t = d - 1;
        }
    }
    pc_free(mark);
    return ok;
}

#define BAD(...) do { seterrbuf(errbuf, errlen, __VA_ARGS__); return PC_ERR_CORRUPT; } while (0)

/* Validates the header and every index of a compiled image; fills sec/secsz/par. */
static int validate(const uint8_t *img, size_t len, const uint8_t **sec, uint64_t *secsz,
                    uint32_t *par, char *errbuf, size_t errlen)
{
    uint64_t total;
    if (!host_is_le())
        BAD("compiled files are little-endian; this host is not");
    if (len < HDR_SIZE)
        BAD("too short for a compiled indicator file (%zu bytes)", len);
    if (memcmp(img, MAGIC, 8) != 0)
        BAD("not a compiled indicator file (bad magic)");
    if (get32(img + 8) != PC_MATCHER_FORMAT)
        BAD("compiled with format version %u; this pocketcheck reads version %u (recompile the indicators)",
            get32(img + 8), PC_MATCHER_FORMAT);
    if (get32(img + 12) != ENDIAN_MARK || get32(img + 16) != S_COUNT)
        BAD("damaged header");
    total = get64(img + 24);
    if (total != len)
        BAD("truncated or padded: the header says %llu bytes, the file has %zu",
            (unsigned long long)total, len);
    crc_init();
    if (crc32_update(0, img + 24, len - 24) != get32(img + 20))
        BAD("checksum mismatch: the file is damaged");
    for (int i = 0; i < S_COUNT; i++) {
        uint64_t o = get64(img + HDR_FIXED + 16 * i), s = get64(img + HDR_FIXED + 16 * i + 8);
        if (o % 8 || o < HDR_SIZE || o > len || s > len - o)
            BAD("damaged section table (section %d)", i);
        sec[i] = img + o;
        secsz[i] = s;
    }
    if (secsz[S_PARAMS] != P_COUNT_ * 4)
        BAD("damaged parameters");
    for (int i = 0; i < P_COUNT_; i++)
        par[i] = u32at(sec[S_PARAMS], i);
    /* Section sizes agree with the counts. */
    {
        const uint64_t ds = par[P_DSLOTS], de = par[P_DENT], ks = par[P_KSTATES], kc = par[P_KCLS];
        if ((ds & (ds - 1)) || (ds && (ds < 2 * de || ds < 16)) || (!ds && de) || secsz[S_DSLOT] != ds * 8 || secsz[S_DBLOOM] != ds / 2 ||
            secsz[S_DENT] != de * 16 || secsz[S_DIDS] % 4)
            BAD("damaged domain table");
        if (secsz[S_KCLS] != 256 || secsz[S_KTRANS] != ks * kc * 4 || secsz[S_KOUT] != ks * 4 ||
            secsz[S_KDICT] != ks * 4 || secsz[S_KENT] != (uint64_t)par[P_KENT] * 8 || secsz[S_KIDS] % 4 ||
            (ks && (kc == 0 || kc > 256)) || (!ks && (kc || par[P_KENT])) || ks > PC_MATCHER_MAX_KW_STATES ||
            ks * kc > PC_MATCHER_MAX_KW_CELLS)
            BAD("damaged keyword automaton");
        if (secsz[S_IGRP] != (uint64_t)par[P_IGRP] * 16 || secsz[S_IADDR] != (uint64_t)par[P_IN] * 16 ||
            secsz[S_IIDS] != (uint64_t)par[P_IN] * 4)
            BAD("damaged address table");
        if (secsz[S_H1KEY] != (uint64_t)par[P_H1] * 20 || secsz[S_H1IDS] != (uint64_t)par[P_H1] * 4 ||
            secsz[S_H2KEY] != (uint64_t)par[P_H2] * 32 || secsz[S_H2IDS] != (uint64_t)par[P_H2] * 4)
            BAD("damaged fingerprint table");
        if (par[P_NMETA] ? secsz[S_MOFF] != ((uint64_t)par[P_NMETA] + 1) * 8 : secsz[S_MOFF] != 0)
            BAD("damaged metadata index");
    }
    /* Every index points inside its target. */
    {
        const uint64_t nstr = secsz[S_DSTR], nids = secsz[S_DIDS] / 4;
        uint64_t used = 0;
        for (uint64_t i = 0; i < par[P_DSLOTS]; i++) {
            uint32_t e1 = u32at(sec[S_DSLOT], 2 * i + 1);
            if (e1 > par[P_DENT])
                BAD("damaged domain table (slot %llu)", (unsigned long long)i);
            used += e1 != 0;
        }
        /* At most one slot per entry and at most half full: every probe sequence meets an empty slot. */
        if (used > par[P_DENT])
            BAD("damaged domain table (slots)");
        for (uint64_t e = 0; e < par[P_DENT]; e++) {
            uint64_t so = u32at(sec[S_DENT], 4 * e), sl = u32at(sec[S_DENT], 4 * e + 1);
            uint64_t io = u32at(sec[S_DENT], 4 * e + 2), in = u32at(sec[S_DENT], 4 * e + 3);
            if (sl == 0 || sl > PC_MATCHER_MAX_NAME || so + sl > nstr || io + in > nids)
                BAD("damaged domain table (entry %llu)", (unsigned long long)e);
        }
        if (par[P_DENT] && (par[P_DMIN] == 0 || par[P_DMAX] > PC_MATCHER_MAX_NAME))
            BAD("damaged domain table");
    }
    {
        const uint64_t ks = par[P_KSTATES], kc = par[P_KCLS], kids = secsz[S_KIDS] / 4;
        for (int c = 0; c < 256; c++)
            if (ks && sec[S_KCLS][c] >= kc)
                BAD("damaged keyword automaton (class map)");
        for (uint64_t i = 0; i < ks * kc; i++)
            if (u32at(sec[S_KTRANS], i) >= ks)
                BAD("damaged keyword automaton (transition %llu)", (unsigned long long)i);
        for (uint64_t s = 0; s < ks; s++)
            if (u32at(sec[S_KOUT], s) > par[P_KENT] || u32at(sec[S_KDICT], s) > ks)
                BAD("damaged keyword automaton (state %llu)", (unsigned long long)s);
        for (uint64_t e = 0; e < par[P_KENT]; e++)
            if ((uint64_t)u32at(sec[S_KENT], 2 * e) + u32at(sec[S_KENT], 2 * e + 1) > kids)
                BAD("damaged keyword automaton (entry %llu)", (unsigned long long)e);
        if (ks) {
            int ok = dict_acyclic(sec[S_KDICT], (uint32_t)ks);
            if (ok < 0) {
                seterrbuf(errbuf, errlen, "out of memory while checking the file");
                return PC_ERR_NOMEM;
            }
            if (!ok)
                BAD("damaged keyword automaton (a cycle)");
        }
    }
    for (uint64_t g = 0; g < par[P_IGRP]; g++) {
        uint32_t v = u32at(sec[S_IGRP], 4 * g), pl = u32at(sec[S_IGRP], 4 * g + 1);
        uint64_t st = u32at(sec[S_IGRP], 4 * g + 2), n = u32at(sec[S_IGRP], 4 * g + 3);
        if ((v != 4 && v != 6) || pl > (v == 4 ? 32u : 128u) || st + n > par[P_IN])
            BAD("damaged address table (group %llu)", (unsigned long long)g);
    }
    if (par[P_NMETA]) {
        uint64_t prev = 0;
        for (uint64_t i = 0; i <= par[P_NMETA]; i++) {
            uint64_t o = get64(sec[S_MOFF] + 8 * i);
            if (o < prev || (i == 0 && o != 0))
                BAD("damaged metadata index");
            prev = o;
        }
        if (prev != secsz[S_MBLOB])
            BAD("damaged metadata index");
    } else if (secsz[S_MBLOB]) {
        BAD("damaged metadata");
    }
    return PC_OK;
}

static int load_image(pc_matcher **out, const uint8_t *img, size_t len, void *map, void *filebuf,
                      char *errbuf, size_t errlen)
{
    pc_matcher *m = NULL;
    int rc = pc_matcher_new(&m);
    if (rc < 0) {
        seterrbuf(errbuf, errlen, "out of memory");
        goto fail;
    }
    rc = validate(img, len, m->sec, m->secsz, m->par, errbuf, errlen);
    if (rc < 0)
        goto fail;
    m->map = map;
    m->maplen = map ? len : 0;
    m->filebuf = filebuf;
    m->loaded = 1;
    m->state = ST_PREPARED;
    *out = m;
    return PC_OK;
fail:
    pc_matcher_free(m);
    if (map)
        munmap(map, len);
    pc_free(filebuf);
    return rc;
}

/* Loads a compiled file from memory (copied; see pc_matcher.h). */
int pc_matcher_load_mem(pc_matcher **out, const uint8_t *data, size_t len,
                        char *errbuf, size_t errlen)
{
    uint8_t *copy;
    if (!out || (!data && len)) {
        seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    *out = NULL;
    copy = pc_malloc(len);
    if (!copy) {
        seterrbuf(errbuf, errlen, "out of memory");
        return PC_ERR_NOMEM;
    }
    if (len)
        memcpy(copy, data, len);
    return load_image(out, copy, len, NULL, copy, errbuf, errlen);
}

/* Maps and checks a compiled file (see pc_matcher.h). */
int pc_matcher_load(pc_matcher **out, const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    void *map;
    int fd;
    if (!out || !path) {
        seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PC_ERR_OPEN;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        seterrbuf(errbuf, errlen, "%s: not a regular file", path);
        close(fd);
        return PC_ERR_OPEN;
    }
    if ((uint64_t)st.st_size < HDR_SIZE) {
        close(fd);
        seterrbuf(errbuf, errlen, "%s: too short for a compiled indicator file (%lld bytes)",
                  path, (long long)st.st_size);
        return PC_ERR_CORRUPT;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        seterrbuf(errbuf, errlen, "%s: too large", path);
        return PC_ERR_CORRUPT;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PC_ERR_OPEN;
    }
    return load_image(out, map, (size_t)st.st_size, map, NULL, errbuf, errlen);
}

/* Metadata record id of a loaded matcher (see pc_matcher.h). */
int pc_matcher_metadata(const pc_matcher *m, uint32_t id, const uint8_t **data, size_t *len)
{
    uint64_t a, b;
    if (!m || !data || !len)
        return PC_ERR_ARG;
    if (!m->loaded)
        return PC_ERR_STATE;
    if (id >= m->par[P_NMETA])
        return PC_ERR_ARG;
    a = get64(m->sec[S_MOFF] + 8 * (size_t)id);
    b = get64(m->sec[S_MOFF] + 8 * ((size_t)id + 1));
    *data = m->sec[S_MBLOB] + a;
    *len = (size_t)(b - a);
    return PC_OK;
}

/* Counters and memory use (see pc_matcher.h). */
void pc_matcher_stats_get(const pc_matcher *m, pc_matcher_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    out->prepared = m->state == ST_PREPARED;
    out->loaded = (uint64_t)m->loaded;
    if (m->state != ST_PREPARED) {
        out->domains = m->drec.n / sizeof(srec);
        out->keywords = m->krec.n / sizeof(srec);
        out->prefixes = m->ips.n / sizeof(iprec);
        out->hashes = m->hashes.n / sizeof(hrec);
        out->ids = out->domains + out->keywords + out->prefixes + out->hashes;
        out->memory_bytes = m->dstr.cap + m->drec.cap + m->kstr.cap + m->krec.cap + m->ips.cap + m->hashes.cap;
        return;
    }
    out->domains = m->par[P_DENT];
    out->keywords = m->par[P_KENT];
    out->prefixes = m->par[P_IN];
    out->hashes = (uint64_t)m->par[P_H1] + m->par[P_H2];
    out->ids = m->par[P_IDS];
    out->kw_states = m->par[P_KSTATES];
    out->kw_classes = m->par[P_KCLS];
    out->meta_records = m->par[P_NMETA];
    if (m->map)
        out->memory_bytes = m->maplen;
    else
        for (int i = 0; i < S_COUNT; i++)
            out->memory_bytes += m->secsz[i];
}
