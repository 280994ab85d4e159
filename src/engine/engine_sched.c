/*
 * engine_sched.c: sched and the SMTP sessions. Picks a (source IP, MX IP)
 * pair for each domain queue with work, reuses idle sessions of the pair
 * (for any domain that MX serves), opens new ones up to the simultaneous
 * limit of the pair (default 10, DESIGN 5.3), and spreads new sessions over
 * the stream's IPs by choosing the least loaded pair. A pair whose sessions
 * fail to set up is rested (5 s doubling to 5 min); when every pair of a
 * queue is resting and none is open, the queue's recipients are deferred
 * with the last error.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "mail/verp.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define SCHED_REST_MIN_MS 5000
#define SCHED_REST_MAX_MS 300000
#define SCHED_STICKY_SCAN 64

static void conn_next_work(struct conn *c, struct dq *prefer);

/* ---- queues, dests, pairs -------------------------------------------- */

struct dq *
sched_dq_get(struct engine *e, struct sctx *s, const char *domain)
{
	char key[400];
	struct dq *dq;

	snprintf(key, sizeof(key), "%s\t%s", s->name, domain);
	dq = dict_get(e->dqs, key);
	if (dq)
		return dq;
	dq = xcalloc(1, sizeof(*dq));
	str_copy(dq->key, key, sizeof(dq->key));
	str_copy(dq->domain, domain, sizeof(dq->domain));
	dq->stream = s;
	TAILQ_INIT(&dq->rcpts);
	dict_set(e->dqs, key, dq);
	return dq;
}

void
sched_dq_put(struct engine *e, struct dq *dq, struct rcpt *rc)
{
	rc->dq = dq;
	if (!dq->in_ready) {
		TAILQ_INSERT_TAIL(&e->ready, dq, link);
		dq->in_ready = true;
	}
	TAILQ_INSERT_TAIL(&dq->rcpts, rc, q);
	dq->n++;
}

void
sched_dq_maybe_free(struct engine *e, struct dq *dq)
{
	if (dq->n > 0 || dq->lookups > 0 || dq->opening > 0 ||
	    dq->route == ROUTE_RESOLVING)
		return;
	if (dq->in_ready)
		TAILQ_REMOVE(&e->ready, dq, link);
	for (size_t i = 0; i < dq->ndests; i++)
		sched_dest_unlink(dq->dests[i], dq);
	dict_del(e->dqs, dq->key);
	free(dq);
}

struct dest *
sched_dest_get(struct engine *e, const char *ip, int port, const char *host)
{
	char key[128];
	struct dest *d;

	snprintf(key, sizeof(key), "%s:%d", ip, port);
	d = dict_get(e->dests, key);
	if (d)
		return d;
	d = xcalloc(1, sizeof(*d));
	str_copy(d->ip, ip, sizeof(d->ip));
	d->port = port;
	str_copy(d->host, host, sizeof(d->host));
	dict_set(e->dests, key, d);
	return d;
}

void
sched_dest_link(struct dest *d, struct dq *dq)
{
	d->dqs = xgrow(d->dqs, &d->capdqs, d->ndqs + 1, sizeof(*d->dqs));
	d->dqs[d->ndqs++] = dq;
}

void
sched_dest_unlink(struct dest *d, struct dq *dq)
{
	for (size_t i = 0; i < d->ndqs; i++) {
		if (d->dqs[i] == dq) {
			d->dqs[i] = d->dqs[--d->ndqs];
			return;
		}
	}
}

static struct pair *
sched_pair_find(struct engine *e, const char *src, struct dest *d)
{
	char key[200];

	snprintf(key, sizeof(key), "%s|%s:%d", src, d->ip, d->port);
	return dict_get(e->pairs, key);
}

