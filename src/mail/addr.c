#include "mail/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/str.h"

/* Where the parts of an address are, once validated. */
struct addr_parts {
	size_t local_len;   /* octets before the '@' (quotes included) */
	size_t domain_off;  /* offset of the domain */
	size_t domain_len;
	bool quoted;        /* the local part is a quoted-string */
};

static bool addr_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
addr_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* RFC 5322 atext. */
static bool
addr_is_atext(unsigned char c)
{
	if (isalnum(c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
addr_is_printable(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Dot-atom local part [s, s + n): non-empty atext runs separated by dots. */
static bool
addr_check_dot_atom(const char *s, size_t n, char *why, size_t whylen)
{
	if (n == 0)
		return addr_fail(why, whylen, "empty local part");
	if (s[0] == '.')
		return addr_fail(why, whylen, "local part starts with a dot");
	if (s[n - 1] == '.')
		return addr_fail(why, whylen, "local part ends with a dot");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return addr_fail(why, whylen,
				    "consecutive dots in local part");
			continue;
		}
		if (c >= 0x80)
			return addr_fail(why, whylen,
			    "non-ASCII character in local part");
		if (!addr_is_atext(c)) {
			if (addr_is_printable(c))
				return addr_fail(why, whylen,
				    "invalid character '%c' in local part "
				    "(quote it)", c);
			return addr_fail(why, whylen,
			    "control character in local part");
		}
	}
	return true;
}

static bool
addr_check_literal(const char *d, size_t n, char *why, size_t whylen)
{
	char ip[64];
	unsigned char bin[16];

	if (n < 3 || d[n - 1] != ']')
		return addr_fail(why, whylen, "unterminated address literal");
	if (n - 2 >= sizeof(ip))
		return addr_fail(why, whylen, "address literal too long");
	memcpy(ip, d + 1, n - 2);
	ip[n - 2] = '\0';
	if (strncasecmp(ip, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, ip + 5, bin) != 1)
			return addr_fail(why, whylen,
			    "invalid IPv6 address literal");
		return true;
	}
	if (inet_pton(AF_INET, ip, bin) != 1)
		return addr_fail(why, whylen, "invalid IPv4 address literal");
	return true;
}

static bool
addr_check_domain(const char *d, size_t n, char *why, size_t whylen)
{
	size_t label = 0, labels = 0, last_start = 0;
	bool last_numeric = true;

	if (n == 0)
		return addr_fail(why, whylen, "empty domain");
	if (n > ADDR_DOMAIN_MAX)
		return addr_fail(why, whylen, "domain too long (max %d)",
		    ADDR_DOMAIN_MAX);
	if (d[0] == '[')
		return addr_check_literal(d, n, why, whylen);
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)d[i] : '.';

		if (c == '.') {
			if (label == 0)
				return addr_fail(why, whylen,
				    "empty domain label");
			if (label > 63)
				return addr_fail(why, whylen,
				    "domain label too long (max 63)");
			if (d[last_start] == '-' || d[i - 1] == '-')
				return addr_fail(why, whylen,
				    "domain label starts or ends with a hyphen");
			labels++;
			label = 0;
			if (i < n) {
				last_start = i + 1;
				last_numeric = true;
			}
			continue;
		}
		if (c >= 0x80)
			return addr_fail(why, whylen,
			    "non-ASCII character in domain");
		if (!isalnum(c) && c != '-') {
			if (addr_is_printable(c))
				return addr_fail(why, whylen,
				    "invalid character '%c' in domain", c);
			return addr_fail(why, whylen,
			    "control character in domain");
		}
		if (!isdigit(c))
			last_numeric = false;
		label++;
	}
	if (labels < 2)
		return addr_fail(why, whylen, "domain has no dot");
	if (last_numeric)
		return addr_fail(why, whylen,
		    "numeric top-level domain (write an IP as [1.2.3.4])");
	return true;
}

/* Validate s and find its parts. */
static bool
addr_parse(const char *s, struct addr_parts *ap, char *why, size_t whylen)
{
	size_t len, i;

	if (s == NULL || *s == '\0')
		return addr_fail(why, whylen, "empty address");
	len = strlen(s);
	memset(ap, 0, sizeof(*ap));
	if (s[0] == '"') {
		ap->quoted = true;
		for (i = 1; i < len && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				i++;
				c = (unsigned char)s[i];
				if (i >= len)
					break;
			}
			if (c >= 0x80)
				return addr_fail(why, whylen,
				    "non-ASCII character in local part");
			if (!addr_is_printable(c))
				return addr_fail(why, whylen,
				    "control character in local part");
		}
		if (i >= len)
			return addr_fail(why, whylen,
			    "unterminated quoted local part");
		i++;
		if (s[i] != '@') {
			if (s[i] == '\0')
				return addr_fail(why, whylen, "missing @");
			return addr_fail(why, whylen,
			    "text after the quoted local part");
		}
		if (i == 2)
			return addr_fail(why, whylen, "empty local part");
	} else {
		const char *at = strrchr(s, '@');

		if (at == NULL)
			return addr_fail(why, whylen, "missing @");
		i = (size_t)(at - s);
		if (memchr(s, '@', i) != NULL)
			return addr_fail(why, whylen, "more than one @");
		if (!addr_check_dot_atom(s, i, why, whylen))
			return false;
	}
	if (i > ADDR_LOCAL_MAX)
		return addr_fail(why, whylen, "local part too long (max %d)",
		    ADDR_LOCAL_MAX);
	ap->local_len = i;
	ap->domain_off = i + 1;
	ap->domain_len = len - i - 1;
	if (!addr_check_domain(s + ap->domain_off, ap->domain_len, why, whylen))
		return false;
	if (len > ADDR_MAX)
		return addr_fail(why, whylen, "address too long (max %d)",
		    ADDR_MAX);
	return true;
}

bool
addr_is_valid(const char *s, char *why, size_t whylen)
{
	struct addr_parts ap;

	return addr_parse(s, &ap, why, whylen);
}

int
addr_split(const char *addr, char *local, size_t locallen, char *domain,
    size_t domainlen)
{
	struct addr_parts ap;

	if (!addr_parse(addr, &ap, NULL, 0))
		return -1;
	if (ap.local_len >= locallen || ap.domain_len >= domainlen)
		return -1;
	memcpy(local, addr, ap.local_len);
	local[ap.local_len] = '\0';
	memcpy(domain, addr + ap.domain_off, ap.domain_len);
	domain[ap.domain_len] = '\0';
	return 0;
}

int
addr_normalise(const char *in, char *out, size_t n)
{
	struct addr_parts ap;
	char local[ADDR_LOCAL_MAX + 1];
	size_t ll = 0, need;

	if (!addr_parse(in, &ap, NULL, 0))
		return -1;
	if (ap.quoted) {
		/* Unquote; keep the quotes if the content is no dot-atom. */
		for (size_t i = 1; i + 1 < ap.local_len; i++) {
			if (in[i] == '\\')
				i++;
			local[ll++] = in[i];
		}
		if (!addr_check_dot_atom(local, ll, NULL, 0)) {
			memcpy(local, in, ap.local_len);
			ll = ap.local_len;
		}
	} else {
		memcpy(local, in, ap.local_len);
		ll = ap.local_len;
	}
	local[ll] = '\0';
	need = ll + 1 + ap.domain_len;
	if (need >= n)
		return -1;
	memcpy(out, local, ll);
	out[ll] = '@';
	for (size_t i = 0; i < ap.domain_len; i++)
		out[ll + 1 + i] =
		    (char)tolower((unsigned char)in[ap.domain_off + i]);
	out[need] = '\0';
	return 0;
}
