/*
 * engine.c: the engine's life cycle, the engine_call queue, the periodic
 * tick that drives pump and scheduler, and the outcome batches (every store
 * write of the engine happens inside a transaction that is committed when
 * it holds batch_max_rows rows or is batch_max_ms old).
 */
#include "engine/engine_int.h"

#include <errno.h>
#include <event2/thread.h>
#include <stdlib.h>
#include <string.h>

#include "mail/verp.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define ENGINE_TICK_MS 250
#define ENGINE_STOP_GRACE_MS 10000

struct engine_callreq {
	struct engine_callreq *next;
	engine_call_fn fn;
	void *arg;
	int result;
	bool done;
	bool changes;   /* engine_call: reload afterwards; engine_read: no */
};

static void engine_tick_cb(evutil_socket_t fd, short what, void *arg);
static void engine_sched_cb(evutil_socket_t fd, short what, void *arg);
static void engine_call_cb(evutil_socket_t fd, short what, void *arg);
static void engine_commit_cb(evutil_socket_t fd, short what, void *arg);
static void engine_calls_close(struct engine *e);

struct engine *
engine_new(const struct settings *cfg, struct store *st, struct event_base *base)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	char err[256];

	e->cfg = cfg;
	e->st = st;
	e->base = base;
	TAILQ_INIT(&e->mailings);
	TAILQ_INIT(&e->ready);
	LIST_INIT(&e->conns);
	e->streams = dict_new();
	e->dqs = dict_new();
	e->dests = dict_new();
	e->pairs = dict_new();
	pthread_mutex_init(&e->call_lock, NULL);
	pthread_cond_init(&e->call_cond, NULL);
	e->tick_ev = event_new(base, -1, EV_PERSIST, engine_tick_cb, e);
	e->sched_ev = event_new(base, -1, 0, engine_sched_cb, e);
	e->call_ev = event_new(base, -1, 0, engine_call_cb, e);
	e->commit_ev = event_new(base, -1, 0, engine_commit_cb, e);
	e->dns = dns_new(base, cfg->dns_resolver, (int)cfg->dns_timeout_ms,
	    (size_t)cfg->dns_cache_max, err, sizeof(err));
	if (e->dns == NULL) {
		log_error("engine", "event=dns_init_failed error=\"%s\"", err);
		engine_free(e);
		return NULL;
	}
	e->ssl = smtpc_tls_ctx_new();
	e->rules = classify_rules_new();
	block_engine_init(e);
	e->verp_keylen = sizeof(e->verp_key);
	if (verp_key_load_or_create(cfg->verp_key_file, e->verp_key, &e->verp_keylen,
	    err, sizeof(err)) < 0) {
		log_error("engine", "event=verp_key_failed error=\"%s\"", err);
		engine_free(e);
		return NULL;
	}
	str_copy(e->bounce_domain, cfg->bounce_domain, sizeof(e->bounce_domain));
	e->dirty = true;
	return e;
}

void
engine_free(struct engine *e)
{
	const char *k;
	void *v;
	struct dict_iter it;

	if (e == NULL)
		return;
	engine_calls_close(e);
	/* DNS first: its cancelled callbacks still find their queues. */
	dns_free(e->dns);
	e->dns = NULL;
	sched_close_all(e, true);
	pump_free_all(e);
	if (e->in_txn)
		engine_txn_commit(e);
	dict_iter_init(&it);
	while (dict_next(e->pairs, &it, &k, &v))
		free(v);
	dict_free(e->pairs);
	dict_iter_init(&it);
	while (dict_next(e->dests, &it, &k, &v)) {
		struct dest *d = v;
		free(d->dqs);
		free(d);
	}
	dict_free(e->dests);
	dict_free(e->dqs);
	dict_iter_init(&it);
	while (dict_next(e->streams, &it, &k, &v)) {
		struct sctx *s = v;
		free(s->ips);
		free(s);
	}
	dict_free(e->streams);
	if (e->tick_ev)
		event_free(e->tick_ev);
	if (e->sched_ev)
		event_free(e->sched_ev);
	if (e->call_ev)
		event_free(e->call_ev);
	if (e->commit_ev)
		event_free(e->commit_ev);
	if (e->ssl)
		SSL_CTX_free(e->ssl);
	classify_rules_free(e->rules);
	block_engine_fini(e);
	limit_engine_fini(e);
	pthread_mutex_destroy(&e->call_lock);
	pthread_cond_destroy(&e->call_cond);
	free(e);
}

