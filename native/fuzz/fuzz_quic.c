/*
 * fuzz_quic.c - libFuzzer harness for quic.c: several datagrams of one UDP
 * flow, then the end of the flow, through a real feed reader's engine.
 *
 * Input: records of [flags:1][length:2 big-endian][bytes]. flags bit 0: the
 * datagram comes from the server; bit 1: the capture cut it (meta
 * truncated); bit 7: the bytes are not a datagram but the plaintext frames
 * of a client Initial, which the harness protects itself (QUIC v1, or v2
 * when bit 6 is set, fixed DCID, packet number = record index) - random
 * ciphertext never passes the AEAD tag, so this is how the fuzzer reaches
 * the frame parser and the CRYPTO reassembly. Seeds in
 * native/fuzz/corpus/fuzz_quic/ are real UDP payloads from the shared
 * captures in this format.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "parsers.h"
#include "reader.h"

int pc_quic_client_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                        uint8_t key[16], uint8_t iv[12], uint8_t hp[16]);

static const uint8_t DCID[8] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };

/* Builds a protected client Initial around payload; returns its length (0 on failure). */
static size_t protect(uint32_t version, uint32_t pn, const uint8_t *payload, size_t plen,
                      uint8_t *out)
{
    uint8_t key[16], iv[12], hp[16], nonce[12], mask[16];
    size_t h = 0, pn_off, i, len_field = 4 + plen + 16;
    EVP_CIPHER_CTX *c = NULL;
    int outl = 0;
    size_t rc = 0;

    if (pc_quic_client_keys(version, DCID, 8, key, iv, hp) < 0)
        goto fail;
    out[h++] = (uint8_t)(0xc0 | ((version == 1 ? 0 : 1) << 4) | 0x03);
    out[h++] = (uint8_t)(version >> 24);
    out[h++] = (uint8_t)(version >> 16);
    out[h++] = (uint8_t)(version >> 8);
    out[h++] = (uint8_t)version;
    out[h++] = 8;
    memcpy(out + h, DCID, 8);
    h += 8;
    out[h++] = 0;
    out[h++] = 0;
    out[h++] = (uint8_t)(0x40 | (len_field >> 8));
    out[h++] = (uint8_t)len_field;
    pn_off = h;
    for (i = 0; i < 4; i++)
        out[h++] = (uint8_t)(pn >> (24 - 8 * i));
    memcpy(nonce, iv, 12);
    for (i = 0; i < 4; i++)
        nonce[8 + i] ^= (uint8_t)(pn >> (24 - 8 * i));
    c = EVP_CIPHER_CTX_new();
    if (c == NULL
        || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) != 1
        || EVP_EncryptUpdate(c, NULL, &outl, out, (int)h) != 1
        || (plen && EVP_EncryptUpdate(c, out + h, &outl, payload, (int)plen) != 1)
        || EVP_EncryptFinal_ex(c, out + h + plen, &outl) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + h + plen) != 1)
        goto fail;
    EVP_CIPHER_CTX_free(c);
    c = EVP_CIPHER_CTX_new();
    if (c == NULL
        || EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) != 1
        || EVP_EncryptUpdate(c, mask, &outl, out + pn_off + 4, 16) != 1)
        goto fail;
    out[0] ^= mask[0] & 0x0f;
    for (i = 0; i < 4; i++)
        out[pn_off + i] ^= mask[1 + i];
    rc = h + plen + 16;
fail:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pkt[70000];
    pc_reader *r = NULL;
    pc_ctx *cx;
    pc_udp_app *app = NULL;
    pc_meta m;
    pc_event ev[32];
    uint8_t sb[4096];
    size_t pos = 0;
    uint32_t idx = 0;

    if (pc_reader_open_feed(&r, NULL) != PC_OK)
        return 0;
    cx = pc_reader_ctx(r);
    memset(&m, 0, sizeof m);
    m.flow_id = 1;
    m.ipver = 4;
    m.proto = 17;
    m.sport = 50000;
    m.dport = 443;
    while (cx != NULL && size - pos >= 3) {
        uint8_t flags = data[pos];
        size_t len = pc_rd16(data + pos + 1);

        pos += 3;
        if (len > size - pos)
            len = size - pos;
        m.frame = ++idx;
        m.from_client = !(flags & 1);
        m.truncated = (flags >> 1) & 1;
        if (flags & 0x80) {
            /* A short plaintext still needs 20 bytes after the packet number for the sample. */
            uint8_t plain[1500];
            size_t pl = len < sizeof plain ? len : sizeof plain, n;

            memcpy(plain, data + pos, pl);
            if (pl < 20) {
                memset(plain + pl, 0, 20 - pl);
                pl = 20;
            }
            n = protect((flags & 0x40) ? 0x6b3343cfu : 1u, idx, plain, pl, pkt);
            if (n)
                pc_quic_datagram(cx, &m, &app, pkt, n);
        } else if (len > 0 && (data[pos] & 0x80)) {
            /* Copy to an exact-size heap block so ASan sees any read past the end. */
            uint8_t *d = pc_malloc(len);
            if (d != NULL) {
                memcpy(d, data + pos, len);
                pc_quic_datagram(cx, &m, &app, d, len);
                pc_free(d);
            }
        }
        pos += len;
    }
    if (cx != NULL)
        pc_quic_end(cx, &m, &app);
    pc_reader_finish(r);
    while (pc_reader_next(r, ev, 32, sb, sizeof sb) > 0)
        ;
    pc_reader_free(r);
    return 0;
}
