#include "mail/verp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/log.h"
#include "util/str.h"

#define VERP_PREFIX "b-"
#define VERP_ID_DIGITS 19
#define VERP_KEYFILE_MAX 512

static const char verp_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static bool
verp_key_ok(const unsigned char *key, size_t keylen)
{
	return key != NULL && keylen >= VERP_KEY_MIN && keylen <= VERP_KEY_MAX;
}

/* The MAC of (mailing, member) as VERP_MAC_CHARS base32 characters. */
static int
verp_mac(const unsigned char *key, size_t keylen, int64_t mailing,
    int64_t member, char mac[VERP_MAC_CHARS + 1])
{
	char msg[64];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t bits = 0;
	int n;

	n = snprintf(msg, sizeof(msg), "%" PRId64 "-%" PRId64, mailing, member);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    (size_t)n, md, &mdlen) == NULL || mdlen < 8)
		return -1;
	for (int i = 0; i < 8; i++)
		bits = (bits << 8) | md[i];
	for (int i = 0; i < VERP_MAC_CHARS; i++)
		mac[i] = verp_b32[(bits >> (64 - 5 * (i + 1))) & 31];
	mac[VERP_MAC_CHARS] = '\0';
	return 0;
}

int
verp_encode(const unsigned char *key, size_t keylen,
    const char *bounce_domain, int64_t mailing, int64_t member, char *out,
    size_t n)
{
	char mac[VERP_MAC_CHARS + 1];
	int r;

	if (!verp_key_ok(key, keylen) || bounce_domain == NULL ||
	    *bounce_domain == '\0' || mailing < 0 || member < 0)
		return VERP_ERR_ARG;
	if (verp_mac(key, keylen, mailing, member, mac) < 0)
		return VERP_ERR_ARG;
	r = snprintf(out, n, VERP_PREFIX "%" PRId64 "-%" PRId64 "-%s@%s",
	    mailing, member, mac, bounce_domain);
	if (r < 0 || (size_t)r >= n)
		return VERP_ERR_ARG;
	return 0;
}

/* Parse a run of decimal digits at *p up to '-' into *id; advance *p. */
static int
verp_parse_id(const char **p, int64_t *id)
{
	char digits[VERP_ID_DIGITS + 1];
	size_t n = 0;
	const char *s = *p;

	while (isdigit((unsigned char)s[n])) {
		if (n >= VERP_ID_DIGITS)
			return -1;
		digits[n] = s[n];
		n++;
	}
	if (n == 0 || s[n] != '-')
		return -1;
	if (n > 1 && digits[0] == '0')
		return -1; /* one spelling per id */
	digits[n] = '\0';
	if (str_to_i64(digits, 0, INT64_MAX, id) < 0)
		return -1;
	*p = s + n + 1;
	return 0;
}

int
verp_decode(const unsigned char *key, size_t keylen, const char *addr,
    int64_t *mailing, int64_t *member)
{
	char got[VERP_MAC_CHARS + 1], want[VERP_MAC_CHARS + 1];
	const char *p = addr;
	int64_t ml, mb;

	if (!verp_key_ok(key, keylen) || addr == NULL)
		return VERP_ERR_FORMAT;
	if (strncasecmp(p, VERP_PREFIX, strlen(VERP_PREFIX)) != 0)
		return VERP_ERR_FORMAT;
	p += strlen(VERP_PREFIX);
	if (verp_parse_id(&p, &ml) < 0 || verp_parse_id(&p, &mb) < 0)
		return VERP_ERR_FORMAT;
	for (int i = 0; i < VERP_MAC_CHARS; i++) {
		char c = (char)tolower((unsigned char)p[i]);

		if (c == '\0' || strchr(verp_b32, c) == NULL)
			return VERP_ERR_FORMAT;
		got[i] = c;
	}
	got[VERP_MAC_CHARS] = '\0';
	p += VERP_MAC_CHARS;
	if (*p != '@' || p[1] == '\0')
		return VERP_ERR_FORMAT;
	if (verp_mac(key, keylen, ml, mb, want) < 0)
		return VERP_ERR_FORMAT;
	if (CRYPTO_memcmp(got, want, VERP_MAC_CHARS) != 0)
		return VERP_ERR_MAC;
	*mailing = ml;
	*member = mb;
	return 0;
}