static struct pair *
sched_pair_get(struct engine *e, const struct store_ip *ip, struct dest *d)
{
	char key[200];
	struct pair *p;

	snprintf(key, sizeof(key), "%s|%s:%d", ip->ip, d->ip, d->port);
	p = dict_get(e->pairs, key);
	if (p == NULL) {
		p = xcalloc(1, sizeof(*p));
		p->dest = d;
		str_copy(p->src, ip->ip, sizeof(p->src));
		TAILQ_INIT(&p->idle);
		dict_set(e->pairs, key, p);
	}
	/* The stream's current HELO for this IP applies to new sessions. */
	str_copy(p->helo, ip->helo[0] ? ip->helo : e->cfg->hostname, sizeof(p->helo));
	return p;
}

static bool
sched_stream_has_ip(const struct sctx *s, const char *ip)
{
	for (size_t i = 0; i < s->nips; i++)
		if (strcmp(s->ips[i].ip, ip) == 0)
			return true;
	return false;
}

static bool
sched_dq_has_dest(const struct dq *dq, const struct dest *d)
{
	for (size_t i = 0; i < dq->ndests; i++)
		if (dq->dests[i] == d)
			return true;
	return false;
}

/* Does a recipient greylisted from ip still have to go out from it? Only
 * while ip is in the stream and not blocked towards every MX address of
 * the queue. */
static bool
sched_sticky_holds(struct engine *e, const struct dq *dq, const char *ip)
{
	if (ip[0] == '\0' || !sched_stream_has_ip(dq->stream, ip))
		return false;
	for (size_t i = 0; i < dq->ndests; i++)
		if (!block_table_is_blocked(e->blocks, ip, dq->dests[i]->ip))
			return true;
	return false;
}

/* The first queued recipient that may go out from src (greylisting keeps a
 * recipient on the IP it was greylisted from while that IP can be used). */
static struct rcpt *
sched_take(struct engine *e, struct dq *dq, const char *src)
{
	struct rcpt *rc;
	int scanned = 0;

	TAILQ_FOREACH(rc, &dq->rcpts, q) {
		if (strcmp(rc->r.sticky_ip, src) == 0 ||
		    !sched_sticky_holds(e, dq, rc->r.sticky_ip))
			break;
		if (++scanned >= SCHED_STICKY_SCAN) {
			rc = NULL;
			break;
		}
	}
	if (rc == NULL)
		return NULL;
	TAILQ_REMOVE(&dq->rcpts, rc, q);
	dq->n--;
	return rc;
}

/* ---- sessions ------------------------------------------------------------ */

static void conn_ready_cb(struct smtpc *s, void *arg);
static void conn_done_cb(struct smtpc *s, const struct smtpc_result *r, void *arg);
static void conn_closed_cb(struct smtpc *s, const struct smtpc_result *r, void *arg);

static const struct smtpc_callbacks conn_callbacks = {
	.ready = conn_ready_cb,
	.done = conn_done_cb,
	.closed = conn_closed_cb,
};

static void
conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state != CONN_IDLE)
		return;
	TAILQ_REMOVE(&c->p->idle, c, idle_link);
	c->state = CONN_CLOSING;
	smtpc_quit(c->s);
}

static void
conn_free(struct conn *c)
{
	struct engine *e = c->e;

	if (c->state == CONN_IDLE)
		TAILQ_REMOVE(&c->p->idle, c, idle_link);
	if (c->state == CONN_OPENING && c->opener) {
		c->opener->opening--;
		sched_dq_maybe_free(e, c->opener);
	}
	LIST_REMOVE(c, all_link);
	e->nconns--;
	c->p->nconn--;
	limit_closed(e, c);
	if (c->idle_ev)
		event_free(c->idle_ev);
	smtpc_free(c->s);
	free(c);
}

static void
conn_log(struct conn *c, const char *error)
{
	struct engine *e = c->e;
	struct store_connection sc = {
		.opened = c->opened,
		.closed = time_now_ms(),
		.stream = c->stream,
		.source_ip = c->p->src,
		.mx_host = c->p->dest->host,
		.mx_ip = c->p->dest->ip,
		.messages = c->messages,
		.tls = c->s ? smtpc_is_tls(c->s) : false,
		.error = error,
	};

	engine_txn_touch(e);
	if (store_connection_add(e->st, &sc) < 0)
		log_warn("store", "event=connection_log_failed error=\"%s\"",
		    store_errmsg(e->st));
}

