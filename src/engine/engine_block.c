/*
 * engine_block.c: blocks (DESIGN 5.2) in the engine. A reply classified
 * ip_block (or a refusal at greeting naming our address) records a block
 * of the (source IP, MX IP) pair; the recipient goes out at once on another
 * pair and is not charged an attempt. No session opens on a blocked pair and
 * its open sessions close. When every pair between a stream's IPs and a
 * domain's MX addresses is blocked, the domain is fully blocked for that
 * stream: its queued recipients go back to pending and the pump skips the
 * domain until a block of it is released. Every standing block that is not
 * permanent is probed every probe_interval: greeting, EHLO, MAIL, RCPT (a
 * real waiting recipient where there is one), RSET, QUIT; accepted releases
 * the block.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define BLOCK_PROBES_MAX 8 /* probes under way at once */

struct fullblock {
	char stream[128];
	char domain[256];
	char mx[ENGINE_MAX_DESTS][64];
	size_t nmx;
	msec_t since;
};

struct probe {
	struct probe *next;
	struct engine *e;
	struct smtpc *s;
	struct store_block b;
	char rcpt[321];
	bool answered;
};

/* ---- loading ----------------------------------------------------------- */

void
block_engine_init(struct engine *e)
{
	e->blocks = block_table_new((int)e->cfg->block_threshold,
	    e->cfg->block_window_s * 1000);
	e->fullblocked = dict_new();
}

void
block_engine_fini(struct engine *e)
{
	struct dict_iter it;
	const char *k;
	void *v;

	while (e->probes) {
		struct probe *p = e->probes;
		e->probes = p->next;
		smtpc_free(p->s);
		free(p);
	}
	block_table_free(e->blocks);
	free(e->binfo);
	free(e->skipbuf);
	if (e->fullblocked) {
		dict_iter_init(&it);
		while (dict_next(e->fullblocked, &it, &k, &v))
			free(v);
		dict_free(e->fullblocked);
	}
}

static struct store_block *
block_info(struct engine *e, int64_t id)
{
	for (size_t i = 0; i < e->nbinfo; i++)
		if (e->binfo[i].id == id)
			return &e->binfo[i];
	return NULL;
}

static void
block_info_remove(struct engine *e, int64_t id)
{
	for (size_t i = 0; i < e->nbinfo; i++) {
		if (e->binfo[i].id == id) {
			e->binfo[i] = e->binfo[--e->nbinfo];
			return;
		}
	}
}

static void
block_table_add_info(struct engine *e, const struct store_block *b, bool probing)
{
	struct block_entry be;

	memset(&be, 0, sizeof(be));
	be.id = b->id;
	str_copy(be.src, b->source_ip, sizeof(be.src));
	str_copy(be.mx, b->mx_ip, sizeof(be.mx));
	be.next_probe = b->next_probe;
	be.permanent = b->permanent;
	be.probing = probing;
	block_table_put(e->blocks, &be);
}

/* The fully blocked domains that are no longer: pulled again. */
static void
block_recheck_full(struct engine *e, msec_t now)
{
	struct dict_iter it;
	const char *k;
	void *v;
	bool freed = false;

	dict_iter_init(&it);
	while (dict_next(e->fullblocked, &it, &k, &v)) {
		struct fullblock *fb = v;
		struct sctx *s = engine_stream(e, fb->stream);
		const char *srcs[64], *mxs[ENGINE_MAX_DESTS];
		struct block_coverage c;
		size_t ns = s->nips < 64 ? s->nips : 64;

		for (size_t i = 0; i < ns; i++)
			srcs[i] = s->ips[i].ip;
		for (size_t i = 0; i < fb->nmx; i++)
			mxs[i] = fb->mx[i];
		block_table_coverage(e->blocks, srcs, ns, mxs, fb->nmx, &c);
		if (block_coverage_is_full(&c))
			continue;
		log_info("block", "event=domain_unblocked stream=%s domain=%s pairs=%zu blocked=%zu",
		    fb->stream, fb->domain, c.pairs, c.blocked);
		dict_del(e->fullblocked, k);
		free(fb);
		freed = true;
	}
	if (freed) {
		struct mctx *m;
		TAILQ_FOREACH(m, &e->mailings, link)
			m->next_claim = 0; /* pull the domain again now */
	}
	(void)now;
}

