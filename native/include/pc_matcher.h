/*
 * pc_matcher.h - the indicator matcher: domains, keywords, IP prefixes and
 * certificate fingerprints, matched in batches, saved to and mmap-loaded
 * from one compiled file.
 *
 * Lifecycle (as Suricata's and nDPI's multi-pattern matchers):
 *
 *     pc_matcher_new -> pc_matcher_add_* -> pc_matcher_prepare
 *         -> pc_matcher_match_* (any number of times) -> pc_matcher_free
 *
 * or pc_matcher_load (already prepared) -> match -> free. A call that is not
 * legal in the handle's state (adding after prepare, matching before it,
 * saving an unprepared matcher) returns PC_ERR_STATE and changes nothing.
 *
 * Pattern kinds and what a hit means:
 *  - domain "evil.com": the name itself or any subdomain, on a label
 *    boundary ("a.b.evil.com" hits; "notevil.com", "evil.com.au",
 *    "evil.comx", "evil-com.net" do not). When several domains hit one name
 *    they are all reported, the longest (most specific) first.
 *  - keyword "track": anywhere in a name, each id at most once per name.
 *    A name's domain hits come before its keyword hits.
 *  - IP prefix (IPv4 or IPv6 address, or CIDR prefix): every prefix that
 *    covers the address is reported, the longest first. An IPv4-mapped IPv6
 *    address (::ffff:a.b.c.d) is matched as the IPv4 address a.b.c.d.
 *  - certificate fingerprint: exact SHA-1 (20 bytes) or SHA-256 (32 bytes).
 * Several patterns may carry the same id, and one pattern may be added with
 * several ids; each (item, id) pair is reported once.
 *
 * How names are matched: one right-to-left pass over each name folds ASCII
 * case, drops one trailing dot without copying the name, hashes every
 * suffix and marks where the dots are, while its bytes drive an Aho-Corasick
 * automaton of the reversed keywords (a dense transition table over the byte
 * classes the keywords use); then every label-boundary suffix is looked up
 * in a hash table of the domain indicators (domain hits are anchored at the
 * end of the name, so an Aho-Corasick failure function would never be used
 * for them). A name longer
 * than 253 bytes (after the trailing dot is dropped), empty, or with an empty
 * label ("a..b", ".a") is rejected: no hits, counted in *rejected.
 *
 * Memory and ownership: the matcher is an opaque handle owned by the caller.
 * Batch calls read the caller's buffers and write hits into the caller's
 * array; the matcher keeps no pointer into caller memory after a call. C
 * stores integer ids only; the caller keeps what an id means (optionally in
 * the metadata section of the compiled file).
 *
 * The compiled file is little-endian, every section 8-byte aligned, with a
 * magic, a format version, a section table and a CRC-32 of everything after
 * the header. pc_matcher_load() checks the header, the CRC (read through a
 * small buffer, not the mapping), every section size and every index of
 * the small tables, so a damaged file gives PC_ERR_CORRUPT, never a crash;
 * the indexes of the domain table and of the metadata index (as large as the
 * set) are checked where they are read, so a file damaged behind a valid
 * CRC misses or reports PC_ERR_CORRUPT there, and never reads outside the
 * file. Loading maps the file read-only, builds nothing and touches only the
 * pages of the small tables: a 1 M-domain set costs the pages that matching
 * actually reads.
 */
#ifndef PC_MATCHER_H
#define PC_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "pocketcheck.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PC_MATCHER_MAX_NAME      253      /* longest name matched, without the trailing dot */
#define PC_MATCHER_FORMAT        2        /* version of the compiled file layout (2: sorted domain table, uint32 metadata index) */
#define PC_MATCHER_MAX_KW_STATES 1000000  /* bound on the keyword automaton (states) */
#define PC_MATCHER_MAX_KW_CELLS  16777216 /* ... and on its transition table (states x classes: 64 MB) */

/* One hit: the index of the item in the batch, and the indicator id. */
typedef struct pc_hit {
    uint32_t item;
    uint32_t id;
} pc_hit;