void
sched_smtpc_config(struct engine *e, const char *src, const char *helo,
    const char *ip, int port, struct smtpc_config *cfg)
{
	const struct settings *s = e->cfg;

	memset(cfg, 0, sizeof(*cfg));
	str_copy(cfg->source_ip, src, sizeof(cfg->source_ip));
	str_copy(cfg->dest_ip, ip, sizeof(cfg->dest_ip));
	cfg->dest_port = port;
	str_copy(cfg->helo, helo, sizeof(cfg->helo));
	cfg->starttls = s->tls != 0;
	cfg->ssl_ctx = e->ssl;
	cfg->t_connect = (int)(s->t_connect * 1000);
	cfg->t_greeting = (int)(s->t_greeting * 1000);
	cfg->t_ehlo = (int)(s->t_ehlo * 1000);
	cfg->t_starttls = (int)(s->t_starttls * 1000);
	cfg->t_mail = (int)(s->t_mail * 1000);
	cfg->t_rcpt = (int)(s->t_rcpt * 1000);
	cfg->t_data = (int)(s->t_data * 1000);
	cfg->t_data_block = (int)(s->t_data_block * 1000);
	cfg->t_dot = (int)(s->t_dot * 1000);
	cfg->t_rset = (int)(s->t_rset * 1000);
	cfg->t_quit = (int)(s->t_quit * 1000);
}

static void
sched_open(struct engine *e, struct pair *p, struct dq *dq, msec_t now)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct smtpc_config cfg;

	sched_smtpc_config(e, p->src, p->helo, p->dest->ip, p->dest->port, &cfg);
	c->e = e;
	c->p = p;
	c->opener = dq;
	str_copy(c->stream, dq->stream->name, sizeof(c->stream));
	c->opened = now;
	c->state = CONN_OPENING;
	c->idle_ev = evtimer_new(e->base, conn_idle_cb, c);
	c->s = smtpc_new(e->base, &cfg, &conn_callbacks, c);
	LIST_INSERT_HEAD(&e->conns, c, all_link);
	e->nconns++;
	p->nconn++;
	dq->opening++;
	limit_opened(e, c, dq);
	e->n_sessions++;
	log_debug("sched", "event=open src=%s mx=%s:%d domain=%s nconn=%d", p->src,
	    p->dest->ip, p->dest->port, dq->domain, p->nconn);
	if (smtpc_open(c->s) < 0) {
		const char *why = smtpc_error(c->s);
		log_warn("sched", "event=open_failed src=%s mx=%s error=\"%s\"", p->src,
		    p->dest->ip, why);
		p->failures++;
		p->down_until = now + SCHED_REST_MIN_MS;
		str_copy(p->last_error, why, sizeof(p->last_error));
		p->last_code = 0;
		conn_free(c);
	}
}