void
block_engine_reload(struct engine *e, msec_t now)
{
	struct store_block *bs = NULL;
	size_t n = 0;

	block_table_configure(e->blocks, (int)e->cfg->block_threshold,
	    e->cfg->block_window_s * 1000);
	if (store_blocks_active(e->st, &bs, &n) < 0) {
		log_error("block", "event=load_failed error=\"%s\"", store_errmsg(e->st));
		return;
	}
	/* Probes under way keep their flag across the reload. */
	{
		bool *probing = xcalloc(n ? n : 1, sizeof(*probing));
		for (size_t i = 0; i < n; i++) {
			const struct block_entry *old = block_table_get(e->blocks, bs[i].id);
			probing[i] = old && old->probing;
		}
		block_table_clear(e->blocks);
		for (size_t i = 0; i < n; i++)
			block_table_add_info(e, &bs[i], probing[i]);
		free(probing);
	}
	free(e->binfo);
	e->binfo = bs;
	e->nbinfo = e->capbinfo = n;
	block_recheck_full(e, now);
}

/* ---- creating ------------------------------------------------------------ */

static void
block_create(struct engine *e, const char *src, const char *stream, const char *domain,
    const char *mx_host, const char *mx_ip, int code, const char *text, msec_t now)
{
	struct store_block b;
	char q[600];

	if (block_table_is_blocked(e->blocks, src, mx_ip))
		return;
	memset(&b, 0, sizeof(b));
	str_copy(b.stream, stream ? stream : "", sizeof(b.stream));
	str_copy(b.source_ip, src, sizeof(b.source_ip));
	str_copy(b.mx_ip, mx_ip, sizeof(b.mx_ip));
	str_copy(b.mx_host, mx_host ? mx_host : "", sizeof(b.mx_host));
	str_copy(b.domain, domain ? domain : "", sizeof(b.domain));
	str_copy(b.reason, text ? text : "", sizeof(b.reason));
	b.code = code;
	b.created = now;
	b.next_probe = now + e->cfg->block_probe_interval_s * 1000;
	engine_txn_touch(e);
	if (store_block_add(e->st, &b, now) < 0) {
		log_error("block", "event=store_failed error=\"%s\"", store_errmsg(e->st));
		return;
	}
	/* The block must survive a crash from here on. */
	engine_txn_commit(e);
	e->binfo = xgrow(e->binfo, &e->capbinfo, e->nbinfo + 1, sizeof(*e->binfo));
	e->binfo[e->nbinfo++] = b;
	block_table_add_info(e, &b, false);
	log_warn("block", "event=block_created id=%lld stream=%s src=%s mx=%s mx_host=%s domain=%s code=%d reason=%s",
	    (long long)b.id, b.stream, src, mx_ip, b.mx_host, b.domain, code,
	    log_quote(q, sizeof(q), b.reason));
	sched_close_pair(e, src, mx_ip);
}

bool
block_on_reply(struct engine *e, struct rcpt *rc, const struct verdict_in *in,
    msec_t now)
{
	struct store_attempt a;
	struct dq *dq;

	if (in->source_ip == NULL || in->source_ip[0] == '\0' || in->mx_ip == NULL ||
	    in->mx_ip[0] == '\0')
		return false;
	if (!block_table_is_blocked(e->blocks, in->source_ip, in->mx_ip) &&
	    !block_table_hit(e->blocks, in->source_ip, in->mx_ip, now))
		return false; /* below the threshold: an ordinary deferral */
	block_create(e, in->source_ip, rc->m->stream->name, rc->r.domain, in->mx_host,
	    in->mx_ip, in->code, in->text, now);

	/* The attempt is logged; the recipient is not charged for it. */
	memset(&a, 0, sizeof(a));
	a.time = now;
	a.mailing_id = rc->m->id;
	a.member_id = rc->r.member_id;
	a.recipient_id = rc->r.id;
	a.email = rc->r.email;
	a.domain = rc->r.domain;
	a.stream = rc->m->stream->name;
	a.source_ip = in->source_ip;
	a.mx_host = in->mx_host ? in->mx_host : "";
	a.mx_ip = in->mx_ip;
	a.stage = in->stage;
	a.code = in->code;
	a.enhanced = in->enhanced ? in->enhanced : "";
	a.text = in->text ? in->text : "";
	a.category = "ip_block";
	a.action = "block";
	a.outcome = "rerouted";
	a.duration_ms = in->duration_ms;
	engine_txn_touch(e);
	if (store_attempt_add(e->st, &a) < 0)
		log_error("block", "event=store_failed error=\"%s\"", store_errmsg(e->st));
	log_info("verdict", "event=attempt mailing=%lld rcpt=%s src=%s mx=%s stage=%s code=%d category=ip_block action=block outcome=rerouted",
	    (long long)rc->m->id, rc->r.email, in->source_ip, in->mx_ip, in->stage,
	    in->code);
	rc->r.sticky_ip[0] = '\0';
	if (!rc->m->active) {
		/* paused or cancelled meanwhile: back to the store */
		verdict_return(e, rc, now);
		return true;
	}
	dq = sched_dq_get(e, rc->m->stream, rc->r.domain);
	sched_dq_put(e, dq, rc);
	engine_sched_soon(e);
	return true;
}