typedef struct pc_matcher_stats {
    uint64_t domains;        /* distinct domain patterns */
    uint64_t keywords;       /* distinct keyword patterns */
    uint64_t prefixes;       /* IP addresses and prefixes (as added) */
    uint64_t hashes;         /* fingerprints (as added) */
    uint64_t ids;            /* (pattern, id) pairs of every kind */
    uint64_t kw_states;      /* states of the keyword automaton */
    uint64_t kw_classes;     /* byte classes of the keyword automaton */
    uint64_t memory_bytes;   /* bytes of the prepared tables (heap or mapped file) */
    uint64_t meta_records;   /* records in the metadata section (loaded matchers) */
    uint64_t prepared;       /* 1 once prepared or loaded */
    uint64_t loaded;         /* 1 when the tables live in a mapped file */
} pc_matcher_stats;

typedef struct pc_matcher pc_matcher;

/*
 * Creates an empty matcher in the "adding" state. *out belongs to the
 * caller, who frees it with pc_matcher_free(). Returns PC_OK, PC_ERR_ARG
 * (out is NULL) or PC_ERR_NOMEM.
 */
int pc_matcher_new(pc_matcher **out);

/* Frees the matcher, its tables and its mapping. NULL is allowed. */
void pc_matcher_free(pc_matcher *m);

/*
 * Adds n domain indicators. Pattern i is buf[off[i] .. off[i+1]) (so off has
 * n+1 entries, non-decreasing) and carries ids[i]. Patterns are copied; case
 * is folded and one trailing dot dropped. Returns the number added (n), or
 * PC_ERR_ARG when a pattern is empty, longer than 253 bytes or has an empty
 * label (the patterns before it stay added; pc_matcher_error() names the
 * index of the bad one), PC_ERR_STATE after prepare, PC_ERR_NOMEM.
 */
int pc_matcher_add_domains(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                           const uint32_t *ids, size_t n);

/* Adds one domain indicator of len bytes; same rules and returns as above (1 on success). */
int pc_matcher_add_domain(pc_matcher *m, const char *s, size_t len, uint32_t id);

/*
 * Adds n keyword indicators, laid out as for pc_matcher_add_domains(). A
 * keyword is any non-empty byte string up to 253 bytes (ASCII case folded).
 * Same returns.
 */
int pc_matcher_add_keywords(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                            const uint32_t *ids, size_t n);

/* Adds one keyword indicator; same rules and returns (1 on success). */
int pc_matcher_add_keyword(pc_matcher *m, const char *s, size_t len, uint32_t id);

/*
 * Adds n IP prefixes. Prefix i is addrs[16*i .. 16*i+16) in network order
 * (IPv4 in the first 4 bytes), of versions[i] (4 or 6) and prefix length
 * plens[i] (0..32 or 0..128; a full length is a single address). Host bits
 * beyond the prefix are ignored. PC_ERR_ARG on a bad version or length.
 * An IPv4-mapped IPv6 prefix of length >= 96 is stored as IPv4.
 */
int pc_matcher_add_ips(pc_matcher *m, const uint8_t *addrs, const uint8_t *versions,
                       const uint8_t *plens, const uint32_t *ids, size_t n);

/*
 * Adds n certificate fingerprints: digest i is buf[off[i] .. off[i+1]) and
 * must be 20 (SHA-1) or 32 (SHA-256) bytes, else PC_ERR_ARG.
 */
int pc_matcher_add_hashes(pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                          const uint32_t *ids, size_t n);

/*
 * Builds the tables from everything added and frees the staging copies.
 * After it, adding is PC_ERR_STATE and matching is legal. Returns PC_OK,
 * PC_ERR_STATE (already prepared), PC_ERR_LIMIT (the keyword automaton would
 * exceed PC_MATCHER_MAX_KW_STATES or _CELLS) or PC_ERR_NOMEM (the matcher stays in the
 * adding state; prepare may be retried).
 */
int pc_matcher_prepare(pc_matcher *m);

/*
 * Matches names buf[off[i] .. off[i+1]) for i from *next to n-1 and writes
 * at most cap hits into hits (item = i). All hits of one name are written
 * together: when the next name's hits do not fit, the call stops and *next
 * is that name's index, so the caller drains hits and calls again until
 * *next == n. Returns the number of hits written (>= 0), PC_ERR_STATE before
 * prepare, PC_ERR_ARG on NULL pointers or *next > n, or PC_ERR_LIMIT when a
 * single name has more hits than cap (nothing written; retry with a larger
 * array). When rejected is not NULL, the number of names rejected (too long,
 * empty labels) during this call is added to *rejected.
 */
int pc_matcher_match_names(const pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                           size_t n, size_t *next, pc_hit *hits, size_t cap,
                           uint64_t *rejected);

