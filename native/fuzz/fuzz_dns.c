/*
 * fuzz_dns.c - libFuzzer harness for the DNS-format parsers and the UDP
 * dispatch: the first byte picks DNS (pc_dns_message), mDNS, LLMNR, DHCP,
 * SSDP or DNS over TCP (chunked by the second byte); the rest is the payload.
 */
#include "fuzz_common_parsers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t ports[5] = { 53, 5353, 5355, 67, 1900 };
    uint8_t *copy;
    size_t n;
    unsigned mode;

    if (size < 2)
        return 0;
    fz_init();
    mode = data[0] % 7;
    n = size - 2;
    copy = fz_copy(data + 2, n);
    if (!copy)
        return 0;
    if (mode == 0) {
        pc_meta m = h_meta(17, 40000, 53, data[1] & 1);
        m.truncated = (data[1] >> 1) & 1;
        pc_dns_message(fz_cx, &m, copy, n);
    } else if (mode <= 5) {
        pc_meta m = h_meta(17, (data[1] & 1) ? 68 : 40000, ports[mode - 1], 1);
        pc_udp_app *app = NULL;
        pc_app_udp(fz_cx, &m, &app, copy, n);
        pc_app_udp_end(fz_cx, &m, &app);
    } else {
        pc_meta m = h_meta(6, 40000, 53, data[1] & 1);
        fz_stream((data[1] & 2) ? pc_dns_tcp : pc_app_tcp, &m, copy, n, (size_t)(data[1] >> 2) + 1);
    }
    free(copy);
    fz_drain();
    return 0;
}
