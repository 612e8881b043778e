/*
 * TEMPORARY scaffolding while the core is written in parallel: weak
 * definitions so the extension links before every module exists. Each real
 * module overrides these with strong definitions. Delete this file once
 * capture.c, app.c, dns.c, tls.c and quic.c are all in.
 */
#include "internal.h"

#define WEAK __attribute__((weak))

WEAK const char *pc_strerror(int status) { (void)status; return "not built yet"; }
WEAK void pc_limits_default(pc_limits *out) { memset(out, 0, sizeof *out); }
WEAK int pc_reader_open_file(pc_reader **out, const char *path, const pc_limits *limits, char *errbuf, size_t errlen)
{ (void)out; (void)path; (void)limits; if (errlen) { strncpy(errbuf, "capture core not built yet", errlen - 1); errbuf[errlen - 1] = 0; } return PC_ERR_STATE; }
WEAK int pc_reader_open_live(pc_reader **out, const char *iface, const char *bpf, const char *dump_path,
                             const pc_limits *limits, char *errbuf, size_t errlen)
{ (void)iface; (void)bpf; (void)dump_path; return pc_reader_open_file(out, NULL, limits, errbuf, errlen); }
WEAK int pc_reader_open_feed(pc_reader **out, const pc_limits *limits) { (void)out; (void)limits; return PC_ERR_STATE; }
WEAK int pc_reader_feed(pc_reader *r, int linktype, int64_t ts_ns, const uint8_t *data, size_t caplen, size_t wirelen)
{ (void)r; (void)linktype; (void)ts_ns; (void)data; (void)caplen; (void)wirelen; return PC_ERR_STATE; }
WEAK int pc_reader_finish(pc_reader *r) { (void)r; return PC_ERR_STATE; }
WEAK int pc_reader_next(pc_reader *r, pc_event *ev, size_t cap, uint8_t *strbuf, size_t strcap)
{ (void)r; (void)ev; (void)cap; (void)strbuf; (void)strcap; return PC_ERR_STATE; }
WEAK int pc_reader_status(const pc_reader *r) { (void)r; return PC_ERR_STATE; }
WEAK const char *pc_reader_error(const pc_reader *r) { (void)r; return ""; }
WEAK void pc_reader_stats(const pc_reader *r, pc_stats *out) { (void)r; memset(out, 0, sizeof *out); }
WEAK int pc_reader_linktype(const pc_reader *r) { (void)r; return -1; }
WEAK void pc_reader_stop(pc_reader *r) { (void)r; }
WEAK void pc_reader_free(pc_reader *r) { (void)r; }
WEAK int pc_emit(pc_ctx *cx, const pc_meta *m, const pc_out *o) { (void)cx; (void)m; (void)o; return PC_OK; }
WEAK void pc_count_malformed(pc_ctx *cx) { (void)cx; }
WEAK void pc_app_udp(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len)
{ (void)cx; (void)m; (void)app; (void)data; (void)len; }
WEAK void pc_app_udp_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app) { (void)cx; (void)m; (void)app; }
WEAK int pc_app_tcp(pc_ctx *cx, const pc_meta *m, pc_dirstate *ds, const uint8_t *data, size_t len, int final, size_t *consumed)
{ (void)cx; (void)m; (void)ds; (void)data; (void)final; *consumed = len; return PC_STREAM_DONE; }
WEAK void pc_dns_message(pc_ctx *cx, const pc_meta *m, const uint8_t *msg, size_t len) { (void)cx; (void)m; (void)msg; (void)len; }
WEAK int pc_tls_client_hello(pc_ctx *cx, const pc_meta *m, uint32_t kind, const uint8_t *hs, size_t len, int truncated)
{ (void)cx; (void)m; (void)kind; (void)hs; (void)len; (void)truncated; return PC_ERR_FORMAT; }
WEAK void pc_quic_datagram(pc_ctx *cx, const pc_meta *m, pc_udp_app **app, const uint8_t *data, size_t len)
{ (void)cx; (void)m; (void)app; (void)data; (void)len; }
WEAK void pc_quic_end(pc_ctx *cx, const pc_meta *m, pc_udp_app **app) { (void)cx; (void)m; (void)app; }
WEAK pc_ctx *pc_reader_ctx(pc_reader *r) { (void)r; return NULL; }
