/*
 * dns: asynchronous resolution of mail delivery targets, on a libevent
 * event_base, with c-ares underneath and a TTL cache on top.
 *
 *   dns_resolve_mx("example.org")  -> MX hosts by preference, each with its
 *                                     IPv4 then IPv6 addresses
 *   dns_resolve_host("mx.example") -> one host with its addresses
 *
 * Outcomes (enum dns_status):
 *   DNS_OK        at least one host with at least one address.
 *   DNS_NXDOMAIN  the domain (or host) does not exist: permanent.
 *   DNS_NULLMX    the domain publishes a null MX (RFC 7505): permanent.
 *   DNS_NOHOSTS   MX hosts exist but every one answered authoritatively
 *                 with no address (NXDOMAIN or NODATA), or the domain has
 *                 neither MX nor A/AAAA: permanent.
 *   DNS_INVALID   the name is not a valid domain name: permanent, no query.
 *   DNS_TEMPFAIL  SERVFAIL, REFUSED, timeout, malformed answer, or no MX
 *                 host resolved and at least one failed temporarily.
 *   DNS_CANCELLED dns_free() ran before the answer came.
 *
 * Resolution rules:
 *   - MX records are sorted by preference; equal preferences keep the order
 *     of the answer (stable: spreading load over equal MX hosts is the
 *     scheduler's job, it sees every address). At most DNS_MAX_HOSTS hosts,
 *     each with at most DNS_MAX_ADDRS addresses (IPv4 first, IPv6 fill up).
 *     Duplicate hosts and "." hosts mixed with real ones are dropped.
 *   - No MX (NODATA) -> implicit MX: the domain itself, preference 0.
 *   - Every MX record with target "." -> DNS_NULLMX.
 *   - An MX host that does not resolve is left out. If some hosts resolved
 *     and some failed temporarily, the result is DNS_OK but is cached only
 *     for DNS_TEMPFAIL_TTL.
 *   - CNAME chains in answers are followed (up to 8 links).
 *   - IP literals given to dns_resolve_host ("192.0.2.1", "::1",
 *     "[192.0.2.1]", "[IPv6:::1]") and IP literals met as MX targets are
 *     answered without a query.
 *
 * Cache: results are cached by (kind, lower-cased name) until `expires`:
 * positive answers for the smallest TTL of the records used (MX, CNAME,
 * A, AAAA) clamped to [DNS_TTL_MIN, DNS_TTL_MAX] seconds; negative answers
 * for the SOA minimum (RFC 2308: min(SOA TTL, MINIMUM)), clamped likewise,
 * or DNS_NEG_TTL_DEFAULT without SOA; temporary failures for
 * DNS_TEMPFAIL_TTL. DNS_INVALID is never cached. At most cache_max entries:
 * when full the oldest inserted entry is evicted; expired entries are
 * dropped when met. cache_max 0 disables the cache. `now` is the caller's
 * wall clock (util/timeutil.h), so expiry is testable.
 *
 * Coalescing: a lookup asked while the same (kind, name) is in flight joins
 * it: one set of queries, every callback called with the result.
 *
 * Callback contract (libuv-like): if dns_resolve_* returns an error (< 0)
 * the callback is never called; otherwise it is called exactly once, and
 * ALWAYS from the event loop, never from inside dns_resolve_* (cache hits
 * and invalid names too), so callers do not re-enter. The result pointer
 * is valid only during the callback; copy what you keep (struct
 * dns_result is a plain value type and may be copied whole).
 * A callback may call dns_resolve_* and may call dns_free().
 *
 * dns_free() with lookups outstanding (in flight, or answered but not yet
 * delivered) calls each of their callbacks once, from within dns_free(),
 * with DNS_CANCELLED; dns_resolve_* called from those callbacks fails with
 * -ESHUTDOWN.
 *
 * Timeouts: timeout_ms is the budget of one DNS query: c-ares tries each
 * server twice (timeout_ms / 3, then twice that), so a dead single server
 * gives DNS_TEMPFAIL after about timeout_ms. An MX lookup is at most two
 * rounds (MX, then A/AAAA in parallel), so at most about 2 * timeout_ms.
 *
 * Ownership: struct dns is owned by the caller of dns_new and must be freed
 * before the event_base. The event_base is borrowed.
 */
#ifndef SLUICE_NET_DNS_H
#define SLUICE_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/timeutil.h"

#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 8
#define DNS_NAME_MAX 256        /* 253 characters + NUL, with margin */
#define DNS_ADDR_MAX 46         /* INET6_ADDRSTRLEN */
#define DNS_ERROR_MAX 128