/* A refusal at greeting that names our address is a block even when the
 * wording is not one the rules know. */
static bool
block_refusal_is_block(struct engine *e, const char *src, int code, const char *enhanced,
    const char *text)
{
	enum reply_category cat = classify_reply(e->rules, code, enhanced, text);

	if (cat == CAT_IP_BLOCK)
		return true;
	return code >= 400 && src[0] && strcmp(src, "0.0.0.0") != 0 && strstr(text, src);
}

void
block_on_refusal(struct engine *e, struct pair *p, const char *stream,
    const char *domain, int code, const char *enhanced, const char *text, msec_t now)
{
	if (!block_refusal_is_block(e, p->src, code, enhanced, text))
		return;
	if (!block_table_hit(e->blocks, p->src, p->dest->ip, now))
		return;
	block_create(e, p->src, stream, domain, p->dest->host, p->dest->ip, code, text, now);
}

bool
block_pair_is_blocked(struct engine *e, const struct pair *p)
{
	return block_table_count(e->blocks) > 0 &&
	    block_table_is_blocked(e->blocks, p->src, p->dest->ip);
}

/* ---- fully blocked domains --------------------------------------------- */

static void
block_dq_coverage(struct engine *e, struct dq *dq, struct block_coverage *c)
{
	const char *srcs[64], *mxs[ENGINE_MAX_DESTS];
	size_t ns = dq->stream->nips < 64 ? dq->stream->nips : 64;

	for (size_t i = 0; i < ns; i++)
		srcs[i] = dq->stream->ips[i].ip;
	for (size_t i = 0; i < dq->ndests; i++)
		mxs[i] = dq->dests[i]->ip;
	block_table_coverage(e->blocks, srcs, ns, mxs, dq->ndests, c);
}

bool
block_dq_check_full(struct engine *e, struct dq *dq, msec_t now)
{
	struct block_coverage c;
	struct fullblock *fb;
	struct rcpt *rc;
	size_t returned = 0;

	if (block_table_count(e->blocks) == 0 || dq->ndests == 0)
		return false;
	block_dq_coverage(e, dq, &c);
	if (!block_coverage_is_full(&c))
		return false;
	fb = dict_get(e->fullblocked, dq->key);
	if (fb == NULL) {
		fb = xcalloc(1, sizeof(*fb));
		str_copy(fb->stream, dq->stream->name, sizeof(fb->stream));
		str_copy(fb->domain, dq->domain, sizeof(fb->domain));
		fb->since = now;
		dict_set(e->fullblocked, dq->key, fb);
	}
	fb->nmx = 0;
	for (size_t i = 0; i < dq->ndests && fb->nmx < ENGINE_MAX_DESTS; i++) {
		bool dup = false;
		for (size_t j = 0; j < fb->nmx; j++)
			dup = dup || strcmp(fb->mx[j], dq->dests[i]->ip) == 0;
		if (!dup)
			str_copy(fb->mx[fb->nmx++], dq->dests[i]->ip, sizeof(fb->mx[0]));
	}
	while ((rc = TAILQ_FIRST(&dq->rcpts)) != NULL) {
		TAILQ_REMOVE(&dq->rcpts, rc, q);
		dq->n--;
		verdict_return(e, rc, now);
		returned++;
	}
	log_warn("block", "event=domain_fully_blocked stream=%s domain=%s pairs=%zu returned=%zu",
	    fb->stream, fb->domain, c.pairs, returned);
	return true;
}

const char **
block_skip_list(struct engine *e, const char *stream, size_t *n)
{
	struct dict_iter it;
	const char *k;
	void *v;

	*n = 0;
	dict_iter_init(&it);
	while (dict_next(e->fullblocked, &it, &k, &v)) {
		struct fullblock *fb = v;
		if (strcmp(fb->stream, stream) != 0)
			continue;
		e->skipbuf = xgrow(e->skipbuf, &e->skipcap, *n + 1, sizeof(*e->skipbuf));
		e->skipbuf[(*n)++] = fb->domain;
	}
	return e->skipbuf;
}

/* ---- probes ------------------------------------------------------------- */

