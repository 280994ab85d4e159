/*
 * verp: the envelope sender of each message (DESIGN 5.6). A VERP address
 * on the bounce domain encodes the mailing and the member and carries a
 * truncated HMAC-SHA256, so a bounce can be tied to its recipient and a
 * forged one refused:
 *
 *   b-<mailing>-<member>-<mac>@<bounce domain>
 *
 * where <mac> is 10 base32 characters (50 bits) of
 * HMAC-SHA256(key, "<mailing>-<member>"). Decoding ignores the case of the
 * local part (some MTAs lower-case it) and does not look at the domain:
 * the inbound listener checks its own domains. The key is 16-64 bytes,
 * owned by the caller; verp_key_load_or_create() keeps it in a file.
 */
#ifndef SLUICE_MAIL_VERP_H
#define SLUICE_MAIL_VERP_H

#include <stddef.h>
#include <stdint.h>

#define VERP_KEY_MIN 16
#define VERP_KEY_MAX 64
#define VERP_KEY_NEW 32 /* bytes of a newly created key */
#define VERP_MAC_CHARS 10

enum verp_error {
	VERP_ERR_FORMAT = -1, /* not a VERP address of ours (or malformed) */
	VERP_ERR_MAC = -2,    /* the right shape, but the MAC does not match */
	VERP_ERR_ARG = -3     /* bad key, id or output buffer */
};

/*
 * Write the VERP address for (mailing, member) into out (size n). Ids are
 * >= 0. 0, or VERP_ERR_ARG if an argument is invalid or out is too small.
 */
int verp_encode(const unsigned char *key, size_t keylen,
    const char *bounce_domain, int64_t mailing, int64_t member, char *out,
    size_t n);

/*
 * Check a VERP address and return its ids. 0 if valid; VERP_ERR_FORMAT if
 * it is not one of ours, VERP_ERR_MAC if its MAC is wrong (constant-time
 * compare). The ids are written only on success.
 */
int verp_decode(const unsigned char *key, size_t keylen, const char *addr,
    int64_t *mailing, int64_t *member);

/*
 * Read the key from path (hex, 16-64 bytes, surrounding white space
 * ignored). If the file does not exist, create it (mode 0600) holding
 * VERP_KEY_NEW random bytes from getrandom(). *keylen is the size of key
 * on entry (at least VERP_KEY_MAX) and the key's length on return.
 * 0, or -1 with a message naming the file in err.
 */
int verp_key_load_or_create(const char *path, unsigned char *key,
    size_t *keylen, char *err, size_t errlen);

#endif
