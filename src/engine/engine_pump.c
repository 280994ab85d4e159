/*
 * engine_pump.c: the pump. Keeps a bounded window of recipients of active
 * mailings in memory (settings pump_window, shared between the mailings),
 * claiming them from the store and handing them to their domain queues.
 * Memory does not grow with the size of a list: what is not in the window
 * stays "pending" in the store.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define PUMP_IDLE_RECHECK_MS 1000
#define PUMP_DOMAIN_MIN 50 /* recipients of one domain in memory, at least */

static struct mctx *
pump_find(struct engine *e, int64_t id)
{
	struct mctx *m;

	TAILQ_FOREACH(m, &e->mailings, link)
		if (m->id == id)
			return m;
	return NULL;
}

static void
pump_mctx_free(struct engine *e, struct mctx *m)
{
	TAILQ_REMOVE(&e->mailings, m, link);
	tmpl_free(m->tmpl);
	free(m);
}

/* Recipients still queued (not on a session) of an inactive mailing go back
 * to pending. */
static void
pump_drop_queued(struct engine *e, struct mctx *m, msec_t now)
{
	struct dict_iter it;
	const char *k;
	void *v;

	dict_iter_init(&it);
	while (dict_next(e->dqs, &it, &k, &v)) {
		struct dq *dq = v;
		struct rcpt *rc, *next;
		for (rc = TAILQ_FIRST(&dq->rcpts); rc; rc = next) {
			next = TAILQ_NEXT(rc, q);
			if (rc->m != m)
				continue;
			TAILQ_REMOVE(&dq->rcpts, rc, q);
			dq->n--;
			verdict_return(e, rc, now);
		}
	}
}

void
pump_reload(struct engine *e)
{
	struct store_mailing *ms = NULL;
	size_t n = 0;
	struct mctx *m, *next;
	msec_t now = time_now_ms();

	if (store_mailings_active(e->st, &ms, &n) < 0) {
		log_error("pump", "event=load_failed error=\"%s\"", store_errmsg(e->st));
		return;
	}
	TAILQ_FOREACH(m, &e->mailings, link)
		m->seen = false;
	for (size_t i = 0; i < n; i++) {
		char err[512];
		struct tmpl *t;

		m = pump_find(e, ms[i].id);
		if (m) {
			m->seen = true;
			m->active = true;
			m->next_claim = 0;
			continue;
		}
		t = tmpl_new(ms[i].message, ms[i].message_len, err, sizeof(err));
		if (t == NULL) {
			/* The API validates messages; this is a stored message
			 * this version cannot parse. Leave it alone, say why. */
			log_error("pump", "event=mailing_unusable mailing=%lld error=\"%s\"",
			    (long long)ms[i].id, err);
			continue;
		}
		m = xcalloc(1, sizeof(*m));
		m->id = ms[i].id;
		m->tmpl = t;
		m->stream = engine_stream(e, ms[i].stream);
		str_copy(m->list, ms[i].list, sizeof(m->list));
		{
			const char *at = strrchr(ms[i].from ? ms[i].from : "", '@');
			str_copy(m->sender_domain, at ? at + 1 : "", sizeof(m->sender_domain));
		}
		m->active = true;
		m->seen = true;
		TAILQ_INSERT_TAIL(&e->mailings, m, link);
		log_info("pump", "event=mailing_active mailing=%lld list=%s stream=%s",
		    (long long)m->id, m->list, m->stream->name);
	}
	store_mailings_free(ms, n);
	for (m = TAILQ_FIRST(&e->mailings); m; m = next) {
		next = TAILQ_NEXT(m, link);
		if (m->seen)
			continue;
		if (m->active)
			log_info("pump", "event=mailing_inactive mailing=%lld", (long long)m->id);
		pump_drop_queued(e, m, now);
		m->active = false;
		if (m->inmem == 0)
			pump_mctx_free(e, m);
	}
}

/*
 * Domains not to pull for m now: those fully blocked for its stream, and
 * those that already hold their share of the window in memory. A domain
 * held back by its limits (or a slow receiver) must not fill the window and
 * starve the others: it keeps at most max(PUMP_DOMAIN_MIN, window / 20)
 * recipients in memory and the rest wait in the store.
 */
static const char **
pump_skip_list(struct engine *e, struct mctx *m, size_t *n)
{
	const char **skip = block_skip_list(e, m->stream->name, n);
	size_t cap = (size_t)e->cfg->pump_window / 20;
	struct dq *dq;

	if (cap < PUMP_DOMAIN_MIN)
		cap = PUMP_DOMAIN_MIN;
	TAILQ_FOREACH(dq, &e->ready, link) {
		if (dq->n < cap || dq->stream != m->stream)
			continue;
		e->skipbuf = xgrow(e->skipbuf, &e->skipcap, *n + 1, sizeof(*e->skipbuf));
		skip = e->skipbuf;
		skip[(*n)++] = dq->domain;
	}
	return skip;
}