/*
 * Matches the lines of buf[0 .. len): names separated by '\n' (a last line
 * without one counts; nothing else is stripped), the bulk path of
 * `pocketcheck match`, with no offsets array to build. A hit's item is the
 * byte offset of its line's start; *next is a byte offset (a line start,
 * 0 to begin) and the call is done when *next == len. Returns, resumes and
 * fails as pc_matcher_match_names(); PC_ERR_ARG also when len > 2^32 - 1.
 */
int pc_matcher_match_lines(const pc_matcher *m, const uint8_t *buf, size_t len, size_t *next,
                           pc_hit *hits, size_t cap, uint64_t *rejected);

/*
 * Matches n addresses: addrs[16*i ..] of versions[i] (4 or 6; anything else
 * matches nothing). Resumes, returns and fails exactly as
 * pc_matcher_match_names().
 */
int pc_matcher_match_ips(const pc_matcher *m, const uint8_t *addrs, const uint8_t *versions,
                         size_t n, size_t *next, pc_hit *hits, size_t cap);

/*
 * Matches n digests buf[off[i] .. off[i+1]) (other lengths than 20 and 32
 * match nothing). Resumes, returns and fails as pc_matcher_match_names().
 */
int pc_matcher_match_hashes(const pc_matcher *m, const uint8_t *buf, const uint32_t *off,
                            size_t n, size_t *next, pc_hit *hits, size_t cap);

/*
 * Writes the prepared matcher to path (through path.tmp and a rename, so a
 * reader never sees half a file), with an opaque metadata section: n_meta
 * records, record i being meta[meta_off[i] .. meta_off[i+1]). meta may be
 * NULL when n_meta is 0. Returns PC_OK, PC_ERR_STATE (not prepared),
 * PC_ERR_ARG (also: more than 4 GiB of metadata), PC_ERR_IO (errbuf says
 * what; errlen bytes, NUL-terminated).
 */
int pc_matcher_save(const pc_matcher *m, const char *path, const uint8_t *meta,
                    const uint64_t *meta_off, size_t n_meta, char *errbuf, size_t errlen);

/*
 * Maps a compiled file read-only and returns a prepared matcher in *out
 * (the caller's, freed by pc_matcher_free()). Verifies magic, version,
 * section table, checksum and every index. Returns PC_OK, PC_ERR_OPEN (no
 * such file, unreadable), PC_ERR_CORRUPT (damaged, truncated, another format
 * version, or a big-endian host), PC_ERR_NOMEM; errbuf gets a one-line reason.
 */
int pc_matcher_load(pc_matcher **out, const char *path, char *errbuf, size_t errlen);

/*
 * As pc_matcher_load() from len bytes in memory, which are copied (tests
 * and the fuzz harness).
 */
int pc_matcher_load_mem(pc_matcher **out, const uint8_t *data, size_t len,
                        char *errbuf, size_t errlen);

/*
 * Points *data at metadata record id of a loaded matcher and sets *len. The
 * pointer is into the matcher's mapping: valid until pc_matcher_free(); the
 * caller copies it. Returns PC_OK, PC_ERR_ARG (no such record),
 * PC_ERR_STATE (the matcher was not loaded from a file) or PC_ERR_CORRUPT
 * (the record's index entry is damaged).
 */
int pc_matcher_metadata(const pc_matcher *m, uint32_t id, const uint8_t **data, size_t *len);

/*
 * Copies metadata record id of a loaded matcher into buf (cap bytes) and
 * sets *len to its size. A matcher loaded from a file reads the record with
 * pread() from the file it mapped (kept open), not through the mapping: a
 * few thousand hits spread over a million records then leave those pages in
 * the page cache instead of making them resident in the process. Returns
 * PC_OK, PC_ERR_LIMIT (cap is too small; *len says how much is needed),
 * PC_ERR_ARG (no such record), PC_ERR_STATE (not loaded), PC_ERR_CORRUPT
 * (the record's index entry is damaged) or PC_ERR_IO.
 */
int pc_matcher_metadata_copy(const pc_matcher *m, uint32_t id, uint8_t *buf, size_t cap, size_t *len);

/* Fills the counters and the memory use of the matcher. */
void pc_matcher_stats_get(const pc_matcher *m, pc_matcher_stats *out);

/* A one-line description of the matcher's last failure ("" if none). */
const char *pc_matcher_error(const pc_matcher *m);

#ifdef __cplusplus
}
#endif
#endif