int
engine_start(struct engine *e)
{
	struct timeval tv = { 0, ENGINE_TICK_MS * 1000 };
	int64_t n = 0;

	if (store_recover_inflight(e->st, &n) < 0) {
		log_error("engine", "event=recover_failed error=\"%s\"", store_errmsg(e->st));
		return -1;
	}
	if (n > 0)
		log_info("engine", "event=recovered inflight=%lld", (long long)n);
	limit_engine_reload(e);
	block_engine_reload(e, time_now_ms());
	event_add(e->tick_ev, &tv);
	event_active(e->tick_ev, EV_TIMEOUT, 0);
	return 0;
}

bool
engine_failed(const struct engine *e)
{
	return e->store_failed;
}

void
engine_shutdown(struct engine *e)
{
	if (e->stopping)
		return;
	e->stopping = true;
	e->stop_deadline = time_mono_ms() + ENGINE_STOP_GRACE_MS;
	log_info("engine", "event=shutdown sessions=%d", sched_conn_count(e));
	sched_close_all(e, false);
	event_active(e->tick_ev, EV_TIMEOUT, 0);
}

/* ---- stream cache ------------------------------------------------------ */

struct sctx *
engine_stream(struct engine *e, const char *name)
{
	struct sctx *s = dict_get(e->streams, name);

	if (s)
		return s;
	s = xcalloc(1, sizeof(*s));
	str_copy(s->name, name, sizeof(s->name));
	if (store_stream_ips(e->st, name, &s->ips, &s->nips) < 0) {
		log_warn("engine", "event=stream_missing stream=%s error=\"%s\"", name,
		    store_errmsg(e->st));
		s->ips = NULL;
		s->nips = 0;
	}
	dict_set(e->streams, name, s);
	return s;
}

/* Refresh every cached stream's IP list in place (pointers stay valid). */
static void
engine_streams_reload(struct engine *e)
{
	struct dict_iter it;
	const char *k;
	void *v;

	dict_iter_init(&it);
	while (dict_next(e->streams, &it, &k, &v)) {
		struct sctx *s = v;
		struct store_ip *ips = NULL;
		size_t n = 0;
		if (store_stream_ips(e->st, s->name, &ips, &n) < 0) {
			ips = NULL;
			n = 0;
		}
		free(s->ips);
		s->ips = ips;
		s->nips = n;
	}
}

/* ---- batches ----------------------------------------------------------- */

void
engine_txn_touch(struct engine *e)
{
	if (!e->in_txn) {
		struct timeval tv = { e->cfg->batch_max_ms / 1000,
			(e->cfg->batch_max_ms % 1000) * 1000 };
		if (store_begin(e->st) < 0) {
			log_error("store", "event=begin_failed error=\"%s\"",
			    store_errmsg(e->st));
			return;
		}
		e->in_txn = true;
		e->txn_rows = 0;
		event_add(e->commit_ev, &tv);
	}
	if (++e->txn_rows >= (size_t)e->cfg->batch_max_rows)
		event_active(e->commit_ev, EV_TIMEOUT, 0);
}

void
engine_txn_commit(struct engine *e)
{
	if (!e->in_txn)
		return;
	event_del(e->commit_ev);
	if (store_commit(e->st) < 0) {
		/* Outcomes that are not recorded must not be sent on: the
		 * engine stops, and the next start returns every inflight
		 * recipient to pending (at least once, never lost). */
		log_error("store", "event=commit_failed rows=%zu action=shutdown error=\"%s\"",
		    e->txn_rows, store_errmsg(e->st));
		store_rollback(e->st);
		e->in_txn = false;
		e->txn_rows = 0;
		e->store_failed = true;
		engine_shutdown(e);
		return;
	} else {
		log_trace("store", "event=commit rows=%zu", e->txn_rows);
	}
	e->in_txn = false;
	e->txn_rows = 0;
}

static void
engine_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	engine_txn_commit(arg);
}

/* ---- tick ---------------------------------------------------------------- */

void
engine_sched_soon(struct engine *e)
{
	if (!e->stopping)
		event_active(e->sched_ev, EV_TIMEOUT, 0);
}

static void
engine_sched_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	sched_run(e, time_now_ms());
}

static void
engine_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	msec_t now = time_now_ms();

	if (e->stopping) {
		if (sched_conn_count(e) == 0 || time_mono_ms() >= e->stop_deadline) {
			sched_close_all(e, true);
			pump_free_all(e);
			engine_txn_commit(e);
			log_info("engine", "event=stopped");
			engine_calls_close(e);
			event_base_loopbreak(e->base);
		}
		return;
	}
	if (e->dirty) {
		e->dirty = false;
		engine_streams_reload(e);
		route_forget_static(e);
		limit_engine_reload(e);
		block_engine_reload(e, now);
		pump_reload(e);
	}
	if (now >= e->next_expiry) {
		pump_expire(e, now);
		e->next_expiry = now + 60000;
	}
	pump_run(e, now);
	sched_run(e, now);
	block_probe_run(e, now);
}