static void
conn_send(struct conn *c, struct rcpt *rc)
{
	struct engine *e = c->e;
	struct buf msg;
	char from[512], msgid[512], date[64];
	struct tmpl_vars v;
	msec_t now = time_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;

	c->cur = rc;
	c->state = CONN_BUSY;
	c->started = now;
	if (verp_encode(e->verp_key, e->verp_keylen, e->bounce_domain, rc->m->id,
	    rc->r.member_id, from, sizeof(from)) < 0)
		from[0] = '\0';
	snprintf(msgid, sizeof(msgid), "<%lld.%lld.%lld@%s>", (long long)rc->m->id,
	    (long long)rc->r.member_id, (long long)now, e->cfg->hostname);
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	memset(&v, 0, sizeof(v));
	v.email = rc->r.email;
	v.name = rc->r.name ? rc->r.name : "";
	v.domain = rc->r.domain;
	v.fields_json = rc->r.fields ? rc->r.fields : "{}";
	v.message_id = msgid;
	v.date = date;
	buf_init(&msg, (size_t)e->cfg->message_max_bytes + 65536);
	if (tmpl_render(rc->m->tmpl, &v, &msg) < 0 ||
	    smtpc_send(c->s, from, rc->r.email, msg.data, msg.len) < 0) {
		struct verdict_in in = {
			.stage = "mail", .net_error = true,
			.text = msg.len >= msg.max ? "personalised message too large" :
			    "message could not be handed to the session",
			.source_ip = c->p->src, .mx_host = c->p->dest->host,
			.mx_ip = c->p->dest->ip, .pair = c->p,
		};
		c->cur = NULL;
		buf_fini(&msg);
		verdict_apply(e, rc, &in, now);
		c->state = CONN_CLOSING;
		smtpc_quit(c->s);
		return;
	}
	buf_fini(&msg);
	e->n_attempts++;
	limit_sent(e, c, now);
}

/* The next recipient of dq for session c, if its limits let it go now. */
static struct rcpt *
sched_take_for(struct conn *c, struct dq *dq, msec_t now)
{
	struct rcpt *head = TAILQ_FIRST(&dq->rcpts);

	if (head == NULL || dq->route != ROUTE_OK || !sched_dq_has_dest(dq, c->p->dest) ||
	    !limit_may_send(c->e, c, dq, head, now))
		return NULL;
	return sched_take(c->e, dq, c->p->src);
}

/* Find work for a session that is ready or just finished a transaction:
 * prefer's recipients first, then any queue routed to the same MX address
 * whose stream has this source IP. */
static void
conn_next_work(struct conn *c, struct dq *prefer)
{
	struct engine *e = c->e;
	struct dest *d = c->p->dest;
	struct rcpt *rc = NULL;
	struct timeval tv = { e->cfg->idle_s, 0 };
	msec_t now = time_now_ms();
	bool spent = c->mpc > 0 && c->messages >= c->mpc;

	if (!e->stopping && !spent && !block_pair_is_blocked(e, c->p)) {
		if (prefer && prefer->n > 0)
			rc = sched_take_for(c, prefer, now);
		for (size_t i = 0; rc == NULL && i < d->ndqs; i++) {
			struct dq *dq = d->dqs[i];
			if (dq->n > 0 && sched_stream_has_ip(dq->stream, c->p->src))
				rc = sched_take_for(c, dq, now);
		}
	}
	if (rc) {
		/* A queue emptied here stays on the ready list: sched_run
		 * frees it, so callers may still hold it. */
		conn_send(c, rc);
		return;
	}
	if (e->stopping || spent || block_pair_is_blocked(e, c->p)) {
		c->state = CONN_CLOSING;
		smtpc_quit(c->s);
		if (spent)
			engine_sched_soon(e); /* a new session takes over */
		return;
	}
	c->state = CONN_IDLE;
	TAILQ_INSERT_HEAD(&c->p->idle, c, idle_link);
	evtimer_add(c->idle_ev, &tv);
}

static void
conn_ready_cb(struct smtpc *s, void *arg)
{
	struct conn *c = arg;
	struct dq *opener = c->opener;

	c->p->failures = 0;
	c->p->down_until = 0;
	c->opener = NULL;
	c->state = CONN_BUSY; /* neither opening nor in the idle list */
	if (opener) {
		opener->opening--;
		conn_next_work(c, opener);
		sched_dq_maybe_free(c->e, opener);
	} else {
		conn_next_work(c, NULL);
	}
	engine_sched_soon(c->e);
}

