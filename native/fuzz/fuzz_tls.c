/*
 * fuzz_tls.c - libFuzzer harness for the TLS parsers (and HTTP, which shares
 * the TCP dispatch): the first byte picks pc_tls_client_hello on the raw
 * bytes (TCP or QUIC kind, cut or not), the client or the server side of a
 * TLS stream, or an HTTP / SOCKS / tunnelled stream through the dispatcher;
 * the second byte sets the chunk size the stream is cut into (and, for the
 * last mode, the port and the side).
 */
#include "fuzz_common_parsers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    size_t n, step;
    unsigned mode;

    if (size < 2)
        return 0;
    fz_init();
    mode = data[0] % 4;
    step = (size_t)data[1] * 3 + 1;
    n = size - 2;
    copy = fz_copy(data + 2, n);
    if (!copy)
        return 0;
    if (mode == 0) {
        pc_meta m = h_meta(17, 40000, 443, 1);
        pc_hello h;
        char ja4[37], raw[8192];
        pc_tls_client_hello(fz_cx, &m, (data[1] & 1) ? PC_EV_QUIC_SNI : PC_EV_TLS_SNI, copy, n, (data[1] >> 1) & 1);
        if (pc_hello_parse(copy, n, &h) == PC_OK)
            pc_ja4(&h, 't', ja4, raw, (size_t)data[1] * 32);
    } else if (mode == 1 || mode == 2) {
        pc_meta m = h_meta(6, 40000, 443, mode == 1);
        fz_stream(pc_tls_stream, &m, copy, n, step);
    } else {
        /* HTTP directly, or the whole dispatch (HTTP, CONNECT, SOCKS on 1080,
         * TLS inside tunnels) on either side */
        pc_meta m = h_meta(6, 40000, (data[1] & 2) ? 1080 : 80, (data[1] & 4) ? 0 : 1);
        fz_stream((data[1] & 1) ? pc_http_stream : pc_app_tcp, &m, copy, n, (size_t)(data[1] >> 3) + 1);
    }
    free(copy);
    fz_drain();
    return 0;
}
