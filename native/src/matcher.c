/*
 * matcher.c - the indicator matcher (see pc_matcher.h for the contract):
 * its lifecycle, adding patterns, counters, and the helpers its other rooms
 * share (matcher_int.h). Building the tables is in matcher_build.c,
 * matching in matcher_match.c, the compiled file in matcher_file.c.
 *
 * The prepared matcher is a set of flat arrays ("sections"): the same arrays
 * are built on the heap by pc_matcher_prepare(), written as they are by
 * pc_matcher_save() and used in place from a read-only mapping after
 * pc_matcher_load(). So matching code only ever sees sec[] pointers and does
 * not care where they live.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "matcher_int.h"

uint8_t pc_m_fold[256];
static int fold_ready;

/* See matcher_int.h. */
void pc_m_fold_init(void)
{
    if (fold_ready)
        return;
    for (int i = 0; i < 256; i++)
        pc_m_fold[i] = (uint8_t)((i >= 'A' && i <= 'Z') ? i + 32 : i);
    fold_ready = 1;
}

/* See matcher_int.h. */
void pc_m_seterr(pc_matcher *m, const char *fmt, ...)
{
    va_list ap;
    if (!m)
        return;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
}

/* See matcher_int.h. */
void pc_m_seterrbuf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!buf || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* See matcher_int.h. */
int pc_m_vec_push(vec *v, const void *data, size_t len)
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

/* Makes room for a batch of extra more bytes in v at its exact size; PC_OK or PC_ERR_NOMEM. */
static int vec_reserve(vec *v, size_t extra)
{
    uint8_t *np;
    if (extra > SIZE_MAX - v->n)
        return PC_ERR_NOMEM;
    if (v->n + extra <= v->cap || extra < v->cap)
        return PC_OK; /* fits, or small against what is there: pc_m_vec_push's doubling is fine */
    np = pc_realloc(v->p, v->n + extra);
    if (!np)
        return PC_ERR_NOMEM;
    v->p = np;
    v->cap = v->n + extra;
    return PC_OK;
}

