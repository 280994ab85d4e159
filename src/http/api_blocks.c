/*
 * api_blocks.c: the block routes of the admin API (docs/api.md, DESIGN
 * 5.2) and the engine's live views:
 *
 *   GET  /api/v1/blocks?stream=&domain=&ip=&released=1
 *   GET  /api/v1/blocks/ID
 *   POST /api/v1/blocks/ID/release
 *   POST /api/v1/blocks/release      {"domain":D} | {"ip":IP} | {"all":true}
 *   POST /api/v1/blocks/ID/permanent {"permanent":true|false}
 *   GET  /api/v1/reports/domains
 *
 * Reads go through the request's read-only handle; every change runs on
 * the engine thread through engine_call(), which then reloads the engine's
 * blocks. Releases made here are recorded as released by "operator".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_internal.h"
#include "util/str.h"
#include "util/xalloc.h"

#define API_BLOCK_FILTER_MAX 255 /* longest stream / domain / ip filter */
#define API_BLOCK_BY "operator"
#define API_PROBE_INTERVAL_DEFAULT_S 3600

/* ---- input ------------------------------------------------------------ */

/* A query filter: NULL when absent or empty; -1 (answered 400) if too long. */
static int
api_block_filter(struct api_req *r, const char *name, const char **out)
{
	const char *v = api_query(r, name);

	*out = NULL;
	if (v == NULL || *v == '\0')
		return 0;
	if (strlen(v) > API_BLOCK_FILTER_MAX) {
		api_fail(r, 400, "%s is longer than %d bytes", name,
		    API_BLOCK_FILTER_MAX);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- engine calls ----------------------------------------------------- */

struct api_block_arg {
	int64_t id;
	const char *domain;
	const char *source_ip;
	bool permanent;
	msec_t next_probe;
	int64_t released;
	json_t *after;          /* the block after the change */
	struct api_change c;
};

static int
api_block_release_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_block_arg *a = arg;

	return api_change_result(&a->c, st, store_block_release(st, a->id,
	    a->domain, a->source_ip, API_BLOCK_BY, time_now_ms(), &a->released));
}

static int
api_block_permanent_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_block_arg *a = arg;
	int rc;

	rc = store_block_set_permanent(st, a->id, a->permanent, a->next_probe,
	    time_now_ms());
	if (rc == 0)
		a->after = store_block_json(st, a->id);
	return api_change_result(&a->c, st, rc);
}

struct api_view_arg {
	int64_t mailing_id;
	const char *email;
	const char *domain;
	json_t *out;
};

static int
api_domains_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_view_arg *a = arg;

	a->out = engine_domains_json(e);
	return 0;
}

static int
api_mailing_view_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_view_arg *a = arg;

	a->out = engine_mailing_json(e, a->mailing_id);
	return 0;
}

static int
api_explain_view_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_view_arg *a = arg;

	a->out = engine_explain_json(e, a->mailing_id, a->email, a->domain);
	return 0;
}

/* Run a view function; its object (a new reference) or NULL. */
static json_t *
api_view(struct api_req *r, engine_call_fn fn, struct api_view_arg *a)
{
	if (engine_read(r->engine, fn, a) < 0) {
		json_decref(a->out);
		return NULL;
	}
	if (!json_is_object(a->out)) {
		json_decref(a->out);
		return NULL;
	}
	return a->out;
}

json_t *
api_engine_mailing(struct api_req *r, int64_t mailing_id)
{
	struct api_view_arg a;

	memset(&a, 0, sizeof(a));
	a.mailing_id = mailing_id;
	return api_view(r, api_mailing_view_fn, &a);
}

json_t *
api_engine_explain(struct api_req *r, int64_t mailing_id, const char *email,
    const char *domain)
{
	struct api_view_arg a;

	memset(&a, 0, sizeof(a));
	a.mailing_id = mailing_id;
	a.email = email;
	a.domain = domain;
	return api_view(r, api_explain_view_fn, &a);
}

/* ---- handlers --------------------------------------------------------- */