static void probe_ready_cb(struct smtpc *s, void *arg);
static void probe_done_cb(struct smtpc *s, const struct smtpc_result *r, void *arg);
static void probe_closed_cb(struct smtpc *s, const struct smtpc_result *r, void *arg);

static const struct smtpc_callbacks probe_callbacks = {
	.ready = probe_ready_cb,
	.done = probe_done_cb,
	.closed = probe_closed_cb,
};

/* The port of the block's MX: a static route of the domain that names the
 * address says it; else the SMTP port. */
static int
block_probe_port(struct engine *e, const struct store_block *b)
{
	char **hosts = NULL;
	int port = (int)e->cfg->smtp_port;
	size_t iplen = strlen(b->mx_ip);

	if (b->domain[0] && store_route_get(e->st, b->domain, &hosts) == 0) {
		for (int i = 0; hosts[i]; i++) {
			int64_t p;
			if (strncmp(hosts[i], b->mx_ip, iplen) == 0 && hosts[i][iplen] == ':' &&
			    str_to_i64(hosts[i] + iplen + 1, 1, 65535, &p) == 0)
				port = (int)p;
		}
		store_strv_free(hosts);
	}
	return port;
}

static const char *
block_helo(struct engine *e, const char *stream, const char *src)
{
	struct sctx *s = engine_stream(e, stream);

	for (size_t i = 0; i < s->nips; i++)
		if (strcmp(s->ips[i].ip, src) == 0 && s->ips[i].helo[0])
			return s->ips[i].helo;
	return e->cfg->hostname;
}

static void
probe_finish(struct probe *p, bool released, const char *result)
{
	struct engine *e = p->e;
	msec_t now = time_now_ms();
	msec_t next = now + e->cfg->block_probe_interval_s * 1000;
	char q[600];

	p->answered = true;
	block_table_set_probing(e->blocks, p->b.id, false);
	if (block_table_get(e->blocks, p->b.id) == NULL)
		return; /* released meanwhile by an operator */
	engine_txn_touch(e);
	if (released) {
		int64_t n = 0;
		if (store_block_release(e->st, p->b.id, NULL, NULL, "probe", now, &n) < 0)
			log_error("block", "event=store_failed error=\"%s\"",
			    store_errmsg(e->st));
		engine_txn_commit(e);
		block_table_remove(e->blocks, p->b.id);
		block_info_remove(e, p->b.id);
		log_warn("block", "event=block_released id=%lld by=probe src=%s mx=%s domain=%s result=%s",
		    (long long)p->b.id, p->b.source_ip, p->b.mx_ip, p->b.domain,
		    log_quote(q, sizeof(q), result));
		block_recheck_full(e, now);
		engine_sched_soon(e);
		return;
	}
	if (store_block_probed(e->st, p->b.id, now, next, result) < 0)
		log_error("block", "event=store_failed error=\"%s\"", store_errmsg(e->st));
	block_table_set_next_probe(e->blocks, p->b.id, next);
	{
		struct store_block *bi = block_info(e, p->b.id);
		if (bi) {
			bi->last_probe = now;
			bi->next_probe = next;
			bi->probes++;
			str_copy(bi->last_probe_result, result, sizeof(bi->last_probe_result));
		}
	}
	log_info("block", "event=block_probed id=%lld src=%s mx=%s still_blocked=1 next_in_s=%lld result=%s",
	    (long long)p->b.id, p->b.source_ip, p->b.mx_ip,
	    (long long)e->cfg->block_probe_interval_s, log_quote(q, sizeof(q), result));
}

static void
probe_ready_cb(struct smtpc *s, void *arg)
{
	struct probe *p = arg;
	char from[300];

	snprintf(from, sizeof(from), "postmaster@%s", p->e->bounce_domain);
	if (smtpc_probe(s, from, p->rcpt) < 0) {
		probe_finish(p, false, "probe could not start");
		smtpc_quit(s);
	}
}

static void
probe_done_cb(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct probe *p = arg;
	char result[600];

	if (r->net_error)
		snprintf(result, sizeof(result), "%s: %s", smtpc_stage_name(r->stage), r->error);
	else
		snprintf(result, sizeof(result), "%s: %d %s%s%s", smtpc_stage_name(r->stage),
		    r->reply.code, r->reply.enhanced, r->reply.enhanced[0] ? " " : "",
		    r->reply.text);
	probe_finish(p, r->ok, result);
	smtpc_quit(s);
}