#define DNS_TTL_MIN 30                  /* seconds */
#define DNS_TTL_MAX 86400
#define DNS_NEG_TTL_DEFAULT 300
#define DNS_TEMPFAIL_TTL 30

struct event_base;
struct dns;

enum dns_status {
	DNS_OK = 0,
	DNS_NXDOMAIN,
	DNS_NULLMX,
	DNS_NOHOSTS,
	DNS_INVALID,
	DNS_TEMPFAIL,
	DNS_CANCELLED,
};

struct dns_mx_host {
	char name[DNS_NAME_MAX];        /* lower case, no trailing dot */
	int pref;                       /* MX preference; 0 for implicit MX */
	size_t naddrs;
	char addrs[DNS_MAX_ADDRS][DNS_ADDR_MAX];        /* numeric, v4 first */
};

struct dns_result {
	enum dns_status status;
	char name[DNS_NAME_MAX];        /* the normalised name asked for */
	char error[DNS_ERROR_MAX];      /* human-readable, "" when DNS_OK */
	bool implicit_mx;               /* no MX: the domain's own A/AAAA */
	bool from_cache;
	size_t nhosts;
	struct dns_mx_host hosts[DNS_MAX_HOSTS];
	msec_t expires;                 /* cache expiry (wall clock ms) */
};

typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/*
 * resolver: NULL or "" for the system's resolv.conf, else "IP", "IP:PORT"
 * or "[IPv6]:PORT" (a comma-separated list of those is accepted too).
 * timeout_ms: per-query budget (see above), at least 50.
 * On error returns NULL with a message in err (size errlen).
 */
struct dns *dns_new(struct event_base *base, const char *resolver,
    int timeout_ms, size_t cache_max, char *err, size_t errlen);
void dns_free(struct dns *dns);

/*
 * Resolve the delivery targets of a mail domain. Returns 0 (cb will be
 * called exactly once) or -EINVAL (NULL domain or cb), -ESHUTDOWN (dns is
 * being freed).
 */
int dns_resolve_mx(struct dns *dns, const char *domain, msec_t now,
    dns_cb cb, void *arg);
/* Resolve one host name to its A/AAAA addresses; same contract. */
int dns_resolve_host(struct dns *dns, const char *host, msec_t now,
    dns_cb cb, void *arg);

/* Drop every cached result. */
void dns_cache_clear(struct dns *dns);
size_t dns_cache_count(const struct dns *dns);
/* DNS queries handed to c-ares so far (for tests and metrics). */
uint64_t dns_queries_sent(const struct dns *dns);

const char *dns_status_name(enum dns_status status);
/* NXDOMAIN, NULLMX, NOHOSTS, INVALID: retrying will not help. */
bool dns_status_is_permanent(enum dns_status status);

/*
 * Validate and normalise a domain name: strips one trailing dot, lower-
 * cases, checks total length (<= 253), label lengths (1..63) and letters,
 * digits, '-' (not first or last in a label) and '_' ; rejects non-ASCII
 * (IDNs must be in A-label form) and an all-numeric last label. Returns 0
 * with the name in out (size outlen), or -1 with a message in err.
 */
int dns_normalize_name(const char *in, char *out, size_t outlen,
    char *err, size_t errlen);

/*
 * The answer walker, exported for tests and fuzzing. Parses one DNS
 * response packet for the question it carries (qtype 1 A, 28 AAAA,
 * 15 MX), following CNAMEs from the question name. Bounds-checked; never
 * reads past len.
 */
#define DNS_ANSWER_MAX_RECORDS 32

struct dns_answer_mx {
	int pref;
	char host[DNS_NAME_MAX];        /* "" for the root (null MX) */
};

struct dns_answer {
	int rcode;
	int qtype;
	char qname[DNS_NAME_MAX];
	uint32_t ttl;           /* smallest TTL of used records; 0 if none */
	bool has_soa;
	uint32_t neg_ttl;       /* min(SOA TTL, SOA MINIMUM) when has_soa */
	size_t nmx;
	struct dns_answer_mx mx[DNS_ANSWER_MAX_RECORDS];
	size_t naddrs;
	char addrs[DNS_ANSWER_MAX_RECORDS][DNS_ADDR_MAX];
};

/* 0 on success, -1 on a malformed packet. */
int dns_parse_answer(const unsigned char *pkt, size_t len,
    struct dns_answer *out);

#endif