/* ---- engine_call --------------------------------------------------------- */

static void
engine_call_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct engine_callreq *list, *r;
	bool changed = false;

	pthread_mutex_lock(&e->call_lock);
	list = e->calls;
	e->calls = NULL;
	pthread_mutex_unlock(&e->call_lock);
	/* Calls run outside the batch: their changes commit at once. */
	engine_txn_commit(e);
	for (r = list; r; ) {
		struct engine_callreq *next = r->next;
		int result = r->fn(e, e->st, r->arg);
		if (r->changes)
			changed = true;
		pthread_mutex_lock(&e->call_lock);
		r->result = result;
		r->done = true;
		pthread_cond_broadcast(&e->call_cond);
		pthread_mutex_unlock(&e->call_lock);
		r = next;
	}
	if (changed) {
		e->dirty = true;
		event_active(e->tick_ev, EV_TIMEOUT, 0);
	}
}

/* The loop is ending: calls waiting and calls to come fail with -ESHUTDOWN,
 * so no API thread waits for a loop that will not run them. */
static void
engine_calls_close(struct engine *e)
{
	struct engine_callreq *r;

	pthread_mutex_lock(&e->call_lock);
	e->calls_closed = true;
	for (r = e->calls; r; r = r->next) {
		r->result = -ESHUTDOWN;
		r->done = true;
	}
	e->calls = NULL;
	pthread_cond_broadcast(&e->call_cond);
	pthread_mutex_unlock(&e->call_lock);
}

static int
engine_call_run(struct engine *e, engine_call_fn fn, void *arg, bool changes)
{
	struct engine_callreq req = { .fn = fn, .arg = arg, .changes = changes };

	pthread_mutex_lock(&e->call_lock);
	if (e->calls_closed) {
		pthread_mutex_unlock(&e->call_lock);
		return -ESHUTDOWN;
	}
	req.next = e->calls;
	e->calls = &req;
	pthread_mutex_unlock(&e->call_lock);
	event_active(e->call_ev, EV_TIMEOUT, 0);
	pthread_mutex_lock(&e->call_lock);
	while (!req.done)
		pthread_cond_wait(&e->call_cond, &e->call_lock);
	pthread_mutex_unlock(&e->call_lock);
	return req.result;
}

int
engine_call(struct engine *e, engine_call_fn fn, void *arg)
{
	return engine_call_run(e, fn, arg, true);
}

int
engine_read(struct engine *e, engine_call_fn fn, void *arg)
{
	return engine_call_run(e, fn, arg, false);
}

json_t *
engine_status_json(struct engine *e)
{
	struct mctx *m;
	json_t *ms = json_array();

	TAILQ_FOREACH(m, &e->mailings, link)
		json_array_append_new(ms, json_pack("{s:I,s:s,s:b,s:I}", "id", (json_int_t)m->id,
		    "stream", m->stream ? m->stream->name : "", "active", m->active,
		    "in_memory", (json_int_t)m->inmem));
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:o}",
	    "sessions", (json_int_t)sched_conn_count(e),
	    "sessions_opened", (json_int_t)e->n_sessions,
	    "recipients_in_memory", (json_int_t)e->inmem,
	    "domain_queues", (json_int_t)dict_count(e->dqs),
	    "attempts", (json_int_t)e->n_attempts,
	    "sent", (json_int_t)e->n_sent,
	    "deferred", (json_int_t)e->n_deferred,
	    "failed", (json_int_t)e->n_failed,
	    "stopping", e->stopping,
	    "mailings", ms);
}

json_t *
engine_domains_json(struct engine *e)
{
	json_t *out = json_array();
	struct dict_iter it;
	const char *k;
	void *v;

	/* Queues with recipients in memory ... */
	dict_iter_init(&it);
	while (dict_next(e->dqs, &it, &k, &v)) {
		struct dq *dq = v;
		json_t *d;
		if (dq->n == 0 || dict_get(e->fullblocked, dq->key))
			continue;
		d = block_domain_json(e, dq->stream->name, dq->domain, dq);
		json_object_set_new(d, "waiting", json_integer((json_int_t)dq->n));
		json_array_append_new(out, d);
	}
	/* ... and the fully blocked domains, whose recipients wait in the store. */
	dict_iter_init(&it);
	while (dict_next(e->fullblocked, &it, &k, &v)) {
		const char *tab = strchr(k, '\t');
		char stream[128];
		int64_t waiting = 0;
		json_t *d;
		size_t len = tab ? (size_t)(tab - k) : 0;

		if (tab == NULL || len >= sizeof(stream))
			continue;
		memcpy(stream, k, len);
		stream[len] = '\0';
		(void)store_domain_waiting(e->st, stream, tab + 1, &waiting);
		d = block_domain_json(e, stream, tab + 1, NULL);
		json_object_set_new(d, "waiting", json_integer((json_int_t)waiting));
		json_array_append_new(out, d);
	}
	return json_pack("{s:o}", "domains", out);
}

