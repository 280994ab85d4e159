/*
 * dns: c-ares on a libevent event_base, a bounds-checked answer walker for
 * TTLs, a TTL cache and lookup coalescing. See dns.h for the contract.
 *
 * Control flow: c-ares callbacks (dns_query_done) only record answers in
 * the lookup; when a lookup's last query ends, its result goes to the
 * cache and one copy per waiter goes to the ready queue. User callbacks
 * run only from deliver_ev, a libevent event activated when the ready
 * queue is not empty, so no user code runs inside c-ares or inside
 * dns_resolve_*.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define DNS_T_A 1
#define DNS_T_CNAME 5
#define DNS_T_SOA 6
#define DNS_T_MX 15
#define DNS_T_AAAA 28
#define DNS_C_IN 1

#define DNS_CNAME_HOPS 8
#define DNS_NAME_JUMPS 64
#define DNS_LABEL_MAX 63
#define DNS_DOMAIN_MAX 253

enum dns_kind { DNS_KIND_MX, DNS_KIND_HOST };

/* The outcome of one query. */
enum dns_qres {
	DNS_Q_NONE,
	DNS_Q_OK,
	DNS_Q_NODATA,
	DNS_Q_NXDOMAIN,
	DNS_Q_TEMPFAIL,
};

struct dns_sock {
	struct dns *dns;
	ares_socket_t fd;
	struct event *ev;
	struct dns_sock *next;
};

struct dns_waiter {
	dns_cb cb;
	void *arg;
	struct dns_waiter *next;
};

struct dns_ready {
	dns_cb cb;
	void *arg;
	struct dns_ready *next;
	struct dns_result res;
};

/* Addresses gathered for one target host before they are composed. */
struct dns_hostq {
	char v4[DNS_MAX_ADDRS][DNS_ADDR_MAX];
	size_t n4;
	char v6[DNS_MAX_ADDRS][DNS_ADDR_MAX];
	size_t n6;
	enum dns_qres st4, st6;
	uint32_t ttl;           /* smallest TTL of the records used */
};

struct dns_lookup {
	struct dns *dns;
	struct dns_lookup *next;
	enum dns_kind kind;
	char name[DNS_NAME_MAX];
	msec_t started;
	int pending;            /* queries in flight plus submission guard */
	struct dns_waiter *waiters;
	struct dns_waiter **waiters_tail;
	struct dns_result *res;         /* being built; hosts fixed after MX */
	struct dns_hostq hq[DNS_MAX_HOSTS];
	uint32_t ttl;           /* MX (and CNAME) TTL; UINT32_MAX if none */
	uint32_t neg_ttl;       /* smallest SOA negative TTL seen */
	bool has_neg_ttl;
};

struct dns_query {
	struct dns_lookup *lk;
	int host;
	int qtype;
};

struct dns_centry {
	enum dns_kind kind;
	char name[DNS_NAME_MAX];
	msec_t expires;
	struct dns_result *res;         /* compact: only nhosts hosts */
	struct dns_centry *hnext;       /* hash chain */
	struct dns_centry *prev, *next; /* insertion order, oldest first */
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	bool channel_ok;
	struct event *timer;
	struct event *deliver_ev;
	struct dns_sock *socks;
	struct dns_lookup *lookups;
	struct dns_ready *ready, **ready_tail;
	uint64_t queries;
	bool closing;           /* dns_free has begun: no new lookups */
	bool in_callback;       /* a user callback is running */
	bool free_pending;      /* dns_free was called from a callback */
	/* cache */
	size_t cache_max;
	size_t cache_count;
	size_t nbuckets;
	struct dns_centry **buckets;
	struct dns_centry *oldest, *newest;
};

static void dns_submit(struct dns_lookup *lk, const char *name, int qtype,
    int host);
static void dns_rearm(struct dns *dns);
static void dns_really_free(struct dns *dns);

/* ------------------------------------------------------------------ */
/* names and statuses */

const char *
dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NULLMX:
		return "nullmx";
	case DNS_NOHOSTS:
		return "nohosts";
	case DNS_INVALID:
		return "invalid";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

bool
dns_status_is_permanent(enum dns_status status)
{
	return status == DNS_NXDOMAIN || status == DNS_NULLMX ||
	    status == DNS_NOHOSTS || status == DNS_INVALID;
}

static bool
dns_is_ldh(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	    c == '_';
}

int
dns_normalize_name(const char *in, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char tmp[DNS_NAME_MAX];
	size_t len, label = 0, start = 0;
	bool numeric = true;

	if (in == NULL || *in == '\0') {
		snprintf(err, errlen, "empty domain name");
		return -1;
	}
	len = strlen(in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "domain name is only a dot");
		return -1;
	}
	if (len > DNS_DOMAIN_MAX) {
		snprintf(err, errlen, "domain name longer than %d characters",
		    DNS_DOMAIN_MAX);
		return -1;
	}
	memcpy(tmp, in, len);
	tmp[len] = '\0';
	str_lower(tmp);
	for (size_t i = 0; i <= len; i++) {
		int c = (unsigned char)tmp[i];

		if (c == '.' || c == '\0') {
			if (label == 0) {
				snprintf(err, errlen,
				    "empty label in domain name");
				return -1;
			}
			if (tmp[start] == '-' || tmp[i - 1] == '-') {
				snprintf(err, errlen, "label starts or ends "
				    "with '-' in domain name");
				return -1;
			}
			if (c == '\0' && numeric) {
				snprintf(err, errlen, "all-numeric top-level "
				    "label in domain name");
				return -1;
			}
			label = 0;
			start = i + 1;
			numeric = true;
			continue;
		}
		if (c >= 0x80) {
			snprintf(err, errlen, "non-ASCII domain name (use the "
			    "IDNA A-label form, xn--...)");
			return -1;
		}
		if (!dns_is_ldh(c)) {
			snprintf(err, errlen,
			    "invalid character 0x%02x in domain name", c);
			return -1;
		}
		if (!(c >= '0' && c <= '9'))
			numeric = false;
		if (++label > DNS_LABEL_MAX) {
			snprintf(err, errlen, "label longer than %d characters "
			    "in domain name", DNS_LABEL_MAX);
			return -1;
		}
	}
	if (str_copy(out, tmp, outlen) >= outlen) {
		snprintf(err, errlen, "domain name too long for buffer");
		return -1;
	}
	return 0;
}