static void
conn_done_cb(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct conn *c = arg;
	struct engine *e = c->e;
	struct rcpt *rc = c->cur;
	struct verdict_in in = {
		.stage = smtpc_stage_name(r->stage),
		.net_error = r->net_error,
		.code = r->net_error ? 0 : r->reply.code,
		.enhanced = r->net_error ? "" : r->reply.enhanced,
		.text = r->net_error ? r->error : r->reply.text,
		.source_ip = c->p->src,
		.mx_host = c->p->dest->host,
		.mx_ip = c->p->dest->ip,
		.duration_ms = r->duration_ms,
		.pair = c->p,
	};

	c->cur = NULL;
	c->messages++;
	if (rc)
		verdict_apply(e, rc, &in, time_now_ms());
	if (c->state == CONN_CLOSING) {
		smtpc_quit(c->s);
		return;
	}
	if (smtpc_is_idle(s))
		conn_next_work(c, NULL);
	else
		c->state = CONN_CLOSING; /* closed follows */
}

static void
conn_closed_cb(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct conn *c = arg;
	struct engine *e = c->e;
	struct pair *p = c->p;
	msec_t now = time_now_ms();
	char error[512] = "";

	if (c->state == CONN_OPENING) {
		int64_t rest = SCHED_REST_MIN_MS;
		for (int i = 0; i < p->failures && rest < SCHED_REST_MAX_MS; i++)
			rest *= 2;
		if (rest > SCHED_REST_MAX_MS)
			rest = SCHED_REST_MAX_MS;
		p->failures++;
		p->down_until = now + rest;
		if (r->net_error) {
			snprintf(error, sizeof(error), "%s: %s", smtpc_stage_name(r->stage),
			    r->error);
			p->last_code = 0;
		} else {
			snprintf(error, sizeof(error), "%s: %d %s%s%s",
			    smtpc_stage_name(r->stage), r->reply.code, r->reply.enhanced,
			    r->reply.enhanced[0] ? " " : "", r->reply.text);
			p->last_code = r->reply.code;
		}
		str_copy(p->last_error, error, sizeof(p->last_error));
		if (!r->net_error) {
			block_on_refusal(e, p, c->stream, c->opener ? c->opener->domain : "",
			    r->reply.code, r->reply.enhanced, r->reply.text, now);
			if (classify_reply(e->rules, r->reply.code, r->reply.enhanced,
			    r->reply.text) == CAT_RATE_LIMITED)
				limit_rate_limited(e, p, now);
		}
		log_info("sched", "event=session_failed src=%s mx=%s:%d stage=%s rest_ms=%lld error=\"%s\"",
		    p->src, p->dest->ip, p->dest->port, smtpc_stage_name(r->stage),
		    (long long)rest, r->net_error ? r->error : r->reply.text);
	} else if (!r->ok && r->stage != SMTPC_QUIT) {
		snprintf(error, sizeof(error), "%s: %s", smtpc_stage_name(r->stage),
		    r->net_error ? r->error : r->reply.text);
	}
	if (c->cur) {
		struct rcpt *rc = c->cur;
		struct verdict_in in = {
			.stage = smtpc_stage_name(r->stage), .net_error = true,
			.text = error[0] ? error : "session closed",
			.source_ip = p->src, .mx_host = p->dest->host, .mx_ip = p->dest->ip,
			.pair = p,
		};
		c->cur = NULL;
		verdict_apply(e, rc, &in, now);
	}
	conn_log(c, error[0] ? error : NULL);
	conn_free(c);
	engine_sched_soon(e);
}

/* ---- the scheduler ---------------------------------------------------- */

/* An idle session that can carry dq's next recipient now. */
static struct conn *
sched_find_idle(struct engine *e, struct dq *dq, msec_t now, struct rcpt **rcp)
{
	const struct sctx *s = dq->stream;
	struct conn *c;

	for (size_t d = 0; d < dq->ndests; d++) {
		for (size_t i = 0; i < s->nips; i++) {
			struct pair *p = sched_pair_find(e, s->ips[i].ip, dq->dests[d]);
			if (p == NULL || TAILQ_EMPTY(&p->idle) || block_pair_is_blocked(e, p))
				continue;
			TAILQ_FOREACH(c, &p->idle, idle_link) {
				if ((*rcp = sched_take_for(c, dq, now)) != NULL)
					return c;
			}
		}
	}
	return NULL;
}

