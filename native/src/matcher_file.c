/*
 * matcher_file.c - the compiled file: pc_matcher_save() writes the sections
 * as they are (with a header, a CRC and the metadata records),
 * pc_matcher_load() maps one read-only after checking the header, the CRC
 * (read with pread, so loading does not make the whole file resident) and
 * the small tables; the large indexes are bounds-checked where they are read
 * (pc_matcher.h). pc_matcher_metadata*() read the records back by id.
 *
 * Longer than 500 lines because the writer, the loader and the record reader
 * share one private layout (the section table, the header fields, the CRC):
 * split, each would repeat it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "matcher_int.h"

#define MAGIC       "PCMATCH\x1a"
#define ENDIAN_MARK 0x01020304u
#define HDR_FIXED   32u
#define HDR_SIZE    (HDR_FIXED + 16u * S_COUNT)

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

/* Writes the n metadata offsets as little-endian uint32 (checked <= UINT32_MAX by the caller). */
static int write_moff(FILE *f, const uint64_t *off, uint64_t n, uint32_t *crc)
{
    uint8_t buf[4096];
    for (uint64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buf / 4 && i < n; k++, i++)
            put32(buf + 4 * k, (uint32_t)off[i]);
        if (write_all(f, buf, 4 * k, crc) < 0)
            return PC_ERR_IO;
    }
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
        pc_m_seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    if (m->state != ST_PREPARED) {
        pc_m_seterrbuf(errbuf, errlen, "the matcher is not prepared");
        return PC_ERR_STATE;
    }
    if (!host_is_le()) {
        pc_m_seterrbuf(errbuf, errlen, "compiled files are little-endian; this host is not");
        return PC_ERR_ARG;
    }
    if (n_meta > UINT32_MAX - 2 || (n_meta && (meta_off[0] != 0 || meta_off[n_meta] > UINT32_MAX))) {
        pc_m_seterrbuf(errbuf, errlen, "bad metadata offsets");
        return PC_ERR_ARG;
    }
    for (size_t i = 0; i < n_meta; i++)
        if (meta_off[i + 1] < meta_off[i]) {
            pc_m_seterrbuf(errbuf, errlen, "metadata offsets go backwards at record %zu", i);
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
    data[S_MOFF] = NULL;   /* written from meta_off as uint32 (write_moff) */
    size[S_MOFF] = n_meta ? (n_meta + 1) * 4 : 0;
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
        pc_m_seterrbuf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
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
        if (i == S_MOFF ? write_moff(f, meta_off, size[i] / 4, &crc) < 0
                        : write_all(f, data[i], (size_t)size[i], &crc) < 0)
            goto ioerr;
        if (write_all(f, zeros, pad, &crc) < 0)
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
    pc_m_seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
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

#define BAD(...) do { pc_m_seterrbuf(errbuf, errlen, __VA_ARGS__); return PC_ERR_CORRUPT; } while (0)

/*
 * Validates a compiled image whose CRC over bytes 24.. the caller computed
 * (crc): header, section table, every size against the counts, and every
 * index of the small tables (keywords, addresses, fingerprints). The domain
 * table and the metadata index are as large as the indicator set; their
 * indexes are checked where they are read (matcher_match.c,
 * pc_matcher_metadata()), so loading a 1 M-domain file touches only its
 * first page and the small tables. Fills sec/secsz/par.
 */
static int validate(const uint8_t *img, size_t len, uint32_t crc, const uint8_t **sec, uint64_t *secsz,
                    uint64_t *secoff, uint32_t *par, char *errbuf, size_t errlen)
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
    if (crc != get32(img + 20))
        BAD("checksum mismatch: the file is damaged");
    for (int i = 0; i < S_COUNT; i++) {
        uint64_t o = get64(img + HDR_FIXED + 16 * i), s = get64(img + HDR_FIXED + 16 * i + 8);
        if (o % 8 || o < HDR_SIZE || o > len || s > len - o)
            BAD("damaged section table (section %d)", i);
        sec[i] = img + o;
        secsz[i] = s;
        secoff[i] = o;
    }
    if (secsz[S_PARAMS] != P_COUNT_ * 4)
        BAD("damaged parameters");
    for (int i = 0; i < P_COUNT_; i++)
        par[i] = u32at(sec[S_PARAMS], i);
    /* Section sizes agree with the counts. */
    {
        const uint64_t nb = par[P_DBUCK], de = par[P_DENT], bits = par[P_DBITS];
        const uint64_t ks = par[P_KSTATES], kc = par[P_KCLS];
        if (nb == 0 || (nb & (nb - 1)) || bits < 64 || (bits & (bits - 1)) || bits > ((uint64_t)1 << 31) ||
            secsz[S_DBUCK] != (nb + 1) * 4 || secsz[S_DKEY] != de * 4 || secsz[S_DSOFF] != (de + 1) * 4 ||
            secsz[S_DID] != de * 4 || secsz[S_DIDS] % 4 || secsz[S_DBLOOM] != bits / 8 ||
            secsz[S_DSTR] > UINT32_MAX)
            BAD("damaged domain table");
        if (de && (par[P_DMIN] == 0 || par[P_DMAX] > PC_MATCHER_MAX_NAME || par[P_DMIN] > par[P_DMAX]))
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
        if (par[P_NMETA] ? secsz[S_MOFF] != ((uint64_t)par[P_NMETA] + 1) * 4 : secsz[S_MOFF] != 0)
            BAD("damaged metadata index");
        if (!par[P_NMETA] && secsz[S_MBLOB])
            BAD("damaged metadata");
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
                pc_m_seterrbuf(errbuf, errlen, "out of memory while checking the file");
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
    return PC_OK;
}

/* CRC-32 of bytes 24.. of an image in memory. */
static uint32_t image_crc(const uint8_t *img, size_t len)
{
    crc_init();
    return len > 24 ? crc32_update(0, img + 24, len - 24) : 0;
}

/*
 * CRC-32 of bytes 24.. of the open file, read with pread() through a small
 * buffer rather than through the mapping: the file's pages then stay in the
 * page cache (shared, reclaimable) instead of all becoming resident in this
 * process. Returns PC_OK, PC_ERR_NOMEM or PC_ERR_IO.
 */
static int file_crc(int fd, uint64_t len, uint32_t *crc)
{
    enum { CHUNK = 256 * 1024 };
    uint8_t *buf = pc_malloc(CHUNK);
    uint64_t pos = 24;
    uint32_t c = 0;
    if (!buf)
        return PC_ERR_NOMEM;
    crc_init();
    while (pos < len) {
        size_t want = len - pos < CHUNK ? (size_t)(len - pos) : CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            pc_free(buf);
            return PC_ERR_IO;
        }
        c = crc32_update(c, buf, (size_t)got);
        pos += (uint64_t)got;
    }
    pc_free(buf);
    *crc = c;
    return PC_OK;
}

