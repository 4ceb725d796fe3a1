/*
 * A tiny libsrtp2 driver for relais-srtp's interop tests (compiled by
 * tests/libsrtp_interop.rs at test time).
 *
 * usage: libsrtp_helper <cm|gcm> <hex master key || master salt>
 *
 * Keeps two libsrtp sessions keyed alike: one outbound (protect), one inbound
 * (unprotect, replay window 128). Reads lines "<op> <hex packet>" from stdin, with op one
 * of rtp-protect, rtp-unprotect, rtcp-protect, rtcp-unprotect, and answers each with
 * "ok <hex packet>" or "err <libsrtp status>" on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <srtp2/srtp.h>

#define MAX_PACKET 4096

static int nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex up to the first non-hex character; -1 on odd length or overflow. */
static int unhex(const char *s, unsigned char *out, int max)
{
    int n = 0;
    while (nibble(s[0]) >= 0) {
        if (nibble(s[1]) < 0 || n >= max) return -1;
        out[n++] = (unsigned char)(nibble(s[0]) << 4 | nibble(s[1]));
        s += 2;
    }
    return n;
}

static void puthex(const unsigned char *b, int n)
{
    for (int i = 0; i < n; i++) printf("%02x", b[i]);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <cm|gcm> <hex key||salt>\n", argv[0]);
        return 2;
    }
    unsigned char key[64];
    int key_len = unhex(argv[2], key, (int)sizeof key);

    srtp_err_status_t st = srtp_init();
    if (st != srtp_err_status_ok) {
        fprintf(stderr, "srtp_init: %d\n", st);
        return 1;
    }

    srtp_policy_t tx, rx;
    memset(&tx, 0, sizeof tx);
    if (strcmp(argv[1], "gcm") == 0) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&tx.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&tx.rtcp);
    } else if (strcmp(argv[1], "cm") == 0) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&tx.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&tx.rtcp);
    } else {
        fprintf(stderr, "unknown profile %s\n", argv[1]);
        return 2;
    }
    if (key_len != tx.rtp.cipher_key_len) {
        fprintf(stderr, "key||salt is %d bytes, profile needs %d\n", key_len,
                tx.rtp.cipher_key_len);
        return 2;
    }
    tx.ssrc.type = ssrc_any_outbound;
    tx.key = key;
    tx.window_size = 128;
    tx.allow_repeat_tx = 0;
    tx.next = NULL;
    rx = tx;
    rx.ssrc.type = ssrc_any_inbound;

    srtp_t tx_session, rx_session;
    if ((st = srtp_create(&tx_session, &tx)) != srtp_err_status_ok ||
        (st = srtp_create(&rx_session, &rx)) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create: %d\n", st);
        return 1;
    }

    static char line[4 * MAX_PACKET];
    static unsigned char buf[MAX_PACKET + SRTP_MAX_TRAILER_LEN];
    while (fgets(line, sizeof line, stdin)) {
        char *arg = strchr(line, ' ');
        if (arg == NULL) {
            printf("err parse\n");
            fflush(stdout);
            continue;
        }
        *arg++ = '\0';
        int len = unhex(arg, buf, MAX_PACKET);
        if (len < 0) {
            printf("err hex\n");
        } else {
            if (strcmp(line, "rtp-protect") == 0)
                st = srtp_protect(tx_session, buf, &len);
            else if (strcmp(line, "rtp-unprotect") == 0)
                st = srtp_unprotect(rx_session, buf, &len);
            else if (strcmp(line, "rtcp-protect") == 0)
                st = srtp_protect_rtcp(tx_session, buf, &len);
            else if (strcmp(line, "rtcp-unprotect") == 0)
                st = srtp_unprotect_rtcp(rx_session, buf, &len);
            else
                st = srtp_err_status_bad_param;
            if (st == srtp_err_status_ok) {
                printf("ok ");
                puthex(buf, len);
                printf("\n");
            } else {
                printf("err %d\n", st);
            }
        }
        fflush(stdout);
    }

    srtp_dealloc(tx_session);
    srtp_dealloc(rx_session);
    srtp_shutdown();
    return 0;
}