/*
 * The pair for a new session: in the most preferred group of MX addresses
 * that has a pair not resting, the least loaded pair below its limit.
 * *all_down is set when every pair of every group is resting.
 */
static struct pair *
sched_pick_pair(struct engine *e, struct dq *dq, msec_t now, bool *all_down)
{
	const struct sctx *s = dq->stream;
	const char *sticky = NULL;
	struct rcpt *head = TAILQ_FIRST(&dq->rcpts);
	size_t d = 0;

	*all_down = true;
	if (head && sched_sticky_holds(e, dq, head->r.sticky_ip))
		sticky = head->r.sticky_ip;
	while (d < dq->ndests) {
		int pref = dq->prefs[d];
		struct pair *best = NULL;
		bool group_up = false;
		size_t end = d;

		while (end < dq->ndests && dq->prefs[end] == pref)
			end++;
		for (size_t k = d; k < end; k++) {
			for (size_t i = 0; i < s->nips; i++) {
				struct pair *p = sched_pair_get(e, &s->ips[i], dq->dests[k]);
				if (p->down_until > now || block_pair_is_blocked(e, p))
					continue;
				group_up = true;
				if (sticky && strcmp(p->src, sticky) != 0)
					continue;
				if (!limit_may_open(e, p, dq, now))
					continue;
				if (best == NULL || p->nconn < best->nconn)
					best = p;
			}
		}
		if (group_up) {
			*all_down = false;
			return best;
		}
		d = end;
	}
	return NULL;
}

static bool
sched_dq_has_sessions(struct engine *e, struct dq *dq)
{
	const struct sctx *s = dq->stream;

	if (dq->opening > 0)
		return true;
	for (size_t d = 0; d < dq->ndests; d++)
		for (size_t i = 0; i < s->nips; i++) {
			struct pair *p = sched_pair_find(e, s->ips[i].ip, dq->dests[d]);
			if (p && p->nconn > 0)
				return true;
		}
	return false;
}

/* Every recipient of the queue gets the same verdict (DNS failure, every
 * path resting). */
static void
sched_dq_fail_all(struct engine *e, struct dq *dq, const struct verdict_in *in,
    msec_t now)
{
	struct rcpt_list all;
	struct rcpt *rc;

	/* Take them all first: a verdict may put a recipient back in a
	 * queue, and it must wait for the next run, not loop here. */
	TAILQ_INIT(&all);
	TAILQ_CONCAT(&all, &dq->rcpts, q);
	dq->n = 0;
	while ((rc = TAILQ_FIRST(&all)) != NULL) {
		TAILQ_REMOVE(&all, rc, q);
		verdict_apply(e, rc, in, now);
	}
}

