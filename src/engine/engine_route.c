/*
 * engine_route.c: route. A domain queue's destinations: the static route of
 * its domain (DNS bypass: `sluice route set`, hosts in the order given, each
 * a preference level) or else the domain's MX hosts from DNS, each host's
 * addresses an equal-preference group. The DNS module caches by TTL; the
 * queue keeps its answer until the earliest expiry.
 */
#include "engine/engine_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define ROUTE_STATIC_TTL_MS 60000

struct route_lookup {
	struct engine *e;
	struct dq *dq;
	int pref;
	int port;
};

static void
route_add_dest(struct engine *e, struct dq *dq, const char *ip, int port,
    const char *host, int pref)
{
	struct dest *d;

	if (dq->ndests >= ENGINE_MAX_DESTS)
		return;
	d = sched_dest_get(e, ip, port, host);
	for (size_t i = 0; i < dq->ndests; i++)
		if (dq->dests[i] == d)
			return;
	/* keep preference order: insert after every dest of lower or equal pref */
	size_t at = dq->ndests;
	while (at > 0 && dq->prefs[at - 1] > pref) {
		dq->dests[at] = dq->dests[at - 1];
		dq->prefs[at] = dq->prefs[at - 1];
		at--;
	}
	dq->dests[at] = d;
	dq->prefs[at] = pref;
	dq->ndests++;
	sched_dest_link(d, dq);
}

static void
route_clear(struct dq *dq)
{
	for (size_t i = 0; i < dq->ndests; i++)
		sched_dest_unlink(dq->dests[i], dq);
	dq->ndests = 0;
}

/* The lookups of dq are over. from_dns: called from a DNS callback, where
 * nobody else holds dq and an empty queue may be freed; route_dq's caller
 * (the scheduler) still holds it. */
static void
route_done(struct engine *e, struct dq *dq, bool from_dns)
{
	if (dq->lookups > 0)
		return;
	if (dq->ndests > 0) {
		dq->route = ROUTE_OK;
	} else if (dq->route != ROUTE_PERMFAIL) {
		dq->route = ROUTE_TEMPFAIL;
		if (dq->route_error[0] == '\0')
			str_copy(dq->route_error, "no usable address for any MX host",
			    sizeof(dq->route_error));
	}
	log_debug("route", "event=routed domain=%s stream=%s dests=%zu state=%d",
	    dq->domain, dq->stream->name, dq->ndests, dq->route);
	if (from_dns)
		sched_dq_maybe_free(e, dq);
	engine_sched_soon(e);
}

static void
route_dns_cb(const struct dns_result *res, void *arg)
{
	struct route_lookup *l = arg;
	struct engine *e = l->e;
	struct dq *dq = l->dq;
	msec_t now = time_now_ms();

	dq->lookups--;
	if (res->status == DNS_CANCELLED) {
		dq->route = ROUTE_NONE;
		free(l);
		return;
	}
	if (res->status == DNS_OK) {
		for (size_t h = 0; h < res->nhosts; h++)
			for (size_t a = 0; a < res->hosts[h].naddrs; a++)
				route_add_dest(e, dq, res->hosts[h].addrs[a], l->port,
				    res->hosts[h].name, l->pref + res->hosts[h].pref);
		if (dq->route_expires == 0 || res->expires < dq->route_expires)
			dq->route_expires = res->expires;
	} else {
		snprintf(dq->route_error, sizeof(dq->route_error), "DNS %s: %s",
		    dns_status_name(res->status), res->error);
		dq->dns_status = res->status;
		if (dns_status_is_permanent(res->status) && !dq->static_route)
			dq->route = ROUTE_PERMFAIL;
		dq->route_expires = now + DNS_TEMPFAIL_TTL * 1000;
		log_info("route", "event=dns_failed domain=%s status=%s error=\"%s\"",
		    dq->domain, dns_status_name(res->status), res->error);
	}
	free(l);
	route_done(e, dq, true);
}