/*
 * If s is an IP literal ("192.0.2.1", "::1", "[192.0.2.1]",
 * "[IPv6:::1]"), write its canonical numeric form to out and return its
 * family; else return 0.
 */
static int
dns_ip_literal(const char *s, char *out, size_t outlen)
{
	char tmp[DNS_NAME_MAX];
	unsigned char bin[16];
	size_t len = strlen(s);

	if (len >= sizeof(tmp))
		return 0;
	if (s[0] == '[' && len > 2 && s[len - 1] == ']') {
		memcpy(tmp, s + 1, len - 2);
		tmp[len - 2] = '\0';
		if (strncasecmp(tmp, "ipv6:", 5) == 0)
			memmove(tmp, tmp + 5, strlen(tmp + 5) + 1);
	} else
		memcpy(tmp, s, len + 1);
	if (inet_pton(AF_INET, tmp, bin) == 1) {
		inet_ntop(AF_INET, bin, out, (socklen_t)outlen);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, tmp, bin) == 1) {
		inet_ntop(AF_INET6, bin, out, (socklen_t)outlen);
		return AF_INET6;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the answer walker */

static int
dns_get16(const unsigned char *pkt, size_t len, size_t off, uint16_t *v)
{
	if (off > len || len - off < 2)
		return -1;
	*v = (uint16_t)(pkt[off] << 8 | pkt[off + 1]);
	return 0;
}

static int
dns_get32(const unsigned char *pkt, size_t len, size_t off, uint32_t *v)
{
	if (off > len || len - off < 4)
		return -1;
	*v = (uint32_t)pkt[off] << 24 | (uint32_t)pkt[off + 1] << 16 |
	    (uint32_t)pkt[off + 2] << 8 | (uint32_t)pkt[off + 3];
	return 0;
}

/*
 * Read a possibly compressed name at *off into out (lower case, labels
 * joined by '.', "" for the root; bytes that are not printable or are '.'
 * inside a label become '?', which later validation rejects). Advances
 * *off past the name as it appears at *off.
 */
static int
dns_read_name(const unsigned char *pkt, size_t len, size_t *off, char *out,
    size_t outlen)
{
	size_t pos = *off, o = 0;
	bool jumped = false;
	int jumps = 0;

	for (;;) {
		unsigned c;

		if (pos >= len)
			return -1;
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > DNS_NAME_JUMPS)
				return -1;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = (c & 0x3f) << 8 | pkt[pos + 1];
			continue;
		}
		if ((c & 0xc0) != 0)
			return -1;
		if (c == 0) {
			if (!jumped)
				*off = pos + 1;
			break;
		}
		if (pos + 1 + c > len)
			return -1;
		if (o + c + 2 > outlen || o + c + 1 > DNS_DOMAIN_MAX + 1)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char b = pkt[pos + 1 + i];

			if (b >= 'A' && b <= 'Z')
				b = (unsigned char)(b - 'A' + 'a');
			if (b <= 0x20 || b >= 0x7f || b == '.')
				b = '?';
			out[o++] = (char)b;
		}
		pos += 1 + c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

struct dns_rr {
	char owner[DNS_NAME_MAX];
	uint16_t type;
	uint16_t klass;
	uint32_t ttl;
	size_t rdoff;
	uint16_t rdlen;
};

