/*
 * matcher_file.c - the compiled file: pc_matcher_save() writes the sections
 * as they are (with a header, a CRC and the metadata records),
 * pc_matcher_load() maps one read-only and validates every section before
 * any matching code sees it, pc_matcher_metadata() reads its records back.
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
    if (n_meta > UINT32_MAX - 1 || (n_meta && meta_off[0] != 0)) {
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
        pc_m_seterrbuf(errbuf, errlen, "out of memory");
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
    return load_image(out, copy, len, NULL, copy, errbuf, errlen);
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
    close(fd);
    if (map == MAP_FAILED) {
        pc_m_seterrbuf(errbuf, errlen, "%s: %s", path, strerror(errno));
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