/* See matcher_int.h. */
void pc_m_vec_free(vec *v)
{
    pc_free(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Creates an empty matcher in the adding state (see pc_matcher.h). */
int pc_matcher_new(pc_matcher **out)
{
    pc_matcher *m;
    if (!out)
        return PC_ERR_ARG;
    *out = NULL;
    pc_m_fold_init();
    m = pc_calloc(1, sizeof *m);
    if (!m)
        return PC_ERR_NOMEM;
    m->state = ST_ADDING;
    m->fd = -1;
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
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    pc_free(m->filebuf);
    m->filebuf = NULL;
    memset(m->par, 0, sizeof m->par);
}

/* Frees the staged patterns (see matcher_int.h). */
void pc_m_staging_free(pc_matcher *m)
{
    pc_m_vec_free(&m->dstr);
    pc_m_vec_free(&m->drec);
    pc_m_vec_free(&m->kstr);
    pc_m_vec_free(&m->krec);
    pc_m_vec_free(&m->ips);
    pc_m_vec_free(&m->hashes);
}

/* Frees the matcher and everything it owns or maps; NULL is allowed. */
void pc_matcher_free(pc_matcher *m)
{
    if (!m)
        return;
    free_tables(m);
    pc_m_staging_free(m);
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
        pc_m_seterr(m, "patterns cannot be added after prepare");
        return PC_ERR_STATE;
    }
    if (n > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    /* A big batch (a million domains) is reserved at its exact size: doubling would leave up to half unused. */
    if (n && off[n] >= off[0] && (vec_reserve(str, off[n] - off[0]) < 0 || vec_reserve(rec, n * sizeof(srec)) < 0))
        return PC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        srec r;
        if (off[i + 1] < off[i]) {
            pc_m_seterr(m, "pattern %zu: offsets go backwards", i);
            return PC_ERR_ARG;
        }
        len = off[i + 1] - off[i];
        if (domain) {
            len = domain_check(buf + off[i], len);
            if (!len) {
                pc_m_seterr(m, "domain %zu: empty, longer than 253 bytes or with an empty label", i);
                return PC_ERR_ARG;
            }
        } else if (len == 0 || len > PC_MATCHER_MAX_NAME) {
            pc_m_seterr(m, "keyword %zu: empty or longer than 253 bytes", i);
            return PC_ERR_ARG;
        }
        for (size_t j = 0; j < len; j++)
            tmp[j] = pc_m_fold[buf[off[i] + j]];
        if (str->n > UINT32_MAX - len) {
            pc_m_seterr(m, "too many pattern bytes");
            return PC_ERR_LIMIT;
        }
        r.off = (uint32_t)str->n;
        r.len = (uint32_t)len;
        r.id = ids[i];
        if (pc_m_vec_push(str, tmp, len) < 0)
            return PC_ERR_NOMEM;
        if (pc_m_vec_push(rec, &r, sizeof r) < 0) {
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

/* One pattern of len bytes as a batch of one: domain (1) or keyword (0). */
static int add_string(pc_matcher *m, int domain, const char *s, size_t len, uint32_t id)
{
    uint32_t off[2] = {0, (uint32_t)len};
    if (!s || len > UINT32_MAX)
        return PC_ERR_ARG;
    return add_strings(m, domain, (const uint8_t *)s, off, &id, 1);
}

/* Adds one domain indicator of len bytes. */
int pc_matcher_add_domain(pc_matcher *m, const char *s, size_t len, uint32_t id)
{
    return add_string(m, 1, s, len, id);
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
    return add_string(m, 0, s, len, id);
}

/* See matcher_int.h. */
void pc_m_mask_addr(uint8_t *a, unsigned plen)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = plen > 8 * i ? plen - 8 * i : 0;
        if (bits < 8)
            a[i] = (uint8_t)(a[i] & (uint8_t)(0xff00u >> bits));
    }
}

/* See matcher_int.h. */
const uint8_t pc_m_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Adds n IP addresses or prefixes (see pc_matcher.h). */
int pc_matcher_add_ips(pc_matcher *m, const uint8_t *addrs, const uint8_t *versions,
                       const uint8_t *plens, const uint32_t *ids, size_t n)
{
    if (!m || (n && (!addrs || !versions || !plens || !ids)))
        return PC_ERR_ARG;
    if (m->state != ST_ADDING) {
        pc_m_seterr(m, "patterns cannot be added after prepare");
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
            pc_m_seterr(m, "address %zu: bad version %u or prefix length %u", i, r.ver, r.plen);
            return PC_ERR_ARG;
        }
        memcpy(r.addr, addrs + 16 * i, r.ver == 4 ? 4 : 16);
        if (r.ver == 6 && r.plen >= 96 && memcmp(r.addr, pc_m_v4mapped, 12) == 0) {
            /* ::ffff:a.b.c.d/p is the IPv4 prefix a.b.c.d/(p-96). */
            memmove(r.addr, r.addr + 12, 4);
            memset(r.addr + 4, 0, 12);
            r.ver = 4;
            r.plen = (uint8_t)(r.plen - 96);
        }
        pc_m_mask_addr(r.addr, r.plen);
        if (pc_m_vec_push(&m->ips, &r, sizeof r) < 0)
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
        pc_m_seterr(m, "patterns cannot be added after prepare");
        return PC_ERR_STATE;
    }
    if (n > (size_t)INT32_MAX)
        return PC_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        hrec r;
        uint32_t len = off[i + 1] - off[i];
        if (off[i + 1] < off[i] || (len != 20 && len != 32)) {
            pc_m_seterr(m, "fingerprint %zu: %u bytes, expected 20 (SHA-1) or 32 (SHA-256)", i, len);
            return PC_ERR_ARG;
        }
        memset(&r, 0, sizeof r);
        memcpy(r.key, buf + off[i], len);
        r.len = (uint8_t)len;
        r.id = ids[i];
        if (pc_m_vec_push(&m->hashes, &r, sizeof r) < 0)
            return PC_ERR_NOMEM;
    }
    return (int)n;
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