static struct mctx *
engine_mailing(struct engine *e, int64_t id)
{
	struct mctx *m;

	TAILQ_FOREACH(m, &e->mailings, link)
		if (m->id == id)
			return m;
	return NULL;
}

json_t *
engine_mailing_json(struct engine *e, int64_t mailing_id)
{
	struct mctx *m = engine_mailing(e, mailing_id);
	json_t *blocked = json_array();
	size_t n = 0;
	const char **skip;
	bool waiting = false;

	if (m == NULL)
		return json_pack("{s:b,s:o,s:I}", "waiting_on_blocks", 0,
		    "blocked_domains", blocked, "in_memory", (json_int_t)0);
	skip = block_skip_list(e, m->stream->name, &n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(blocked, json_string(skip[i]));
	/* Every recipient still waiting is in a fully blocked domain. */
	if (n > 0) {
		struct store_counts c;
		int64_t nblocked = 0, k;
		for (size_t i = 0; i < n; i++)
			if (store_mailing_domain_waiting(e->st, m->id, skip[i], &k) == 0)
				nblocked += k;
		if (store_mailing_counts(e->st, m->id, &c) == 0 && c.inflight == 0 &&
		    c.pending + c.deferred > 0 && nblocked == c.pending + c.deferred)
			waiting = true;
	}
	return json_pack("{s:b,s:o,s:I}", "waiting_on_blocks", waiting, "blocked_domains",
	    blocked, "in_memory", (json_int_t)m->inmem);
}

/* "41 min", "50 s", "2 h 5 min" */
static void
engine_fmt_in(msec_t ms, char *out, size_t n)
{
	int64_t s = ms > 0 ? (ms + 999) / 1000 : 0;

	if (s < 60)
		snprintf(out, n, "%lld s", (long long)s);
	else if (s < 3600)
		snprintf(out, n, "%lld min", (long long)((s + 59) / 60));
	else
		snprintf(out, n, "%lld h %lld min", (long long)(s / 3600),
		    (long long)((s % 3600) / 60));
}

json_t *
engine_explain_json(struct engine *e, int64_t mailing_id, const char *email,
    const char *domain)
{
	struct mctx *m = engine_mailing(e, mailing_id);
	char key[400], reason[600], in[64];
	struct dq *dq;
	json_t *d;
	json_int_t pairs, blocked, next;
	const char *status;

	if (m == NULL || domain == NULL)
		return json_object();
	snprintf(key, sizeof(key), "%s\t%s", m->stream->name, domain);
	dq = dict_get(e->dqs, key);
	if (dq == NULL && dict_get(e->fullblocked, key) == NULL)
		return json_object();
	d = block_domain_json(e, m->stream->name, domain, dq);
	status = json_string_value(json_object_get(d, "status"));
	pairs = json_integer_value(json_object_get(d, "pairs"));
	blocked = json_integer_value(json_object_get(d, "pairs_blocked"));
	next = json_integer_value(json_object_get(d, "next_probe"));
	if (strcmp(status, "fully_blocked") == 0) {
		if (next > 0)
			engine_fmt_in(next - time_now_ms(), in, sizeof(in));
		snprintf(reason, sizeof(reason),
		    "domain %s fully blocked for stream %s: %lld of %lld pairs blocked, %s%s",
		    domain, m->stream->name, (long long)blocked, (long long)pairs,
		    next > 0 ? "next probe in " : "every block is permanent",
		    next > 0 ? in : "");
	} else if (strcmp(status, "partly_blocked") == 0) {
		snprintf(reason, sizeof(reason),
		    "domain %s partly blocked for stream %s: %lld of %lld pairs blocked; sending on the others",
		    domain, m->stream->name, (long long)blocked, (long long)pairs);
	} else if (json_is_object(json_object_get(d, "limit"))) {
		json_t *l = json_object_get(d, "limit");
		json_int_t at = json_integer_value(json_object_get(l, "retry_at"));
		if (at > 0)
			engine_fmt_in(at - time_now_ms(), in, sizeof(in));
		snprintf(reason, sizeof(reason), "waiting for a slot: %s%s%s",
		    json_string_value(json_object_get(l, "why")),
		    at > 0 ? "; next slot in " : "; a slot opens when a session closes",
		    at > 0 ? in : "");
	} else {
		json_decref(d);
		return json_object();
	}
	json_object_set_new(d, "reason", json_string(reason));
	json_object_set_new(d, "blocked_pairs", json_integer(blocked));
	(void)email;
	return d;
}