void
api_get_blocks(struct api_req *r)
{
	const char *stream, *domain, *ip, *rel;
	bool released = false;
	json_t *o;

	if (api_block_filter(r, "stream", &stream) < 0 ||
	    api_block_filter(r, "domain", &domain) < 0 ||
	    api_block_filter(r, "ip", &ip) < 0)
		return;
	rel = api_query(r, "released");
	if (rel != NULL && *rel != '\0') {
		if (strcmp(rel, "1") == 0 || strcmp(rel, "true") == 0)
			released = true;
		else if (strcmp(rel, "0") != 0 && strcmp(rel, "false") != 0) {
			api_fail(r, 400, "released must be 1 or 0");
			return;
		}
	}
	o = store_blocks_json(r->rd, stream, domain, ip, released);
	if (o == NULL) {
		api_fail_store(r, STORE_EIO, store_errmsg(r->rd));
		return;
	}
	api_reply(r, 200, o);
}

void
api_get_block(struct api_req *r)
{
	int64_t id;
	json_t *o;

	if (api_id_arg(r, r->seg[1], "block", &id) < 0)
		return;
	if ((o = store_block_json(r->rd, id)) == NULL) {
		api_fail(r, 404, "no block %" PRId64, id);
		return;
	}
	api_reply(r, 200, o);
}

void
api_post_block_release(struct api_req *r)
{
	struct api_block_arg a;
	int rc;

	memset(&a, 0, sizeof(a));
	if (api_id_arg(r, r->seg[1], "block", &a.id) < 0)
		return;
	rc = engine_call(r->engine, api_block_release_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, json_pack("{s:I}", "released", (json_int_t)a.released));
}

void
api_post_blocks_release(struct api_req *r)
{
	struct api_block_arg a;
	json_t *body, *all;
	int rc, nsel = 0;

	memset(&a, 0, sizeof(a));
	if ((body = api_body_object(r)) == NULL)
		return;
	if (json_object_get(body, "domain") != NULL) {
		a.domain = json_string_value(json_object_get(body, "domain"));
		if (a.domain == NULL || strcmp(a.domain, "*") == 0 ||
		    !api_is_domain(a.domain)) {
			api_fail(r, 400, "\"domain\" must be a domain name");
			goto out;
		}
		nsel++;
	}
	if (json_object_get(body, "ip") != NULL) {
		a.source_ip = json_string_value(json_object_get(body, "ip"));
		if (a.source_ip == NULL || !api_is_ip(a.source_ip)) {
			api_fail(r, 400, "\"ip\" must be an IP address");
			goto out;
		}
		nsel++;
	}
	if ((all = json_object_get(body, "all")) != NULL) {
		if (!json_is_true(all)) {
			api_fail(r, 400, "\"all\" must be true");
			goto out;
		}
		nsel++;
	}
	if (nsel != 1) {
		api_fail(r, 400, "give exactly one of {\"domain\":D}, {\"ip\":IP} "
		    "or {\"all\":true}");
		goto out;
	}
	rc = engine_call(r->engine, api_block_release_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	api_reply(r, 200, json_pack("{s:I}", "released", (json_int_t)a.released));
out:
	json_decref(body);
}

void
api_post_block_permanent(struct api_req *r)
{
	const struct settings *cfg = api_settings(r->api);
	struct api_block_arg a;
	int64_t interval = API_PROBE_INTERVAL_DEFAULT_S;
	json_t *body, *p;
	int rc;

	memset(&a, 0, sizeof(a));
	if (api_id_arg(r, r->seg[1], "block", &a.id) < 0)
		return;
	if ((body = api_body_object(r)) == NULL)
		return;
	p = json_object_get(body, "permanent");
	if (!json_is_boolean(p)) {
		api_fail(r, 400, "\"permanent\" must be true or false");
		goto out;
	}
	a.permanent = json_is_true(p);
	if (cfg != NULL && cfg->block_probe_interval_s > 0)
		interval = cfg->block_probe_interval_s;
	a.next_probe = a.permanent ? 0 : time_now_ms() + interval * 1000;
	rc = engine_call(r->engine, api_block_permanent_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	api_reply(r, 200, a.after ? a.after : json_pack("{s:I,s:b}", "id",
	    (json_int_t)a.id, "permanent", a.permanent));
out:
	json_decref(body);
}

void
api_get_report_domains(struct api_req *r)
{
	struct api_view_arg a;
	json_t *o;

	memset(&a, 0, sizeof(a));
	if ((o = api_view(r, api_domains_fn, &a)) == NULL) {
		api_fail(r, 503, "the engine did not answer");
		return;
	}
	api_reply(r, 200, o);
}