static int load_image(pc_matcher **out, const uint8_t *img, size_t len, uint32_t crc, void *map,
                      void *filebuf, int fd, char *errbuf, size_t errlen)
{
    pc_matcher *m = NULL;
    int rc = pc_matcher_new(&m);
    if (rc < 0) {
        pc_m_seterrbuf(errbuf, errlen, "out of memory");
        goto fail;
    }
    {
        uint64_t secoff[S_COUNT];
        rc = validate(img, len, crc, m->sec, m->secsz, secoff, m->par, errbuf, errlen);
        if (rc < 0)
            goto fail;
        m->moff_at = secoff[S_MOFF];
        m->mblob_at = secoff[S_MBLOB];
    }
    m->map = map;
    m->maplen = map ? len : 0;
    m->filebuf = filebuf;
    m->fd = fd;
    m->loaded = 1;
    m->state = ST_PREPARED;
    *out = m;
    return PC_OK;
fail:
    pc_matcher_free(m);
    if (map)
        munmap(map, len);
    if (fd >= 0)
        close(fd);
    pc_free(filebuf);
    return rc;
}

/* Loads a compiled file from memory (copied; see pc_matcher.h). */
int pc_matcher_load_mem(pc_matcher **out, const uint8_t *data, size_t len,
                        char *errbuf, size_t errlen)
{
    uint8_t *copy;
    if (!out || (!data && len)) {
        pc_m_seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    *out = NULL;
    copy = pc_malloc(len);
    if (!copy) {
        pc_m_seterrbuf(errbuf, errlen, "out of memory");
        return PC_ERR_NOMEM;
    }
    if (len)
        memcpy(copy, data, len);
    return load_image(out, copy, len, image_crc(copy, len), NULL, copy, -1, errbuf, errlen);
}

/* Maps and checks a compiled file (see pc_matcher.h). */
int pc_matcher_load(pc_matcher **out, const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    void *map;
    int fd;
    if (!out || !path) {
        pc_m_seterrbuf(errbuf, errlen, "bad arguments");
        return PC_ERR_ARG;
    }
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pc_m_seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return PC_ERR_OPEN;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        pc_m_seterrbuf(errbuf, errlen, "%s: not a regular file", path);
        close(fd);
        return PC_ERR_OPEN;
    }
    if ((uint64_t)st.st_size < HDR_SIZE) {
        close(fd);
        pc_m_seterrbuf(errbuf, errlen, "%s: too short for a compiled indicator file (%lld bytes)",
                  path, (long long)st.st_size);
        return PC_ERR_CORRUPT;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        pc_m_seterrbuf(errbuf, errlen, "%s: too large", path);
        return PC_ERR_CORRUPT;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        pc_m_seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return PC_ERR_OPEN;
    }
    /* Matching reads a few keys of a bucket and then one string: random
     * access, for which the kernel's read-ahead and fault-around would map
     * (and count in this process) pages nobody reads. */
    (void)madvise(map, (size_t)st.st_size, MADV_RANDOM);
    {
        uint32_t crc = 0;
        int rc = file_crc(fd, (uint64_t)st.st_size, &crc);
        if (rc < 0) {
            munmap(map, (size_t)st.st_size);
            close(fd);
            if (rc == PC_ERR_NOMEM) {
                pc_m_seterrbuf(errbuf, errlen, "out of memory");
                return PC_ERR_NOMEM;
            }
            pc_m_seterrbuf(errbuf, errlen, "%s: read error", path);
            return PC_ERR_OPEN;
        }
        /* The descriptor stays open: metadata records are read through it. */
        return load_image(out, map, (size_t)st.st_size, crc, map, NULL, fd, errbuf, errlen);
    }
}

