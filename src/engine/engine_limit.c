/*
 * engine_limit.c: domain connection limits (DESIGN 5.3) in the engine. The
 * limits and macros of the store are compiled into a policy/limit set at
 * start and after every change (budgets carried over by id), so a change
 * applies at once to sessions opened afterwards. Every session records the
 * budgets it counts in; it carries only recipients whose limits are the
 * same, so the counts stay right when a connection serves several domains.
 * rate_limited replies lower the concurrency of their pair (an adaptive
 * window) that grows back as deliveries succeed.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"

void
limit_engine_reload(struct engine *e)
{
	struct limitset *ls = limitset_new();
	struct store_limit *lims = NULL;
	size_t n = 0;
	char **names = NULL;
	char ***domains = NULL;
	char err[256];

	if (store_macros_all(e->st, &names, &domains) == 0) {
		for (size_t i = 0; names && names[i]; i++) {
			size_t nd = 0;
			while (domains[i][nd])
				nd++;
			if (limitset_macro(ls, names[i], (const char *const *)domains[i], nd) < 0)
				log_warn("limit", "event=macro_unusable name=%s", names[i]);
		}
		store_macros_free(names, domains);
	}
	if (store_limits_all(e->st, &lims, &n) < 0) {
		log_error("limit", "event=load_failed error=\"%s\"", store_errmsg(e->st));
		limitset_free(ls);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct limit_spec sp = {
			.id = lims[i].id,
			.source = lims[i].source,
			.target = lims[i].target,
			.messages_per_hour = lims[i].messages_per_hour,
			.connections_per_hour = lims[i].connections_per_hour,
			.simultaneous = lims[i].simultaneous,
			.messages_per_connection = lims[i].messages_per_connection,
			.greylist_interval = lims[i].greylist_interval,
			.greylist_function = lims[i].greylist_function,
			.greylist_max = lims[i].greylist_max,
		};
		if (limitset_add(ls, &sp, err, sizeof(err)) < 0)
			log_warn("limit", "event=limit_unusable id=%lld error=\"%s\"",
			    (long long)lims[i].id, err);
	}
	free(lims);
	if (e->limits)
		limitset_carry(ls, e->limits);
	limitset_free(e->limits);
	e->limits = ls;
	log_debug("limit", "event=loaded limits=%zu", limitset_count(ls));
}

void
limit_engine_fini(struct engine *e)
{
	limitset_free(e->limits);
	e->limits = NULL;
}

size_t
limit_ids_for(struct engine *e, const struct pair *p, const struct dq *dq,
    const char *sender, int64_t *ids)
{
	struct limit_ctx ctx = {
		.source_ip = p->src,
		.stream = dq->stream->name,
		.sender_domain = sender,
		.rcpt_domain = dq->domain,
		.mx_host = p->dest->host,
		.mx_ip = p->dest->ip,
	};

	if (e->limits == NULL || limitset_count(e->limits) == 0)
		return 0;
	return limitset_match(e->limits, &ctx, ids);
}

static const char *
limit_head_sender(const struct dq *dq)
{
	const struct rcpt *rc = TAILQ_FIRST(&dq->rcpts);

	return rc ? rc->m->sender_domain : "";
}

static void
limit_hold(struct dq *dq, const struct limit_verdict *v, msec_t now)
{
	str_copy(dq->hold, v->why, sizeof(dq->hold));
	dq->hold_at = now;
	dq->hold_until = v->retry_at;
}

bool
limit_may_open(struct engine *e, struct pair *p, struct dq *dq, msec_t now)
{
	int64_t ids[LIMIT_MATCH_MAX];
	size_t n = limit_ids_for(e, p, dq, limit_head_sender(dq), ids);
	struct limit_verdict v;
	int allowed = limit_window_allowed(&p->win, (int)e->cfg->default_simultaneous);

	if (limit_window_is_paused(&p->win, now)) {
		memset(&v, 0, sizeof(v));
		snprintf(v.why, sizeof(v.why),
		    "rate limited by the receiver: %s -> %s paused, at most %d sessions",
		    p->src, p->dest->ip, allowed);
		v.retry_at = p->win.paused_until;
		limit_hold(dq, &v, now);
		return false;
	}
	if (p->win.cap > 0 && p->nconn >= allowed) {
		memset(&v, 0, sizeof(v));
		snprintf(v.why, sizeof(v.why),
		    "rate limited by the receiver: %d of %d sessions allowed on %s -> %s",
		    p->nconn, allowed, p->src, p->dest->ip);
		limit_hold(dq, &v, now);
		return false;
	}
	limitset_may_connect(e->limits, ids, n, p->nconn,
	    (int)e->cfg->default_simultaneous, now, &v);
	if (v.ok && n > 0) {
		/* A session opened for a message its rate does not let go yet
		 * would only hold a slot other domains of the MX can use. */
		limitset_may_send(e->limits, ids, n, now, &v);
	}
	if (!v.ok) {
		limit_hold(dq, &v, now);
		return false;
	}
	return true;
}