static void
sched_dq_run(struct engine *e, struct dq *dq, msec_t now)
{
	if (dq->route == ROUTE_NONE || (dq->route != ROUTE_RESOLVING &&
	    dq->route_expires && now >= dq->route_expires))
		route_dq(e, dq, now);
	if (dq->route == ROUTE_RESOLVING)
		return;
	if (dq->route == ROUTE_PERMFAIL) {
		struct verdict_in in = {
			.stage = "dns", .code = 550, .enhanced = "5.1.2",
			.text = dq->route_error,
		};
		if (dq->dns_status == DNS_NULLMX) {
			in.code = 556;
			in.enhanced = "5.1.10";
		}
		sched_dq_fail_all(e, dq, &in, now);
		return;
	}
	if (dq->route == ROUTE_TEMPFAIL) {
		struct verdict_in in = {
			.stage = "dns", .net_error = true, .text = dq->route_error,
		};
		sched_dq_fail_all(e, dq, &in, now);
		return;
	}
	if (block_dq_check_full(e, dq, now))
		return;
	if (dq->stream->nips == 0) {
		struct verdict_in in = {
			.stage = "connect", .net_error = true,
			.text = "the mailing's stream has no source IP",
		};
		sched_dq_fail_all(e, dq, &in, now);
		return;
	}
	while (dq->n > 0) {
		struct rcpt *rc = NULL;
		struct conn *c = sched_find_idle(e, dq, now, &rc);
		struct pair *p;
		bool all_down;

		if (c) {
			TAILQ_REMOVE(&c->p->idle, c, idle_link);
			evtimer_del(c->idle_ev);
			conn_send(c, rc);
			continue;
		}
		if ((size_t)dq->opening >= dq->n)
			break;
		p = sched_pick_pair(e, dq, now, &all_down);
		if (p) {
			sched_open(e, p, dq, now);
			continue;
		}
		if (all_down && !sched_dq_has_sessions(e, dq)) {
			/* Every path is resting after failures: the recipients
			 * wait with the error of the most preferred pair. */
			struct pair *first = sched_pair_get(e, &dq->stream->ips[0],
			    dq->dests[0]);
			/* A session failure, not a reply about these
			 * recipients: never a block or a bounce of theirs. */
			struct verdict_in in = {
				.stage = "connect", .net_error = true,
				.text = first->last_error[0] ? first->last_error :
				    "no MX address reachable",
				.source_ip = first->src, .mx_host = first->dest->host,
				.mx_ip = first->dest->ip,
			};
			sched_dq_fail_all(e, dq, &in, now);
		}
		break;
	}
}

void
sched_run(struct engine *e, msec_t now)
{
	struct dq *dq, *next;

	if (e->stopping)
		return;
	for (dq = TAILQ_FIRST(&e->ready); dq; dq = next) {
		next = TAILQ_NEXT(dq, link);
		sched_dq_run(e, dq, now);
		if (dq->n == 0) {
			TAILQ_REMOVE(&e->ready, dq, link);
			dq->in_ready = false;
			sched_dq_maybe_free(e, dq);
		}
	}
}

void
sched_close_all(struct engine *e, bool force)
{
	struct conn *c, *next;

	for (c = LIST_FIRST(&e->conns); c; c = next) {
		next = LIST_NEXT(c, all_link);
		if (force) {
			if (c->cur) {
				struct rcpt *rc = c->cur;
				c->cur = NULL;
				verdict_return(e, rc, time_now_ms());
			}
			conn_log(c, "abandoned at shutdown");
			conn_free(c);
		} else if (c->state == CONN_IDLE) {
			TAILQ_REMOVE(&c->p->idle, c, idle_link);
			c->state = CONN_CLOSING;
			smtpc_quit(c->s);
		} else if (c->state == CONN_BUSY) {
			c->state = CONN_CLOSING;
		} else if (c->state == CONN_OPENING) {
			if (c->opener) {
				c->opener->opening--;
				sched_dq_maybe_free(e, c->opener);
			}
			c->opener = NULL;
			c->state = CONN_CLOSING;
			smtpc_quit(c->s);
		}
	}
}

void
sched_close_pair(struct engine *e, const char *src, const char *ip)
{
	struct conn *c, *next;

	for (c = LIST_FIRST(&e->conns); c; c = next) {
		next = LIST_NEXT(c, all_link);
		if (strcmp(c->p->src, src) != 0 || strcmp(c->p->dest->ip, ip) != 0)
			continue;
		if (c->state == CONN_IDLE) {
			TAILQ_REMOVE(&c->p->idle, c, idle_link);
			evtimer_del(c->idle_ev);
			c->state = CONN_CLOSING;
			smtpc_quit(c->s);
		} else if (c->state == CONN_BUSY) {
			c->state = CONN_CLOSING;
		}
		/* opening sessions close when ready: conn_next_work */
	}
}

int
sched_conn_count(struct engine *e)
{
	return (int)e->nconns;
}