static int
dns_read_rr(const unsigned char *pkt, size_t len, size_t *off,
    struct dns_rr *rr)
{
	if (dns_read_name(pkt, len, off, rr->owner, sizeof(rr->owner)) < 0)
		return -1;
	if (dns_get16(pkt, len, *off, &rr->type) < 0 ||
	    dns_get16(pkt, len, *off + 2, &rr->klass) < 0 ||
	    dns_get32(pkt, len, *off + 4, &rr->ttl) < 0 ||
	    dns_get16(pkt, len, *off + 8, &rr->rdlen) < 0)
		return -1;
	if (rr->ttl & 0x80000000u)      /* RFC 2181 8: treat as zero */
		rr->ttl = 0;
	rr->rdoff = *off + 10;
	if (rr->rdoff > len || len - rr->rdoff < rr->rdlen)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

static void
dns_min_ttl(uint32_t *ttl, uint32_t v)
{
	if (v < *ttl)
		*ttl = v;
}

/* Take one record of the asked type into out; -1 if its rdata is bad. */
static int
dns_take_record(const unsigned char *pkt, size_t len, const struct dns_rr *rr,
    struct dns_answer *out)
{
	if (rr->type == DNS_T_MX) {
		struct dns_answer_mx *mx;
		size_t noff = rr->rdoff + 2;
		uint16_t pref;

		if (rr->rdlen < 3)
			return -1;
		if (out->nmx >= DNS_ANSWER_MAX_RECORDS)
			return 0;       /* keep the first ones */
		mx = &out->mx[out->nmx];
		if (dns_get16(pkt, len, rr->rdoff, &pref) < 0 ||
		    dns_read_name(pkt, len, &noff, mx->host,
		    sizeof(mx->host)) < 0)
			return -1;
		mx->pref = pref;
		out->nmx++;
		return 0;
	}
	if (out->naddrs >= DNS_ANSWER_MAX_RECORDS)
		return 0;
	if (rr->type == DNS_T_A && rr->rdlen == 4) {
		inet_ntop(AF_INET, pkt + rr->rdoff, out->addrs[out->naddrs++],
		    DNS_ADDR_MAX);
		return 0;
	}
	if (rr->type == DNS_T_AAAA && rr->rdlen == 16) {
		inet_ntop(AF_INET6, pkt + rr->rdoff, out->addrs[out->naddrs++],
		    DNS_ADDR_MAX);
		return 0;
	}
	return -1;
}

int
dns_parse_answer(const unsigned char *pkt, size_t len, struct dns_answer *out)
{
	uint16_t flags, qd, an, ns, qtype, qclass;
	size_t off = 12, ans_off;
	char cur[DNS_NAME_MAX];
	uint32_t ttl = UINT32_MAX;
	struct dns_rr rr;

	memset(out, 0, sizeof(*out));
	if (pkt == NULL || len < 12)
		return -1;
	if (dns_get16(pkt, len, 2, &flags) < 0 ||
	    dns_get16(pkt, len, 4, &qd) < 0 ||
	    dns_get16(pkt, len, 6, &an) < 0 ||
	    dns_get16(pkt, len, 8, &ns) < 0)
		return -1;
	if (!(flags & 0x8000) || qd != 1)
		return -1;
	out->rcode = flags & 0x0f;
	if (dns_read_name(pkt, len, &off, out->qname, sizeof(out->qname)) < 0 ||
	    dns_get16(pkt, len, off, &qtype) < 0 ||
	    dns_get16(pkt, len, off + 2, &qclass) < 0)
		return -1;
	off += 4;
	out->qtype = qtype;
	if (qtype != DNS_T_A && qtype != DNS_T_AAAA && qtype != DNS_T_MX)
		return -1;

	/* Follow the CNAME chain from the question name. */
	ans_off = off;
	str_copy(cur, out->qname, sizeof(cur));
	for (int hop = 0; hop <= DNS_CNAME_HOPS; hop++) {
		char next[DNS_NAME_MAX] = "";
		uint32_t cname_ttl = 0;
		bool found = false;

		off = ans_off;
		for (uint16_t i = 0; i < an; i++) {
			if (dns_read_rr(pkt, len, &off, &rr) < 0)
				return -1;
			if (rr.klass != DNS_C_IN || strcmp(rr.owner, cur) != 0)
				continue;
			if (rr.type == qtype) {
				if (dns_take_record(pkt, len, &rr, out) < 0)
					return -1;
				dns_min_ttl(&ttl, rr.ttl);
				found = true;
			} else if (rr.type == DNS_T_CNAME && next[0] == '\0') {
				size_t noff = rr.rdoff;

				if (dns_read_name(pkt, len, &noff, next,
				    sizeof(next)) < 0 || next[0] == '\0')
					return -1;
				cname_ttl = rr.ttl;
			}
		}
		if (found || next[0] == '\0')
			break;
		dns_min_ttl(&ttl, cname_ttl);
		str_copy(cur, next, sizeof(cur));
	}
	/* off is now past the answer section: every hop scans all of it. */
	for (uint16_t i = 0; i < ns; i++) {
		uint32_t minimum;
		size_t soff;
		char skip[DNS_NAME_MAX];

		if (dns_read_rr(pkt, len, &off, &rr) < 0)
			return -1;
		if (rr.type != DNS_T_SOA || out->has_soa)
			continue;
		soff = rr.rdoff;
		if (dns_read_name(pkt, len, &soff, skip, sizeof(skip)) < 0 ||
		    dns_read_name(pkt, len, &soff, skip, sizeof(skip)) < 0 ||
		    soff + 20 > rr.rdoff + rr.rdlen ||
		    dns_get32(pkt, len, soff + 16, &minimum) < 0)
			return -1;
		if (minimum & 0x80000000u)
			minimum = 0;
		out->has_soa = true;
		out->neg_ttl = rr.ttl < minimum ? rr.ttl : minimum;
	}
	out->ttl = (out->nmx || out->naddrs) ? ttl : 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the cache */

static size_t
dns_hash(enum dns_kind kind, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

static void
dns_cache_unlink(struct dns *dns, struct dns_centry *e)
{
	struct dns_centry **pp = &dns->buckets[dns_hash(e->kind, e->name) &
	    (dns->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		dns->oldest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		dns->newest = e->prev;
	dns->cache_count--;
	free(e->res);
	free(e);
}

static struct dns_centry *
dns_cache_find(struct dns *dns, enum dns_kind kind, const char *name)
{
	struct dns_centry *e;

	if (dns->nbuckets == 0)
		return NULL;
	e = dns->buckets[dns_hash(kind, name) & (dns->nbuckets - 1)];
	for (; e; e = e->hnext)
		if (e->kind == kind && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static size_t
dns_result_compact_size(size_t nhosts)
{
	return offsetof(struct dns_result, hosts) +
	    nhosts * sizeof(struct dns_mx_host);
}

static void
dns_cache_put(struct dns *dns, enum dns_kind kind, const struct dns_result *res)
{
	struct dns_centry *e, **bucket;
	size_t sz;

	if (dns->cache_max == 0)
		return;
	if ((e = dns_cache_find(dns, kind, res->name)) != NULL)
		dns_cache_unlink(dns, e);
	while (dns->cache_count >= dns->cache_max && dns->oldest) {
		log_trace("dns", "event=cache_evict name=%s",
		    dns->oldest->name);
		dns_cache_unlink(dns, dns->oldest);
	}
	e = xcalloc(1, sizeof(*e));
	e->kind = kind;
	str_copy(e->name, res->name, sizeof(e->name));
	e->expires = res->expires;
	sz = dns_result_compact_size(res->nhosts);
	e->res = xmalloc(sz);
	memcpy(e->res, res, sz);
	bucket = &dns->buckets[dns_hash(kind, e->name) & (dns->nbuckets - 1)];
	e->hnext = *bucket;
	*bucket = e;
	e->prev = dns->newest;
	if (dns->newest)
		dns->newest->next = e;
	else
		dns->oldest = e;
	dns->newest = e;
	dns->cache_count++;
}

void
dns_cache_clear(struct dns *dns)
{
	while (dns->oldest)
		dns_cache_unlink(dns, dns->oldest);
}

size_t
dns_cache_count(const struct dns *dns)
{
	return dns->cache_count;
}

uint64_t
dns_queries_sent(const struct dns *dns)
{
	return dns->queries;
}

/* ------------------------------------------------------------------ */
/* delivery of results to callers */

static void
dns_enqueue(struct dns *dns, dns_cb cb, void *arg, const struct dns_result *res,
    size_t ressize)
{
	struct dns_ready *r = xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->arg = arg;
	memcpy(&r->res, res, ressize);
	*dns->ready_tail = r;
	dns->ready_tail = &r->next;
	event_active(dns->deliver_ev, EV_TIMEOUT, 0);
}

static void
dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;
	struct dns_ready *list = dns->ready, *r;

	/* Take the whole queue: results queued by callbacks wait a turn. */
	dns->ready = NULL;
	dns->ready_tail = &dns->ready;
	while ((r = list) != NULL) {
		list = r->next;
		if (dns->free_pending) {
			/* dns_free was called by an earlier callback. */
			r->res.status = DNS_CANCELLED;
			r->res.nhosts = 0;
			str_copy(r->res.error, "resolver shut down",
			    sizeof(r->res.error));
		}
		dns->in_callback = true;
		r->cb(&r->res, r->arg);
		dns->in_callback = false;
		free(r);
	}
	if (dns->free_pending)
		dns_really_free(dns);
}

static void dns_result_fail(struct dns_result *res, enum dns_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
dns_result_fail(struct dns_result *res, enum dns_status st, const char *fmt,
    ...)
{
	va_list ap;

	res->status = st;
	res->nhosts = 0;
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

static uint32_t
dns_clamp_ttl(uint32_t ttl)
{
	if (ttl < DNS_TTL_MIN)
		return DNS_TTL_MIN;
	if (ttl > DNS_TTL_MAX)
		return DNS_TTL_MAX;
	return ttl;
}

/* ------------------------------------------------------------------ */
/* lookups */

static void
dns_lookup_unlink(struct dns_lookup *lk)
{
	struct dns_lookup **pp = &lk->dns->lookups;

	while (*pp && *pp != lk)
		pp = &(*pp)->next;
	if (*pp)
		*pp = lk->next;
}

static void
dns_lookup_free(struct dns_lookup *lk)
{
	struct dns_waiter *w;

	while ((w = lk->waiters) != NULL) {
		lk->waiters = w->next;
		free(w);
	}
	free(lk->res);
	free(lk);
}

/* Build the final result from the per-host answers. */
static void
dns_compose(struct dns_lookup *lk)
{
	struct dns_result *res = lk->res;
	uint32_t ttl = lk->ttl;
	size_t out = 0;
	bool tempfail = false;

	for (size_t i = 0; i < res->nhosts; i++) {
		struct dns_hostq *q = &lk->hq[i];
		struct dns_mx_host *h = &res->hosts[i];
		size_t n = 0;

		for (size_t k = 0; k < q->n4 && n < DNS_MAX_ADDRS; k++)
			str_copy(h->addrs[n++], q->v4[k], DNS_ADDR_MAX);
		for (size_t k = 0; k < q->n6 && n < DNS_MAX_ADDRS; k++)
			str_copy(h->addrs[n++], q->v6[k], DNS_ADDR_MAX);
		h->naddrs = n;
		/* Some address may be missing: cache only briefly. */
		if (q->st4 == DNS_Q_TEMPFAIL || q->st6 == DNS_Q_TEMPFAIL)
			tempfail = true;
		if (n == 0) {
			log_trace("dns", "event=host_unresolved domain=%s "
			    "host=%s", res->name, h->name);
			continue;
		}
		dns_min_ttl(&ttl, q->ttl);
		if (out != i)
			res->hosts[out] = *h;
		out++;
	}
	res->nhosts = out;
	if (out > 0) {
		res->status = DNS_OK;
		res->error[0] = '\0';
		ttl = tempfail ? DNS_TEMPFAIL_TTL : dns_clamp_ttl(ttl);
	} else if (tempfail) {
		dns_result_fail(res, DNS_TEMPFAIL, "%.80s: no address resolved "
		    "(temporary DNS failure)", res->name);
		ttl = DNS_TEMPFAIL_TTL;
	} else {
		bool host = lk->kind == DNS_KIND_HOST;

		if (host && lk->hq[0].st4 == DNS_Q_NXDOMAIN &&
		    lk->hq[0].st6 == DNS_Q_NXDOMAIN)
			dns_result_fail(res, DNS_NXDOMAIN,
			    "%.80s: no such host", res->name);
		else if (host)
			dns_result_fail(res, DNS_NOHOSTS, "%.80s: host has no "
			    "A or AAAA record", res->name);
		else if (res->implicit_mx)
			dns_result_fail(res, DNS_NOHOSTS, "%.80s: domain has "
			    "no MX and no A or AAAA record", res->name);
		else
			dns_result_fail(res, DNS_NOHOSTS, "%.80s: no MX host "
			    "has an address", res->name);
		ttl = dns_clamp_ttl(lk->has_neg_ttl ? lk->neg_ttl :
		    DNS_NEG_TTL_DEFAULT);
	}
	res->expires = lk->started + (msec_t)ttl * 1000;
}

/* The lookup's last query has ended: cache, queue callbacks, free. */
static void
dns_lookup_finish(struct dns_lookup *lk)
{
	struct dns *dns = lk->dns;
	struct dns_result *res = lk->res;

	if (res->status == DNS_OK && res->nhosts > 0)
		dns_compose(lk);
	log_trace("dns", "event=resolved name=%s kind=%s status=%s hosts=%zu "
	    "ttl_ms=%lld", res->name, lk->kind == DNS_KIND_MX ? "mx" : "host",
	    dns_status_name(res->status), res->nhosts,
	    (long long)(res->expires - lk->started));
	/* Temporary failures are cached DNS_TEMPFAIL_TTL: at most one warning
	 * per name per that time. */
	if (res->status == DNS_TEMPFAIL)
		log_warn("dns", "event=tempfail name=%s error=\"%s\"",
		    res->name, res->error);
	else if (res->status != DNS_OK)
		log_debug("dns", "event=resolve_failed name=%s status=%s "
		    "error=\"%s\"", res->name, dns_status_name(res->status),
		    res->error);
	dns_cache_put(dns, lk->kind, res);
	for (struct dns_waiter *w = lk->waiters; w; w = w->next)
		dns_enqueue(dns, w->cb, w->arg, res, sizeof(*res));
	dns_lookup_unlink(lk);
	dns_lookup_free(lk);
}

static void
dns_lookup_unref(struct dns_lookup *lk)
{
	if (--lk->pending == 0)
		dns_lookup_finish(lk);
}

static enum dns_qres
dns_classify(int status, const struct dns_answer *ans, bool parsed)
{
	if (status == ARES_ENOTFOUND)
		return DNS_Q_NXDOMAIN;
	if (status == ARES_ENODATA)
		return DNS_Q_NODATA;
	if (status != ARES_SUCCESS || !parsed)
		return DNS_Q_TEMPFAIL;
	if (ans->rcode == 3)
		return DNS_Q_NXDOMAIN;
	if (ans->rcode != 0)
		return DNS_Q_TEMPFAIL;
	return (ans->nmx || ans->naddrs) ? DNS_Q_OK : DNS_Q_NODATA;
}

static void
dns_note_neg_ttl(struct dns_lookup *lk, const struct dns_answer *ans,
    bool parsed)
{
	if (!parsed || !ans->has_soa)
		return;
	if (!lk->has_neg_ttl || ans->neg_ttl < lk->neg_ttl)
		lk->neg_ttl = ans->neg_ttl;
	lk->has_neg_ttl = true;
}

static void
dns_add_target(struct dns_lookup *lk, const char *name, int pref)
{
	struct dns_result *res = lk->res;
	struct dns_mx_host *h;

	for (size_t i = 0; i < res->nhosts; i++)
		if (strcmp(res->hosts[i].name, name) == 0)
			return;
	if (res->nhosts >= DNS_MAX_HOSTS)
		return;
	h = &res->hosts[res->nhosts];
	memset(h, 0, sizeof(*h));
	str_copy(h->name, name, sizeof(h->name));
	h->pref = pref;
	lk->hq[res->nhosts].ttl = UINT32_MAX;
	res->nhosts++;
}

/* Ask A and AAAA for every target (IP literals are answered at once). */
static void
dns_resolve_targets(struct dns_lookup *lk)
{
	struct dns_result *res = lk->res;

	/* Guard: a query failing synchronously must not finish the lookup. */
	lk->pending++;
	for (size_t i = 0; i < res->nhosts; i++) {
		char ip[DNS_ADDR_MAX];
		struct dns_hostq *q = &lk->hq[i];
		int af = dns_ip_literal(res->hosts[i].name, ip, sizeof(ip));

		if (af == AF_INET) {
			str_copy(q->v4[q->n4++], ip, DNS_ADDR_MAX);
			q->st4 = q->st6 = DNS_Q_OK;
			q->ttl = DNS_TTL_MAX;
		} else if (af == AF_INET6) {
			str_copy(q->v6[q->n6++], ip, DNS_ADDR_MAX);
			q->st4 = q->st6 = DNS_Q_OK;
			q->ttl = DNS_TTL_MAX;
		} else {
			dns_submit(lk, res->hosts[i].name, DNS_T_A, (int)i);
			dns_submit(lk, res->hosts[i].name, DNS_T_AAAA, (int)i);
		}
	}
	dns_lookup_unref(lk);
}

static void
dns_mx_answer(struct dns_lookup *lk, int status, const struct dns_answer *ans,
    bool parsed)
{
	struct dns_result *res = lk->res;
	enum dns_qres qr = dns_classify(status, ans, parsed);
	size_t order[DNS_ANSWER_MAX_RECORDS];
	size_t n = 0, nroot = 0;

	switch (qr) {
	case DNS_Q_NXDOMAIN:
		dns_result_fail(res, DNS_NXDOMAIN, "%.80s: no such domain",
		    res->name);
		dns_note_neg_ttl(lk, ans, parsed);
		res->expires = lk->started + (msec_t)dns_clamp_ttl(
		    lk->has_neg_ttl ? lk->neg_ttl : DNS_NEG_TTL_DEFAULT) * 1000;
		return;
	case DNS_Q_TEMPFAIL:
		snprintf(res->error, sizeof(res->error), "%.80s: MX lookup "
		    "failed (%s)", res->name, parsed && status == ARES_SUCCESS ?
		    "bad rcode" : ares_strerror(status));
		res->status = DNS_TEMPFAIL;
		res->nhosts = 0;
		res->expires = lk->started + (msec_t)DNS_TEMPFAIL_TTL * 1000;
		return;
	case DNS_Q_NODATA:
	case DNS_Q_NONE:
		log_trace("dns", "event=implicit_mx domain=%s", res->name);
		dns_note_neg_ttl(lk, ans, parsed);
		res->implicit_mx = true;
		dns_add_target(lk, res->name, 0);
		dns_resolve_targets(lk);
		return;
	case DNS_Q_OK:
		break;
	}
	lk->ttl = ans->ttl;
	/* Stable insertion sort of the records by preference. */
	for (size_t i = 0; i < ans->nmx; i++) {
		size_t j = n;

		while (j > 0 && ans->mx[order[j - 1]].pref > ans->mx[i].pref) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
		n++;
		if (ans->mx[i].host[0] == '\0')
			nroot++;
	}
	if (nroot == n) {
		dns_result_fail(res, DNS_NULLMX, "%.80s: domain accepts no "
		    "mail (null MX, RFC 7505)", res->name);
		res->expires = lk->started + (msec_t)dns_clamp_ttl(ans->ttl) *
		    1000;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dns_answer_mx *mx = &ans->mx[order[i]];
		char host[DNS_NAME_MAX], err[DNS_ERROR_MAX];

		if (mx->host[0] == '\0')
			continue;
		if (dns_normalize_name(mx->host, host, sizeof(host), err,
		    sizeof(err)) < 0 && dns_ip_literal(mx->host, host,
		    sizeof(host)) == 0) {
			log_trace("dns", "event=bad_mx_host domain=%s "
			    "error=\"%s\"", res->name, err);
			continue;
		}
		dns_add_target(lk, host, mx->pref);
	}
	if (res->nhosts == 0) {
		dns_result_fail(res, DNS_NOHOSTS,
		    "%.80s: no valid MX host name", res->name);
		res->expires = lk->started + (msec_t)DNS_NEG_TTL_DEFAULT * 1000;
		return;
	}
	dns_resolve_targets(lk);
}

static void
dns_addr_answer(struct dns_lookup *lk, int host, int qtype, int status,
    const struct dns_answer *ans, bool parsed)
{
	struct dns_hostq *q = &lk->hq[host];
	enum dns_qres qr = dns_classify(status, ans, parsed);

	if (qtype == DNS_T_A)
		q->st4 = qr;
	else
		q->st6 = qr;
	if (qr == DNS_Q_NXDOMAIN || qr == DNS_Q_NODATA) {
		dns_note_neg_ttl(lk, ans, parsed);
		return;
	}
	if (qr != DNS_Q_OK)
		return;
	dns_min_ttl(&q->ttl, ans->ttl);
	for (size_t i = 0; i < ans->naddrs; i++) {
		char (*list)[DNS_ADDR_MAX] = qtype == DNS_T_A ? q->v4 : q->v6;
		size_t *np = qtype == DNS_T_A ? &q->n4 : &q->n6;
		bool dup = false;

		for (size_t k = 0; k < *np; k++)
			if (strcmp(list[k], ans->addrs[i]) == 0)
				dup = true;
		if (!dup && *np < DNS_MAX_ADDRS)
			str_copy(list[(*np)++], ans->addrs[i], DNS_ADDR_MAX);
	}
}

static void
dns_query_done(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query *dq = arg;
	struct dns_lookup *lk = dq->lk;
	struct dns_answer *ans;
	bool parsed = false;

	if (status == ARES_EDESTRUCTION || lk->dns->closing) {
		/* dns_free owns the lookups now. */
		lk->pending--;
		free(dq);
		return;
	}
	ans = xmalloc(sizeof(*ans));
	if (abuf != NULL && alen > 0)
		parsed = dns_parse_answer(abuf, (size_t)alen, ans) == 0;
	if (!parsed)
		memset(ans, 0, sizeof(*ans));
	log_trace("dns", "event=answer name=%s qtype=%d status=\"%s\" "
	    "timeouts=%d parsed=%d",
	    dq->host < 0 ? lk->name : lk->res->hosts[dq->host].name,
	    dq->qtype, ares_strerror(status), timeouts, parsed);
	if (dq->qtype == DNS_T_MX)
		dns_mx_answer(lk, status, ans, parsed);
	else
		dns_addr_answer(lk, dq->host, dq->qtype, status, ans, parsed);
	free(ans);
	free(dq);
	dns_lookup_unref(lk);
}

static void
dns_submit(struct dns_lookup *lk, const char *name, int qtype, int host)
{
	struct dns *dns = lk->dns;
	struct dns_query *dq = xcalloc(1, sizeof(*dq));

	dq->lk = lk;
	dq->host = host;
	dq->qtype = qtype;
	lk->pending++;
	dns->queries++;
	log_trace("dns", "event=query name=%s qtype=%d", name, qtype);
	ares_query(dns->channel, name, DNS_C_IN, qtype, dns_query_done, dq);
	dns_rearm(dns);
}

static int
dns_resolve(struct dns *dns, enum dns_kind kind, const char *name, msec_t now,
    dns_cb cb, void *arg)
{
	struct dns_result *res;
	struct dns_centry *e;
	struct dns_lookup *lk;
	struct dns_waiter *w;
	char norm[DNS_NAME_MAX], err[DNS_ERROR_MAX];
	char ip[DNS_ADDR_MAX];
	int af;

	if (dns == NULL || name == NULL || cb == NULL)
		return -EINVAL;
	if (dns->closing || dns->free_pending)
		return -ESHUTDOWN;

	/* IP literal host: no query. */
	if (kind == DNS_KIND_HOST &&
	    (af = dns_ip_literal(name, ip, sizeof(ip))) != 0) {
		res = xcalloc(1, sizeof(*res));
		str_copy(res->name, ip, sizeof(res->name));
		res->nhosts = 1;
		str_copy(res->hosts[0].name, ip, sizeof(res->hosts[0].name));
		res->hosts[0].naddrs = 1;
		str_copy(res->hosts[0].addrs[0], ip, DNS_ADDR_MAX);
		res->expires = now + (msec_t)DNS_TTL_MAX * 1000;
		dns_enqueue(dns, cb, arg, res, sizeof(*res));
		free(res);
		return 0;
	}
	if (dns_normalize_name(name, norm, sizeof(norm), err,
	    sizeof(err)) < 0) {
		char q[DNS_NAME_MAX + 8];

		res = xcalloc(1, sizeof(*res));
		res->status = DNS_INVALID;
		log_quote(q, sizeof(q), name);
		snprintf(res->error, sizeof(res->error), "%s", err);
		str_copy(res->name, name, sizeof(res->name));
		res->expires = now;
		log_trace("dns", "event=invalid_name name=%s error=\"%s\"", q,
		    err);
		dns_enqueue(dns, cb, arg, res, sizeof(*res));
		free(res);
		return 0;
	}

	/* Cache. */
	if ((e = dns_cache_find(dns, kind, norm)) != NULL) {
		if (e->expires > now) {
			res = xcalloc(1, sizeof(*res));
			memcpy(res, e->res, dns_result_compact_size(
			    e->res->nhosts));
			res->from_cache = true;
			log_trace("dns", "event=cache_hit name=%s status=%s",
			    norm, dns_status_name(res->status));
			dns_enqueue(dns, cb, arg, res, sizeof(*res));
			free(res);
			return 0;
		}
		dns_cache_unlink(dns, e);
	}

	w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;

	/* Coalesce with a lookup in flight. */
	for (lk = dns->lookups; lk; lk = lk->next) {
		if (lk->kind == kind && strcmp(lk->name, norm) == 0) {
			log_trace("dns", "event=coalesced name=%s", norm);
			*lk->waiters_tail = w;
			lk->waiters_tail = &w->next;
			return 0;
		}
	}

	lk = xcalloc(1, sizeof(*lk));
	lk->dns = dns;
	lk->kind = kind;
	str_copy(lk->name, norm, sizeof(lk->name));
	lk->started = now;
	lk->ttl = UINT32_MAX;
	lk->waiters = w;
	lk->waiters_tail = &w->next;
	lk->res = xcalloc(1, sizeof(*lk->res));
	str_copy(lk->res->name, norm, sizeof(lk->res->name));
	lk->next = dns->lookups;
	dns->lookups = lk;

	if (kind == DNS_KIND_MX) {
		lk->pending++;  /* guard */
		dns_submit(lk, norm, DNS_T_MX, -1);
		dns_lookup_unref(lk);
	} else {
		dns_add_target(lk, norm, 0);
		dns_resolve_targets(lk);
	}
	return 0;
}

int
dns_resolve_mx(struct dns *dns, const char *domain, msec_t now, dns_cb cb,
    void *arg)
{
	return dns_resolve(dns, DNS_KIND_MX, domain, now, cb, arg);
}

int
dns_resolve_host(struct dns *dns, const char *host, msec_t now, dns_cb cb,
    void *arg)
{
	return dns_resolve(dns, DNS_KIND_HOST, host, now, cb, arg);
}

/* ------------------------------------------------------------------ */
/* c-ares <-> libevent */

static void
dns_rearm(struct dns *dns)
{
	struct timeval tv, *tvp;

	if (!dns->channel_ok || dns->closing)
		return;
	tvp = ares_timeout(dns->channel, NULL, &tv);
	if (tvp == NULL)
		evtimer_del(dns->timer);
	else
		evtimer_add(dns->timer, tvp);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;

	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_sock *s = arg;
	struct dns *dns = s->dns;

	/* s may be freed by the sock state callback during processing. */
	ares_process_fd(dns->channel,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_sock **pp, *s;
	short what;

	for (pp = &dns->socks; *pp; pp = &(*pp)->next)
		if ((*pp)->fd == fd)
			break;
	s = *pp;
	if (!readable && !writable) {
		if (s) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	what = (short)(EV_PERSIST | (readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0));
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->dns = dns;
		s->fd = fd;
		s->next = dns->socks;
		dns->socks = s;
	} else
		event_free(s->ev);
	s->ev = event_new(dns->base, fd, what, dns_sock_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) < 0) {
		log_error("dns", "event=event_add_failed fd=%d", (int)fd);
		abort();
	}
}

struct dns *
dns_new(struct event_base *base, const char *resolver, int timeout_ms,
    size_t cache_max, char *err, size_t errlen)
{
	struct dns *dns;
	struct ares_options opts;
	int rc, optmask;

	if (base == NULL) {
		snprintf(err, errlen, "dns: no event base");
		return NULL;
	}
	if (timeout_ms < 50)
		timeout_ms = 50;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares init: %s",
		    ares_strerror(rc));
		return NULL;
	}
	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->ready_tail = &dns->ready;
	dns->cache_max = cache_max;
	if (cache_max > 0) {
		dns->nbuckets = 16;
		while (dns->nbuckets < cache_max && dns->nbuckets < (1u << 20))
			dns->nbuckets <<= 1;
		dns->buckets = xcalloc(dns->nbuckets, sizeof(*dns->buckets));
	}
	dns->timer = evtimer_new(base, dns_timer_cb, dns);
	dns->deliver_ev = event_new(base, -1, 0, dns_deliver_cb, dns);
	if (dns->timer == NULL || dns->deliver_ev == NULL) {
		snprintf(err, errlen, "dns: cannot create events");
		goto err_free;
	}

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = dns;
	opts.timeout = timeout_ms / 3 > 0 ? timeout_ms / 3 : 1;
	opts.tries = 2;
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_FLAGS;
	if ((rc = ares_init_options(&dns->channel, &opts, optmask)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares init: %s",
		    ares_strerror(rc));
		goto err_free;
	}
	dns->channel_ok = true;
	if (resolver != NULL && *resolver != '\0') {
		rc = ares_set_servers_ports_csv(dns->channel, resolver);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "dns: bad resolver address "
			    "'%s': %s", resolver, ares_strerror(rc));
			goto err_free;
		}
	}
	log_trace("dns", "event=new resolver=%s timeout_ms=%d cache_max=%zu",
	    resolver && *resolver ? resolver : "system", timeout_ms, cache_max);
	return dns;

err_free:
	dns_really_free(dns);
	return NULL;
}

/* Free for real: cancel everything outstanding, then release. */
static void
dns_really_free(struct dns *dns)
{
	struct dns_lookup *lk;
	struct dns_ready *r;
	struct dns_result *res;

	dns->closing = true;
	dns->free_pending = false;
	if (dns->channel_ok)
		ares_destroy(dns->channel);     /* callbacks: EDESTRUCTION */
	dns->channel_ok = false;

	/* Queue DNS_CANCELLED for every waiter of a lookup in flight. */
	res = xcalloc(1, sizeof(*res));
	res->status = DNS_CANCELLED;
	str_copy(res->error, "resolver shut down", sizeof(res->error));
	while ((lk = dns->lookups) != NULL) {
		dns->lookups = lk->next;
		str_copy(res->name, lk->name, sizeof(res->name));
		for (struct dns_waiter *w = lk->waiters; w; w = w->next)
			dns_enqueue(dns, w->cb, w->arg, res, sizeof(*res));
		dns_lookup_free(lk);
	}
	free(res);
	/* Call every undelivered callback with DNS_CANCELLED. */
	while ((r = dns->ready) != NULL) {
		dns->ready = r->next;
		if (dns->ready == NULL)
			dns->ready_tail = &dns->ready;
		r->res.status = DNS_CANCELLED;
		r->res.nhosts = 0;
		str_copy(r->res.error, "resolver shut down",
		    sizeof(r->res.error));
		dns->in_callback = true;
		r->cb(&r->res, r->arg);
		dns->in_callback = false;
		free(r);
	}
	while (dns->socks) {
		struct dns_sock *s = dns->socks;

		dns->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (dns->timer)
		event_free(dns->timer);
	if (dns->deliver_ev)
		event_free(dns->deliver_ev);
	if (dns->buckets)
		dns_cache_clear(dns);
	free(dns->buckets);
	free(dns);
	ares_library_cleanup();
}

void
dns_free(struct dns *dns)
{
	if (dns == NULL)
		return;
	if (dns->in_callback) {
		/* Finish after the running callback returns. */
		dns->free_pending = true;
		return;
	}
	if (dns->closing)
		return;
	dns_really_free(dns);
}