static int
route_lookup_start(struct engine *e, struct dq *dq, const char *name, bool mx,
    int pref, int port, msec_t now)
{
	struct route_lookup *l = xcalloc(1, sizeof(*l));
	int r;

	l->e = e;
	l->dq = dq;
	l->pref = pref;
	l->port = port;
	dq->lookups++;
	r = mx ? dns_resolve_mx(e->dns, name, now, route_dns_cb, l) :
	    dns_resolve_host(e->dns, name, now, route_dns_cb, l);
	if (r < 0) {
		dq->lookups--;
		free(l);
		return -1;
	}
	return 0;
}

/* Split "host[:port]" / "[v6]:port" / "v6". */
static void
route_split_host(const char *spec, int default_port, char *host, size_t n, int *port)
{
	const char *colon = strrchr(spec, ':');
	int64_t p;

	*port = default_port;
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (end) {
			size_t len = (size_t)(end - spec - 1);
			if (len >= n)
				len = n - 1;
			memcpy(host, spec + 1, len);
			host[len] = '\0';
			if (end[1] == ':' && str_to_i64(end + 2, 1, 65535, &p) == 0)
				*port = (int)p;
			return;
		}
	}
	if (colon && strchr(spec, ':') == colon) {
		size_t len = (size_t)(colon - spec);
		if (len >= n)
			len = n - 1;
		memcpy(host, spec, len);
		host[len] = '\0';
		if (str_to_i64(colon + 1, 1, 65535, &p) == 0)
			*port = (int)p;
		return;
	}
	str_copy(host, spec, n);
}

static bool
route_is_ip(const char *s)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

void
route_dq(struct engine *e, struct dq *dq, msec_t now)
{
	char **hosts = NULL;
	int r;

	if (dq->route == ROUTE_RESOLVING)
		return;
	if (dq->route != ROUTE_NONE && now < dq->route_expires)
		return;
	route_clear(dq);
	dq->route = ROUTE_RESOLVING;
	dq->route_error[0] = '\0';
	dq->route_expires = 0;
	dq->static_route = false;
	r = store_route_get(e->st, dq->domain, &hosts);
	if (r == 0) {
		dq->static_route = true;
		for (int i = 0; hosts[i]; i++) {
			char host[256];
			int port;
			route_split_host(hosts[i], (int)e->cfg->smtp_port, host,
			    sizeof(host), &port);
			if (route_is_ip(host))
				route_add_dest(e, dq, host, port, host, i);
			else if (route_lookup_start(e, dq, host, false, i, port, now) < 0)
				log_warn("route", "event=lookup_failed host=%s", host);
		}
		store_strv_free(hosts);
		if (dq->lookups == 0)
			dq->route_expires = now + ROUTE_STATIC_TTL_MS;
		route_done(e, dq, false);
		return;
	}
	if (r != STORE_ENOTFOUND)
		log_warn("route", "event=route_read_failed domain=%s error=\"%s\"",
		    dq->domain, store_errmsg(e->st));
	if (route_lookup_start(e, dq, dq->domain, true, 0, (int)e->cfg->smtp_port,
	    now) < 0) {
		dq->route = ROUTE_PERMFAIL;
		dq->dns_status = DNS_INVALID;
		str_copy(dq->route_error, "invalid domain", sizeof(dq->route_error));
		dq->route_expires = now + DNS_TEMPFAIL_TTL * 1000;
	}
}

void
route_forget_static(struct engine *e)
{
	struct dict_iter it;
	const char *k;
	void *v;

	/* A route change applies to the next session: re-route every queue
	 * that is not waiting for DNS. */
	dict_iter_init(&it);
	while (dict_next(e->dqs, &it, &k, &v)) {
		struct dq *dq = v;
		if (dq->route != ROUTE_RESOLVING)
			dq->route_expires = 1; /* in the past: re-route at the next run */
	}
}