static int verp_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
verp_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
verp_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
verp_key_read(int fd, const char *path, unsigned char *key, size_t *keylen,
    char *err, size_t errlen)
{
	char text[VERP_KEYFILE_MAX + 1];
	size_t len = 0, n = 0;
	const char *s;
	struct stat sb;

	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0)
		log_warn("verp", "event=key_file_mode path=%s mode=%o "
		    "msg=\"readable by others; chmod 600\"", path,
		    (unsigned)(sb.st_mode & 0777));
	for (;;) {
		ssize_t r = read(fd, text + len, sizeof(text) - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return verp_err(err, errlen, "%s: %s", path,
			    strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
		if (len >= sizeof(text) - 1)
			return verp_err(err, errlen, "%s: key file too large",
			    path);
	}
	text[len] = '\0';
	s = str_trim(text);
	if (strlen(s) % 2 != 0)
		return verp_err(err, errlen,
		    "%s: key is not an even number of hex digits", path);
	for (; *s; s += 2) {
		int hi = verp_hexval(s[0]), lo = verp_hexval(s[1]);

		if (hi < 0 || lo < 0)
			return verp_err(err, errlen, "%s: key is not hex", path);
		if (n >= VERP_KEY_MAX || n >= *keylen)
			return verp_err(err, errlen,
			    "%s: key longer than %d bytes", path, VERP_KEY_MAX);
		key[n++] = (unsigned char)(hi << 4 | lo);
	}
	if (n < VERP_KEY_MIN)
		return verp_err(err, errlen, "%s: key shorter than %d bytes",
		    path, VERP_KEY_MIN);
	*keylen = n;
	return 0;
}

static int
verp_key_create(int fd, const char *path, unsigned char *key,
    size_t *keylen, char *err, size_t errlen)
{
	char hex[VERP_KEY_NEW * 2 + 2];
	size_t got = 0, off = 0;

	while (got < VERP_KEY_NEW) {
		ssize_t r = getrandom(key + got, VERP_KEY_NEW - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return verp_err(err, errlen, "%s: getrandom: %s", path,
			    strerror(errno));
		got += (size_t)r;
	}
	for (size_t i = 0; i < VERP_KEY_NEW; i++) {
		hex[2 * i] = "0123456789abcdef"[key[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[key[i] & 15];
	}
	hex[VERP_KEY_NEW * 2] = '\n';
	while (off < VERP_KEY_NEW * 2 + 1) {
		ssize_t r = write(fd, hex + off, VERP_KEY_NEW * 2 + 1 - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return verp_err(err, errlen, "%s: write: %s", path,
			    strerror(errno));
		off += (size_t)r;
	}
	if (fsync(fd) < 0)
		return verp_err(err, errlen, "%s: fsync: %s", path,
		    strerror(errno));
	*keylen = VERP_KEY_NEW;
	log_info("verp", "event=key_created path=%s", path);
	return 0;
}

int
verp_key_load_or_create(const char *path, unsigned char *key,
    size_t *keylen, char *err, size_t errlen)
{
	int fd, r;

	if (*keylen < VERP_KEY_MAX)
		return verp_err(err, errlen, "%s: key buffer too small", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		goto read_existing;
	if (errno != ENOENT)
		return verp_err(err, errlen, "%s: %s", path, strerror(errno));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Someone created it between our two opens: read theirs. */
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			goto read_existing;
	}
	if (fd < 0)
		return verp_err(err, errlen, "%s: %s", path, strerror(errno));
	r = verp_key_create(fd, path, key, keylen, err, errlen);
	close(fd);
	if (r < 0)
		unlink(path);
	return r;

read_existing:
	r = verp_key_read(fd, path, key, keylen, err, errlen);
	close(fd);
	return r;
}