static void
pump_claim(struct engine *e, struct mctx *m, size_t want, msec_t now)
{
	struct store_recipient *rs = NULL;
	size_t n = 0;

	const char **skip;
	size_t nskip = 0;

	skip = pump_skip_list(e, m, &nskip);
	engine_txn_touch(e);
	if (store_recipients_claim(e->st, m->id, now, want, skip, nskip, &rs, &n) < 0) {
		log_error("pump", "event=claim_failed mailing=%lld error=\"%s\"",
		    (long long)m->id, store_errmsg(e->st));
		m->next_claim = now + PUMP_IDLE_RECHECK_MS;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct rcpt *rc = xcalloc(1, sizeof(*rc));
		rc->r = rs[i];
		rs[i].name = NULL;
		rs[i].fields = NULL;
		rc->m = m;
		m->inmem++;
		e->inmem++;
		sched_dq_put(e, sched_dq_get(e, m->stream, rc->r.domain), rc);
	}
	store_recipients_free(rs, n);
	if (n < want) {
		msec_t due = 0;
		/* Nothing more is due now: ask again when the next one is. */
		if (store_mailing_next_due(e->st, m->id, &due) < 0 || due == 0 ||
		    due <= now)
			m->next_claim = now + PUMP_IDLE_RECHECK_MS;
		else
			m->next_claim = due;
	}
	if (n > 0) {
		log_debug("pump", "event=claimed mailing=%lld n=%zu", (long long)m->id, n);
		engine_sched_soon(e);
	}
}

void
pump_run(struct engine *e, msec_t now)
{
	struct mctx *m, *next;
	size_t nactive = 0, window = (size_t)e->cfg->pump_window, share;

	TAILQ_FOREACH(m, &e->mailings, link)
		if (m->active)
			nactive++;
	if (nactive == 0)
		return;
	share = window / nactive;
	if (share < 1)
		share = 1;
	for (m = TAILQ_FIRST(&e->mailings); m; m = next) {
		next = TAILQ_NEXT(m, link);
		if (!m->active) {
			if (m->inmem == 0)
				pump_mctx_free(e, m);
			continue;
		}
		if (now < m->next_claim)
			continue;
		/* Refill when a quarter of the share is free, in one claim. A
		 * domain held by its limits keeps up to its cap in memory; the
		 * rest of the window keeps moving. */
		if (m->inmem + share / 4 <= share)
			pump_claim(e, m, share - m->inmem, now);
		if (m->inmem == 0 && m->next_claim > now) {
			engine_txn_commit(e);
			if (store_mailing_finish_if_done(e->st, m->id, now) == 1) {
				log_info("pump", "event=mailing_done mailing=%lld",
				    (long long)m->id);
				pump_mctx_free(e, m);
			}
		}
	}
}

void
pump_expire(struct engine *e, msec_t now)
{
	struct mctx *m;

	if (e->cfg->max_age_s <= 0)
		return;
	TAILQ_FOREACH(m, &e->mailings, link) {
		int64_t n = 0;
		if (!m->active)
			continue;
		engine_txn_touch(e);
		if (store_mailing_expire(e->st, m->id, now - e->cfg->max_age_s * 1000, now,
		    &n) < 0)
			log_error("pump", "event=expire_failed mailing=%lld error=\"%s\"",
			    (long long)m->id, store_errmsg(e->st));
		else if (n > 0)
			log_info("pump", "event=expired mailing=%lld recipients=%lld",
			    (long long)m->id, (long long)n);
	}
}

void
pump_release(struct engine *e, struct rcpt *rc)
{
	struct mctx *m = rc->m;

	free(rc->r.name);
	free(rc->r.fields);
	free(rc);
	e->inmem--;
	m->inmem--;
	/* An inactive mailing's context is freed by pump_run or pump_reload,
	 * never here: callers may still hold it. */
}

void
pump_free_all(struct engine *e)
{
	struct dict_iter it;
	const char *k;
	void *v;
	msec_t now = time_now_ms();

	/* Queued recipients go back to pending, committed with the batch. */
	dict_iter_init(&it);
	while (dict_next(e->dqs, &it, &k, &v)) {
		struct dq *dq = v;
		struct rcpt *rc;
		while ((rc = TAILQ_FIRST(&dq->rcpts)) != NULL) {
			TAILQ_REMOVE(&dq->rcpts, rc, q);
			dq->n--;
			verdict_return(e, rc, now);
		}
		sched_dq_maybe_free(e, dq);
	}
	while (!TAILQ_EMPTY(&e->mailings))
		pump_mctx_free(e, TAILQ_FIRST(&e->mailings));
}