/* Record id's bounds [*a, *b) in the blob, checked (the index is not checked at load). */
static int meta_span(const pc_matcher *m, uint32_t id, uint64_t *a, uint64_t *b)
{
    if (!m->loaded)
        return PC_ERR_STATE;
    if (id >= m->par[P_NMETA])
        return PC_ERR_ARG;
    *a = u32at(m->sec[S_MOFF], id);
    *b = u32at(m->sec[S_MOFF], (size_t)id + 1);
    if (*a > *b || *b > m->secsz[S_MBLOB])
        return PC_ERR_CORRUPT;
    return PC_OK;
}

/* Metadata record id of a loaded matcher (see pc_matcher.h). */
int pc_matcher_metadata(const pc_matcher *m, uint32_t id, const uint8_t **data, size_t *len)
{
    uint64_t a, b;
    int rc;
    if (!m || !data || !len)
        return PC_ERR_ARG;
    rc = meta_span(m, id, &a, &b);
    if (rc < 0)
        return rc;
    *data = m->sec[S_MBLOB] + a;
    *len = (size_t)(b - a);
    return PC_OK;
}

/* pread of exactly n bytes at pos; PC_OK or PC_ERR_IO. */
static int pread_all(int fd, uint8_t *buf, size_t n, uint64_t pos)
{
    while (n) {
        ssize_t got = pread(fd, buf, n, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return PC_ERR_IO;
        buf += got;
        n -= (size_t)got;
        pos += (uint64_t)got;
    }
    return PC_OK;
}

/* Copies metadata record id (see pc_matcher.h). */
int pc_matcher_metadata_copy(const pc_matcher *m, uint32_t id, uint8_t *buf, size_t cap, size_t *len)
{
    uint64_t a, b;
    uint8_t ab[8];
    if (!m || !len || (cap && !buf))
        return PC_ERR_ARG;
    if (!m->loaded)
        return PC_ERR_STATE;
    if (id >= m->par[P_NMETA])
        return PC_ERR_ARG;
    if (m->fd < 0) {   /* loaded from memory: the record is right there */
        const uint8_t *p;
        size_t n;
        int rc = pc_matcher_metadata(m, id, &p, &n);
        if (rc < 0)
            return rc;
        *len = n;
        if (n > cap)
            return PC_ERR_LIMIT;
        if (n)
            memcpy(buf, p, n);
        return PC_OK;
    }
    if (pread_all(m->fd, ab, 8, m->moff_at + 4 * (uint64_t)id) < 0)
        return PC_ERR_IO;
    a = get32(ab);
    b = get32(ab + 4);
    if (a > b || b > m->secsz[S_MBLOB])
        return PC_ERR_CORRUPT;
    *len = (size_t)(b - a);
    if (b - a > cap)
        return PC_ERR_LIMIT;
    return pread_all(m->fd, buf, (size_t)(b - a), m->mblob_at + a);
}