static void
probe_closed_cb(struct smtpc *s, const struct smtpc_result *r, void *arg)
{
	struct probe *p = arg;
	struct engine *e = p->e;

	if (!p->answered) {
		char result[600];
		if (r->net_error)
			snprintf(result, sizeof(result), "%s: %s",
			    smtpc_stage_name(r->stage), r->error);
		else
			snprintf(result, sizeof(result), "%s: %d %s",
			    smtpc_stage_name(r->stage), r->reply.code, r->reply.text);
		probe_finish(p, false, result);
	}
	for (struct probe **pp = &e->probes; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	smtpc_free(s);
	free(p);
	e->nprobes--;
}

static void
block_probe_start(struct engine *e, const struct block_entry *be, msec_t now)
{
	struct store_block *b = block_info(e, be->id);
	struct smtpc_config cfg;
	struct probe *p;

	if (b == NULL)
		return;
	p = xcalloc(1, sizeof(*p));
	p->e = e;
	p->b = *b;
	if (b->domain[0] == '\0' ||
	    store_waiting_recipient(e->st, b->stream, b->domain, p->rcpt,
	    sizeof(p->rcpt)) < 0)
		snprintf(p->rcpt, sizeof(p->rcpt), "postmaster@%s",
		    b->domain[0] ? b->domain : e->bounce_domain);
	sched_smtpc_config(e, b->source_ip, block_helo(e, b->stream, b->source_ip),
	    b->mx_ip, block_probe_port(e, b), &cfg);
	p->s = smtpc_new(e->base, &cfg, &probe_callbacks, p);
	block_table_set_probing(e->blocks, b->id, true);
	log_info("block", "event=probe id=%lld src=%s mx=%s:%d rcpt=%s", (long long)b->id,
	    b->source_ip, b->mx_ip, cfg.dest_port, p->rcpt);
	if (smtpc_open(p->s) < 0) {
		probe_finish(p, false, smtpc_error(p->s));
		smtpc_free(p->s);
		free(p);
		return;
	}
	p->next = e->probes;
	e->probes = p;
	e->nprobes++;
	(void)now;
}

void
block_probe_run(struct engine *e, msec_t now)
{
	struct block_entry due[BLOCK_PROBES_MAX];
	size_t n;

	if (e->stopping || block_table_count(e->blocks) == 0 ||
	    e->nprobes >= BLOCK_PROBES_MAX)
		return;
	n = block_table_due(e->blocks, now, due, (size_t)(BLOCK_PROBES_MAX - e->nprobes));
	for (size_t i = 0; i < n; i++)
		block_probe_start(e, &due[i], now);
}

/* ---- views --------------------------------------------------------------- */

json_t *
block_domain_json(struct engine *e, const char *stream, const char *domain,
    struct dq *dq)
{
	char key[400];
	struct fullblock *fb;
	struct block_coverage c;
	const char *status;
	json_t *mx = json_array(), *limit;

	snprintf(key, sizeof(key), "%s\t%s", stream, domain);
	fb = dict_get(e->fullblocked, key);
	memset(&c, 0, sizeof(c));
	if (fb) {
		struct sctx *s = engine_stream(e, stream);
		const char *srcs[64], *mxs[ENGINE_MAX_DESTS];
		size_t ns = s->nips < 64 ? s->nips : 64;
		for (size_t i = 0; i < ns; i++)
			srcs[i] = s->ips[i].ip;
		for (size_t i = 0; i < fb->nmx; i++) {
			mxs[i] = fb->mx[i];
			json_array_append_new(mx, json_string(fb->mx[i]));
		}
		block_table_coverage(e->blocks, srcs, ns, mxs, fb->nmx, &c);
		status = "fully_blocked";
	} else if (dq) {
		block_dq_coverage(e, dq, &c);
		for (size_t i = 0; i < dq->ndests; i++)
			json_array_append_new(mx, json_string(dq->dests[i]->ip));
		if (c.blocked > 0)
			status = "partly_blocked";
		else if (dq->route == ROUTE_TEMPFAIL)
			status = "deferred";
		else
			status = "sending";
	} else {
		status = "deferred";
	}
	/* A hold by a limit seen in the last 30 s still says why it waits. */
	if (dq && dq->hold_at && time_now_ms() - dq->hold_at < 30000)
		limit = json_pack("{s:s,s:I}", "why", dq->hold, "retry_at",
		    (json_int_t)dq->hold_until);
	else
		limit = json_null();
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:o,s:I,s:o}", "domain", domain, "stream",
	    stream, "status", status, "pairs", (json_int_t)c.pairs, "pairs_blocked",
	    (json_int_t)c.blocked, "mx", mx, "next_probe", (json_int_t)c.next_probe,
	    "limit", limit);
}