void
limit_opened(struct engine *e, struct conn *c, struct dq *dq)
{
	c->nlimit_ids = limit_ids_for(e, c->p, dq, limit_head_sender(dq), c->limit_ids);
	c->mpc = limitset_messages_per_connection(e->limits, c->limit_ids, c->nlimit_ids);
	limitset_connected(e->limits, c->limit_ids, c->nlimit_ids, time_now_ms());
	dq->hold_at = 0;
}

void
limit_closed(struct engine *e, struct conn *c)
{
	if (e->limits)
		limitset_disconnected(e->limits, c->limit_ids, c->nlimit_ids);
}

bool
limit_may_send(struct engine *e, struct conn *c, struct dq *dq, const struct rcpt *rc,
    msec_t now)
{
	int64_t ids[LIMIT_MATCH_MAX];
	size_t n;
	struct limit_verdict v;

	if (c->mpc > 0 && c->messages >= c->mpc)
		return false; /* the session closes; a new one opens */
	if (limit_window_is_paused(&c->p->win, now))
		return false;
	n = limit_ids_for(e, c->p, dq, rc ? rc->m->sender_domain : "", ids);
	if (n != c->nlimit_ids || memcmp(ids, c->limit_ids, n * sizeof(*ids)) != 0)
		return false; /* other budgets: another session */
	if (n == 0)
		return true;
	limitset_may_send(e->limits, ids, n, now, &v);
	if (!v.ok) {
		limit_hold(dq, &v, now);
		return false;
	}
	return true;
}

void
limit_sent(struct engine *e, struct conn *c, msec_t now)
{
	if (c->nlimit_ids)
		limitset_sent(e->limits, c->limit_ids, c->nlimit_ids, now);
}

void
limit_greylist_for(struct engine *e, const struct rcpt *rc, const struct pair *p,
    struct retry_greylist *g)
{
	struct retry_greylist dflt = {
		.interval_s = e->cfg->greylist_interval_s,
		.fn = (enum retry_greylist_fn)retry_greylist_fn_parse(e->cfg->greylist_function),
		.max_s = e->cfg->greylist_max_s,
	};
	int64_t ids[LIMIT_MATCH_MAX];
	size_t n = 0;
	struct limit_ctx ctx = {
		.source_ip = p ? p->src : "",
		.stream = rc->m->stream->name,
		.sender_domain = rc->m->sender_domain,
		.rcpt_domain = rc->r.domain,
		.mx_host = p ? p->dest->host : "",
		.mx_ip = p ? p->dest->ip : "",
	};

	if (e->limits && limitset_count(e->limits) > 0)
		n = limitset_match(e->limits, &ctx, ids);
	limitset_greylist(e->limits, ids, n, &dflt, g);
}

void
limit_rate_limited(struct engine *e, struct pair *p, msec_t now)
{
	int before = limit_window_allowed(&p->win, (int)e->cfg->default_simultaneous);

	limit_window_backoff(&p->win, p->nconn, now);
	log_info("limit", "event=rate_limited src=%s mx=%s sessions=%d allowed_before=%d allowed=%d pause_ms=%lld",
	    p->src, p->dest->ip, p->nconn, before,
	    limit_window_allowed(&p->win, (int)e->cfg->default_simultaneous),
	    (long long)(p->win.paused_until - now));
}

void
limit_delivered(struct engine *e, struct pair *p)
{
	int before = p->win.cap;

	limit_window_success(&p->win, (int)e->cfg->default_simultaneous);
	if (before == 0 || p->win.cap == before)
		return;
	if (p->win.cap == 0)
		log_info("limit", "event=rate_limit_recovered src=%s mx=%s", p->src,
		    p->dest->ip);
	else
		log_info("limit", "event=rate_limit_window src=%s mx=%s allowed=%d", p->src,
		    p->dest->ip, p->win.cap);
}
