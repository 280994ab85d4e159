/*
 * addr: email addresses as list members and envelope recipients.
 *
 * An address is an RFC 5321 mailbox: a dot-atom or quoted-string local part
 * of at most 64 octets, "@", and a domain of at most 255 octets made of LDH
 * labels (1-63 octets, no leading or trailing hyphen, at least two labels,
 * not all-numeric at the top) or an address literal [IPv4] / [IPv6:...].
 * The whole address is at most 254 octets. Only ASCII is accepted (no
 * SMTPUTF8 yet). Nothing is allocated: callers own every buffer passed in.
 */
#ifndef SLUICE_MAIL_ADDR_H
#define SLUICE_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_MAX 254        /* octets of a whole address */
#define ADDR_LOCAL_MAX 64   /* octets of the local part */
#define ADDR_DOMAIN_MAX 255 /* octets of the domain */

/*
 * True if s is a valid address. Otherwise false, with a short reason such
 * as "missing @" or "domain label too long (max 63)" in why (if non-NULL).
 */
bool addr_is_valid(const char *s, char *why, size_t whylen);

/*
 * Split a valid address into its local part (as written, quotes included)
 * and its domain (as written). 0, or -1 if invalid or a buffer is too small.
 */
int addr_split(const char *addr, char *local, size_t locallen, char *domain,
    size_t domainlen);

/*
 * The canonical form of an address into out (size n): the domain in lower
 * case, a quoted local part that needs no quotes unquoted; the local part's
 * case is kept. 0, or -1 if invalid or out is too small.
 */
int addr_normalise(const char *in, char *out, size_t n);

#endif
