/*
 * api_routes.c: the /api/v1/ routes (docs/api.md). Each handler validates
 * its input, reads through r->rd (read-only) and makes every change with
 * engine_call(), whose function runs on the engine thread with the engine's
 * read-write store handle and copies the store's error text back.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_internal.h"
#include "mail/members_csv.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define API_NAME_MAX 64      /* stream, list, segment names */
#define API_IPS_MAX 256      /* source IPs of one stream */
#define API_HOSTS_MAX 32     /* hosts of one route */
#define API_DOMAINS_MAX 1024 /* domains of one segment */
#define API_LIMIT_MAX 10000  /* rows of one listing */
#define API_IMPORT_CHUNK 5000 /* member rows per engine call */

/* ---- helpers ---------------------------------------------------------- */

static bool
api_is_name(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0' || *s == '.' || *s == '-')
		return false;
	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return n <= API_NAME_MAX;
}

bool
api_is_domain(const char *s)
{
	size_t n = strlen(s);

	if (strcmp(s, "*") == 0)
		return true;
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

bool
api_is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* "host", "host:port", "[v6]", "[v6]:port" */
static bool
api_is_host_port(const char *s)
{
	char host[256];
	const char *port = NULL;
	int64_t p;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		size_t hl;
		unsigned char a[16];
		if (end == NULL || (hl = (size_t)(end - s - 1)) == 0 ||
		    hl >= sizeof(host))
			return false;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			return false;
		if (end[1] == '\0')
			return true;
		if (end[1] != ':')
			return false;
		port = end + 2;
	} else {
		const char *colon = strchr(s, ':');
		size_t hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl == 0 || hl >= sizeof(host))
			return false;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (!api_is_domain(host) || strcmp(host, "*") == 0)
			return false;
		port = colon ? colon + 1 : NULL;
	}
	return port == NULL || str_to_i64(port, 1, 65535, &p) == 0;
}

json_t *
api_body_object(struct api_req *r)
{
	json_error_t jerr;
	json_t *o;

	if (r->body.len == 0) {
		api_fail(r, 400, "a JSON object is expected in the request body");
		return NULL;
	}
	o = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		api_fail(r, 400, "invalid JSON at line %d column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		api_fail(r, 400, "a JSON object is expected in the request body");
		return NULL;
	}
	return o;
}

/* A string member of o: NULL if absent or null; *bad set if another type. */
static const char *
api_member_string(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

int
api_id_arg(struct api_req *r, const char *s, const char *what, int64_t *id)
{
	if (s == NULL || str_to_i64(s, 1, INT64_MAX, id) < 0) {
		api_fail(r, 400, "\"%s\" is not a %s id", s ? s : "", what);
		return -1;
	}
	return 0;
}

/* Wrap an array as {key: array}; a NULL array is a database error. */
static void
api_reply_list(struct api_req *r, const char *key, json_t *arr)
{
	if (arr == NULL) {
		api_fail_store(r, STORE_EIO, store_errmsg(r->rd));
		return;
	}
	api_reply(r, 200, json_pack("{s:o}", key, arr));
}

/* ---- engine calls ----------------------------------------------------- */

int
api_change_result(struct api_change *c, struct store *st, int rc)
{
	if (rc < 0)
		str_copy(c->err, store_errmsg(st), sizeof(c->err));
	return rc;
}

struct api_status_arg {
	json_t *out;
};

static int
api_status_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_status_arg *a = arg;

	a->out = engine_status_json(e);
	return 0;
}

struct api_stream_arg {
	struct api_change c;
	const char *name;
	struct store_ip *ips;
	size_t nips;
};

static int
api_stream_put_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_stream_arg *a = arg;

	return api_change_result(&a->c, st,
	    store_stream_put(st, a->name, a->ips, a->nips));
}

static int
api_stream_rm_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_stream_arg *a = arg;

	return api_change_result(&a->c, st, store_stream_rm(st, a->name));
}

struct api_route_arg {
	struct api_change c;
	const char *domain;
	const char **hosts;
	size_t nhosts;
};

static int
api_route_set_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_route_arg *a = arg;

	return api_change_result(&a->c, st,
	    store_route_set(st, a->domain, a->hosts, a->nhosts));
}

static int
api_route_rm_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_route_arg *a = arg;

	return api_change_result(&a->c, st, store_route_rm(st, a->domain));
}

struct api_list_arg {
	struct api_change c;
	const char *name, *from, *stream;
	int64_t id;
};

static int
api_list_create_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_list_arg *a = arg;

	return api_change_result(&a->c, st,
	    store_list_create(st, a->name, a->from, a->stream, &a->id));
}

struct api_segment_arg {
	struct api_change c;
	const char *list, *name, *stream;
	const char **domains;
	size_t ndomains;
	json_t *fields;
};

static int
api_segment_put_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_segment_arg *a = arg;

	return api_change_result(&a->c, st, store_segment_put(st, a->list, a->name,
	    a->domains, a->ndomains, a->fields, a->stream));
}

struct api_import_arg {
	struct api_change c;
	const char *list;
	struct store_member_in *m;
	size_t n;
	size_t added, existing;
};

static int
api_import_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_import_arg *a = arg;

	return api_change_result(&a->c, st, store_members_import(st, a->list,
	    a->m, a->n, &a->added, &a->existing));
}

struct api_mailing_arg {
	struct api_change c;
	const char *list, *segment, *stream;
	const char *message;
	size_t message_len;
	int64_t id;
	const char *state;  /* for set_state */
	json_t *after;      /* the mailing after the change */
};

static int
api_mailing_create_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_mailing_arg *a = arg;
	int rc;

	rc = store_mailing_create(st, a->list, a->segment, a->stream, a->message,
	    a->message_len, time_now_ms(), &a->id);
	if (rc == 0)
		a->after = store_mailing_json(st, a->id);
	return api_change_result(&a->c, st, rc);
}

/* May the mailing go from state `from` to `to`? */
static bool
api_is_transition_ok(const char *from, const char *to)
{
	bool live = strcmp(from, "queued") == 0 || strcmp(from, "sending") == 0;

	if (strcmp(to, "paused") == 0)
		return live;
	if (strcmp(to, "sending") == 0)
		return strcmp(from, "paused") == 0;
	if (strcmp(to, "cancelled") == 0)
		return live || strcmp(from, "paused") == 0;
	return false;
}

static int
api_mailing_state_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_mailing_arg *a = arg;
	json_t *m;
	const char *cur;
	int rc;

	m = store_mailing_json(st, a->id);
	if (m == NULL) {
		snprintf(a->c.err, sizeof(a->c.err), "no mailing %" PRId64, a->id);
		return STORE_ENOTFOUND;
	}
	cur = json_string_value(json_object_get(m, "state"));
	if (cur == NULL)
		cur = "";
	if (!api_is_transition_ok(cur, a->state)) {
		snprintf(a->c.err, sizeof(a->c.err),
		    "mailing %" PRId64 " is %s: it cannot become %s", a->id, cur,
		    a->state);
		json_decref(m);
		return STORE_EBUSY;
	}
	json_decref(m);
	rc = store_mailing_set_state(st, a->id, a->state, time_now_ms());
	if (rc == 0)
		a->after = store_mailing_json(st, a->id);
	return api_change_result(&a->c, st, rc);
}

/* ---- handlers --------------------------------------------------------- */

static void
api_get_status(struct api_req *r)
{
	struct api_status_arg a = { NULL };
	json_t *o;

	engine_read(r->engine, api_status_fn, &a);
	o = json_is_object(a.out) ? a.out : json_object();
	if (a.out != NULL && o != a.out)
		json_decref(a.out);
	json_object_set_new(o, "version", json_string(SLUICE_VERSION));
	api_reply(r, 200, o);
}

static void
api_get_streams(struct api_req *r)
{
	api_reply_list(r, "streams", store_streams_json(r->rd));
}

/* The stream named name from the read handle (a new reference), or NULL. */
static json_t *
api_find_named(json_t *arr, const char *key, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		const char *n = json_string_value(json_object_get(v, key));
		if (n != NULL && strcmp(n, name) == 0)
			return json_incref(v);
	}
	return NULL;
}

static void
api_post_stream(struct api_req *r)
{
	struct api_stream_arg a;
	json_t *body, *ips, *v, *all;
	bool bad = false;
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((body = api_body_object(r)) == NULL)
		return;
	a.name = api_member_string(body, "name", &bad);
	ips = json_object_get(body, "ips");
	if (bad || !api_is_name(a.name)) {
		api_fail(r, 400, "\"name\" must be 1 to %d letters, digits, '.', "
		    "'_' or '-'", API_NAME_MAX);
		goto out;
	}
	if (!json_is_array(ips) || json_array_size(ips) == 0 ||
	    json_array_size(ips) > API_IPS_MAX) {
		api_fail(r, 400, "\"ips\" must be an array of 1 to %d "
		    "{\"ip\",\"helo\"} objects", API_IPS_MAX);
		goto out;
	}
	a.nips = json_array_size(ips);
	a.ips = xcalloc(a.nips, sizeof(*a.ips));
	json_array_foreach(ips, i, v) {
		const char *ip, *helo = NULL;
		if (json_is_string(v)) {
			ip = json_string_value(v);
		} else {
			ip = api_member_string(v, "ip", &bad);
			helo = api_member_string(v, "helo", &bad);
		}
		if (bad || ip == NULL || !api_is_ip(ip)) {
			api_fail(r, 400, "ips[%zu]: \"%s\" is not an IP address", i,
			    ip ? ip : "");
			goto out;
		}
		if (helo != NULL && (strlen(helo) >= sizeof(a.ips[i].helo) ||
		    (*helo && !api_is_domain(helo)))) {
			api_fail(r, 400, "ips[%zu]: \"%s\" is not a host name", i,
			    helo);
			goto out;
		}
		str_copy(a.ips[i].ip, ip, sizeof(a.ips[i].ip));
		str_copy(a.ips[i].helo, helo ? helo : "", sizeof(a.ips[i].helo));
	}
	rc = engine_call(r->engine, api_stream_put_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	all = store_streams_json(r->rd);
	v = api_find_named(all, "name", a.name);
	json_decref(all);
	api_reply(r, 201, v ? v : json_pack("{s:s}", "name", a.name));
out:
	free(a.ips);
	json_decref(body);
}

static void
api_delete_stream(struct api_req *r)
{
	struct api_stream_arg a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.name = r->seg[1];
	rc = engine_call(r->engine, api_stream_rm_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, json_pack("{s:s}", "removed", a.name));
}

static void
api_get_routes(struct api_req *r)
{
	api_reply_list(r, "routes", store_routes_json(r->rd));
}

static void
api_put_route(struct api_req *r)
{
	struct api_route_arg a;
	json_t *body, *hosts, *v;
	char domain[256];
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	if (str_copy(domain, r->seg[1], sizeof(domain)) >= sizeof(domain) ||
	    !api_is_domain(domain)) {
		api_fail(r, 400, "\"%s\" is not a domain name (or \"*\")", r->seg[1]);
		return;
	}
	str_lower(domain);
	if ((body = api_body_object(r)) == NULL)
		return;
	hosts = json_object_get(body, "hosts");
	if (!json_is_array(hosts) || json_array_size(hosts) == 0 ||
	    json_array_size(hosts) > API_HOSTS_MAX) {
		api_fail(r, 400, "\"hosts\" must be an array of 1 to %d "
		    "\"host[:port]\" strings", API_HOSTS_MAX);
		goto out;
	}
	a.domain = domain;
	a.nhosts = json_array_size(hosts);
	a.hosts = xcalloc(a.nhosts, sizeof(*a.hosts));
	json_array_foreach(hosts, i, v) {
		const char *h = json_string_value(v);
		if (h == NULL || !api_is_host_port(h)) {
			api_fail(r, 400, "hosts[%zu]: \"%s\" is not host[:port]", i,
			    h ? h : "");
			goto out;
		}
		a.hosts[i] = h;
	}
	rc = engine_call(r->engine, api_route_set_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	api_reply(r, 200, json_pack("{s:s,s:O}", "domain", domain, "hosts", hosts));
out:
	free(a.hosts);
	json_decref(body);
}

static void
api_delete_route(struct api_req *r)
{
	struct api_route_arg a;
	char domain[256];
	int rc;

	memset(&a, 0, sizeof(a));
	if (str_copy(domain, r->seg[1], sizeof(domain)) >= sizeof(domain) ||
	    !api_is_domain(domain)) {
		api_fail(r, 400, "\"%s\" is not a domain name (or \"*\")", r->seg[1]);
		return;
	}
	str_lower(domain);
	a.domain = domain;
	rc = engine_call(r->engine, api_route_rm_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, json_pack("{s:s}", "removed", domain));
}

static void
api_get_lists(struct api_req *r)
{
	api_reply_list(r, "lists", store_lists_json(r->rd));
}

static void
api_get_list(struct api_req *r)
{
	json_t *l = store_list_json(r->rd, r->seg[1]);

	if (l == NULL) {
		api_fail(r, 404, "no list named \"%s\"", r->seg[1]);
		return;
	}
	api_reply(r, 200, l);
}

static void
api_post_list(struct api_req *r)
{
	struct api_list_arg a;
	json_t *body, *l;
	bool bad = false;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((body = api_body_object(r)) == NULL)
		return;
	a.name = api_member_string(body, "name", &bad);
	a.from = api_member_string(body, "from", &bad);
	a.stream = api_member_string(body, "stream", &bad);
	if (bad || !api_is_name(a.name)) {
		api_fail(r, 400, "\"name\" must be 1 to %d letters, digits, '.', "
		    "'_' or '-'", API_NAME_MAX);
		goto out;
	}
	if (a.from == NULL || strchr(a.from, '@') == NULL || strlen(a.from) > 320 ||
	    strpbrk(a.from, "\r\n") != NULL) {
		api_fail(r, 400, "\"from\" must be an e-mail address");
		goto out;
	}
	if (a.stream != NULL && !api_is_name(a.stream)) {
		api_fail(r, 400, "\"stream\" is not a stream name");
		goto out;
	}
	rc = engine_call(r->engine, api_list_create_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	l = store_list_json(r->rd, a.name);
	api_reply(r, 201, l ? l : json_pack("{s:I,s:s}", "id", (json_int_t)a.id,
	    "name", a.name));
out:
	json_decref(body);
}

static void
api_post_segment(struct api_req *r)
{
	struct api_segment_arg a;
	json_t *body, *domains, *fields, *l, *v;
	bool bad = false;
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((l = store_list_json(r->rd, r->seg[1])) == NULL) {
		api_fail(r, 404, "no list named \"%s\"", r->seg[1]);
		return;
	}
	json_decref(l);
	if ((body = api_body_object(r)) == NULL)
		return;
	a.list = r->seg[1];
	a.name = api_member_string(body, "name", &bad);
	a.stream = api_member_string(body, "stream", &bad);
	domains = json_object_get(body, "domains");
	fields = json_object_get(body, "fields");
	if (bad || !api_is_name(a.name)) {
		api_fail(r, 400, "\"name\" must be 1 to %d letters, digits, '.', "
		    "'_' or '-'", API_NAME_MAX);
		goto out;
	}
	if (a.stream != NULL && !api_is_name(a.stream)) {
		api_fail(r, 400, "\"stream\" is not a stream name");
		goto out;
	}
	if (domains != NULL && !json_is_null(domains) &&
	    (!json_is_array(domains) || json_array_size(domains) > API_DOMAINS_MAX)) {
		api_fail(r, 400, "\"domains\" must be an array of at most %d domain "
		    "names", API_DOMAINS_MAX);
		goto out;
	}
	if (fields != NULL && !json_is_null(fields)) {
		const char *k;
		if (!json_is_object(fields)) {
			api_fail(r, 400, "\"fields\" must be an object of "
			    "\"name\": \"value\"");
			goto out;
		}
		json_object_foreach(fields, k, v) {
			if (!json_is_string(v) && !json_is_number(v) &&
			    !json_is_boolean(v)) {
				api_fail(r, 400, "fields.%s must be a string, number "
				    "or boolean", k);
				goto out;
			}
		}
		a.fields = fields;
	}
	a.ndomains = json_is_array(domains) ? json_array_size(domains) : 0;
	a.domains = xcalloc(a.ndomains + 1, sizeof(*a.domains));
	for (i = 0; i < a.ndomains; i++) {
		const char *d = json_string_value(json_array_get(domains, i));
		if (d == NULL || !api_is_domain(d) || strcmp(d, "*") == 0) {
			api_fail(r, 400, "domains[%zu]: \"%s\" is not a domain name", i,
			    d ? d : "");
			goto out;
		}
		a.domains[i] = d;
	}
	rc = engine_call(r->engine, api_segment_put_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	api_reply(r, 201, json_pack("{s:s,s:s,s:o,s:o,s:s?}", "list", a.list,
	    "name", a.name, "domains", json_is_array(domains) ?
	    json_incref(domains) : json_array(), "fields", a.fields ?
	    json_incref(a.fields) : json_object(), "stream", a.stream));
out:
	free(a.domains);
	json_decref(body);
}

static enum store_member_kind
api_member_kind(int kind)
{
	switch (kind) {
	case MEMBERS_KIND_DIGEST: return MEMBER_DIGEST;
	case MEMBERS_KIND_MODERATOR: return MEMBER_MODERATOR;
	default: return MEMBER_NORMAL;
	}
}

static void
api_post_members(struct api_req *r)
{
	struct api_import_arg a;
	struct members_csv *csv;
	struct store_member_in *m;
	json_t *l;
	size_t n, added = 0, existing = 0;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((l = store_list_json(r->rd, r->seg[1])) == NULL) {
		api_fail(r, 404, "no list named \"%s\"", r->seg[1]);
		return;
	}
	json_decref(l);
	csv = members_csv_parse(r->body.data ? r->body.data : "", r->body.len);
	if (members_csv_has_errors(csv)) {
		size_t kept = members_csv_error_count(csv);
		size_t total = members_csv_error_total(csv);
		/* the stop note is not an invalid line */
		size_t nbad = total - (members_csv_is_stopped(csv) ? 1 : 0);
		json_t *lines = json_array();
		char msg[64];

		for (size_t i = 0; i < kept; i++) {
			const struct members_csv_error *e = members_csv_error(csv, i);
			json_array_append_new(lines, json_pack("{s:i,s:s}", "line",
			    e->line, "error", e->message ? e->message : "invalid"));
		}
		snprintf(msg, sizeof(msg), "%zu invalid line%s", nbad,
		    nbad == 1 ? "" : "s");
		api_reply(r, 400, json_pack("{s:s,s:o,s:I}", "error", msg, "lines",
		    lines, "more", (json_int_t)(total - kept)));
		goto out;
	}
	n = members_csv_count(csv);
	a.list = r->seg[1];
	m = xcalloc(n + 1, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		const struct members_csv_row *row = members_csv_row(csv, i);
		m[i].email = row->email;
		m[i].name = row->name && *row->name ? row->name : NULL;
		m[i].kind = api_member_kind(row->kind);
	}
	/* in slices, so the engine thread is never blocked for long; the whole
	 * file was validated first, and a retry after a failure is harmless */
	rc = 0;
	for (size_t done = 0; done < n && rc >= 0; done += a.n) {
		a.m = m + done;
		a.n = n - done < API_IMPORT_CHUNK ? n - done : API_IMPORT_CHUNK;
		a.added = a.existing = 0;
		rc = engine_call(r->engine, api_import_fn, &a);
		added += a.added;
		existing += a.existing;
	}
	if (rc < 0)
		api_fail_store(r, rc, a.c.err);
	else
		api_reply(r, 200, json_pack("{s:I,s:I}", "added",
		    (json_int_t)added, "existing", (json_int_t)existing));
	free(m);
out:
	members_csv_free(csv);
}

static void
api_post_mailing(struct api_req *r)
{
	struct api_mailing_arg a;
	char err[API_ERR_MAX];
	json_t *l;
	int rc;

	memset(&a, 0, sizeof(a));
	a.list = api_query(r, "list");
	a.segment = api_query(r, "segment");
	a.stream = api_query(r, "stream");
	if (a.list == NULL || *a.list == '\0') {
		api_fail(r, 400, "the list is missing: POST /api/v1/mailings?list=NAME");
		return;
	}
	if (a.segment != NULL && *a.segment == '\0')
		a.segment = NULL;
	if (a.stream != NULL && *a.stream == '\0')
		a.stream = NULL;
	if ((l = store_list_json(r->rd, a.list)) == NULL) {
		api_fail(r, 404, "no list named \"%s\"", a.list);
		return;
	}
	json_decref(l);
	if (r->body.len == 0) {
		api_fail(r, 400, "the message (RFC 5322) is missing from the body");
		return;
	}
	if (api_message_check(r->body.data, r->body.len, err, sizeof(err)) < 0) {
		api_fail(r, 400, "message: %s", err);
		return;
	}
	a.message = r->body.data;
	a.message_len = r->body.len;
	rc = engine_call(r->engine, api_mailing_create_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	if (a.after == NULL)
		a.after = json_object();
	json_object_set_new(a.after, "id", json_integer(a.id));
	api_reply(r, 201, a.after);
}

static void
api_get_mailings(struct api_req *r)
{
	const char *ls = api_query(r, "limit");
	int64_t limit = 100;

	if (ls != NULL && str_to_i64(ls, 1, API_LIMIT_MAX, &limit) < 0) {
		api_fail(r, 400, "limit must be 1 to %d", API_LIMIT_MAX);
		return;
	}
	api_reply_list(r, "mailings", store_mailings_json(r->rd, (int)limit));
}

static void
api_get_mailing(struct api_req *r)
{
	int64_t id;
	json_t *m, *eng;

	if (api_id_arg(r, r->seg[1], "mailing", &id) < 0)
		return;
	if ((m = store_mailing_json(r->rd, id)) == NULL) {
		api_fail(r, 404, "no mailing %" PRId64, id);
		return;
	}
	if ((eng = api_engine_mailing(r, id)) != NULL)
		json_object_set_new(m, "engine", eng);
	api_reply(r, 200, m);
}

static void
api_post_mailing_state(struct api_req *r)
{
	struct api_mailing_arg a;
	const char *verb = r->seg[2];
	int rc;

	memset(&a, 0, sizeof(a));
	if (api_id_arg(r, r->seg[1], "mailing", &a.id) < 0)
		return;
	if (strcmp(verb, "pause") == 0)
		a.state = "paused";
	else if (strcmp(verb, "resume") == 0)
		a.state = "sending";
	else
		a.state = "cancelled";
	rc = engine_call(r->engine, api_mailing_state_fn, &a);
	if (rc < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, a.after ? a.after : json_pack("{s:I,s:s}", "id",
	    (json_int_t)a.id, "state", a.state));
}

static void
api_get_attempts(struct api_req *r)
{
	struct store_attempt_filter f;
	const char *ms = api_query(r, "mailing"), *ls = api_query(r, "limit");
	int64_t v;

	memset(&f, 0, sizeof(f));
	if (ms != NULL && *ms != '\0') {
		if (api_id_arg(r, ms, "mailing", &v) < 0)
			return;
		f.mailing_id = v;
	}
	f.limit = 100;
	if (ls != NULL && *ls != '\0') {
		if (str_to_i64(ls, 1, API_LIMIT_MAX, &v) < 0) {
			api_fail(r, 400, "limit must be 1 to %d", API_LIMIT_MAX);
			return;
		}
		f.limit = (int)v;
	}
	f.email = api_query(r, "email");
	f.domain = api_query(r, "domain");
	if (f.email != NULL && *f.email == '\0')
		f.email = NULL;
	if (f.domain != NULL && *f.domain == '\0')
		f.domain = NULL;
	api_reply_list(r, "attempts", store_attempts_json(r->rd, &f));
}

static void
api_get_report_streams(struct api_req *r)
{
	json_t *o = store_report_streams_json(r->rd);

	if (o == NULL) {
		api_fail_store(r, STORE_EIO, store_errmsg(r->rd));
		return;
	}
	api_reply(r, 200, o);
}

/* The text of a reply: a string, or absent. */
static const char *
api_get_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/*
 * One line saying why the recipient is where it is, from the recipient row
 * ({"state","attempts","next_at","last_code","last_reply","last_category"})
 * and, if the row has no reply, the newest attempt.
 */
static void
api_explain_reason(json_t *rcpt, json_t *attempts, char *out, size_t n)
{
	const char *state = api_get_str(rcpt, "state");
	const char *reply = api_get_str(rcpt, "last_reply");
	const char *category = api_get_str(rcpt, "last_category");
	json_int_t code = json_integer_value(json_object_get(rcpt, "last_code"));
	json_int_t next = json_integer_value(json_object_get(rcpt, "next_at"));
	json_int_t tries = json_integer_value(json_object_get(rcpt, "attempts"));
	char last[600] = "", when[40] = "";

	if (*reply == '\0' && json_array_size(attempts) > 0) {
		json_t *a0 = json_array_get(attempts, 0);
		reply = api_get_str(a0, "text");
		if (code == 0)
			code = json_integer_value(json_object_get(a0, "code"));
		if (*category == '\0')
			category = api_get_str(a0, "category");
	}
	if (code != 0)
		snprintf(last, sizeof(last), "%lld%s%s", (long long)code,
		    *reply ? " " : "", reply);
	else
		str_copy(last, reply, sizeof(last));
	if (*category) {
		size_t l = strlen(last);
		snprintf(last + l, sizeof(last) - l, "%s[%s]", l ? " " : "",
		    category);
	}
	if (next > 0)
		time_fmt_iso((msec_t)next, when, sizeof(when));

	if (strcmp(state, "pending") == 0)
		snprintf(out, n, "pending: waiting for its turn%s%s",
		    tries ? " after " : "", tries ? "earlier attempts" : "");
	else if (strcmp(state, "inflight") == 0)
		snprintf(out, n, "inflight: a delivery attempt is in progress");
	else if (strcmp(state, "sent") == 0)
		snprintf(out, n, "sent: accepted by the receiving server%s%s",
		    *last ? ": " : "", last);
	else if (strcmp(state, "deferred") == 0)
		snprintf(out, n, "deferred: %s%s%s",
		    *last ? last : "temporary failure",
		    *when ? "; next attempt at " : "", when);
	else if (strcmp(state, "failed") == 0)
		snprintf(out, n, "failed: %s", *last ? last : "permanent failure");
	else if (strcmp(state, "expired") == 0)
		snprintf(out, n, "expired: gave up after %lld attempts%s%s",
		    (long long)tries, *last ? "; last reply: " : "", last);
	else if (strcmp(state, "skipped") == 0)
		snprintf(out, n, "skipped: the member is throttled after repeated "
		    "rejections%s%s", *last ? "; last reply: " : "", last);
	else if (strcmp(state, "suppressed") == 0)
		snprintf(out, n, "suppressed: the member was no longer active when "
		    "its turn came");
	else
		snprintf(out, n, "%s", *state ? state : "unknown state");
}

static void
api_get_explain(struct api_req *r)
{
	const char *email = api_query(r, "email");
	const char *ms = api_query(r, "mailing");
	char reason[1024];
	json_t *o, *rcpt, *eng = NULL;
	const char *state;
	int64_t id;

	if (email == NULL || *email == '\0') {
		api_fail(r, 400, "email is missing: /api/v1/explain?email=ADDR&mailing=ID");
		return;
	}
	if (ms == NULL) {
		api_fail(r, 400, "mailing is missing: /api/v1/explain?email=ADDR&mailing=ID");
		return;
	}
	if (api_id_arg(r, ms, "mailing", &id) < 0)
		return;
	o = store_recipient_json(r->rd, id, email);
	if (o == NULL) {
		api_fail(r, 404, "%s is not a recipient of mailing %" PRId64, email, id);
		return;
	}
	rcpt = json_object_get(o, "recipient");
	api_explain_reason(rcpt ? rcpt : o, json_object_get(o, "attempts"), reason,
	    sizeof(reason));
	json_object_set_new(o, "reason", json_string(reason));
	/* the engine's view (blocks, limits) first; the store's stays as
	 * state_reason */
	json_object_set_new(o, "state_reason", json_string(reason));
	/* Only a recipient that still waits can be held by blocks or limits. */
	state = api_get_str(rcpt, "state");
	if (strcmp(state, "pending") == 0 || strcmp(state, "deferred") == 0 ||
	    strcmp(state, "inflight") == 0)
		eng = api_engine_explain(r, id, email, api_get_str(rcpt, "domain"));
	if (eng != NULL) {
		const char *er = api_get_str(eng, "reason");
		json_object_update_missing(o, eng);
		if (*er != '\0')
			json_object_set(o, "reason", json_object_get(eng, "reason"));
		json_decref(eng);
	}
	api_reply(r, 200, o);
}

/* ---- the table -------------------------------------------------------- */

/*
 * Patterns are path segments after /api/v1/; "*" matches any one segment,
 * "pause|resume|cancel" any of those words.
 */
struct api_route_def {
	const char *method;
	const char *pattern[API_SEG_MAX];
	api_handler fn;
};

static const struct api_route_def api_routes[] = {
	{ "GET", { "status" }, api_get_status },
	{ "GET", { "streams" }, api_get_streams },
	{ "POST", { "streams" }, api_post_stream },
	{ "DELETE", { "streams", "*" }, api_delete_stream },
	{ "GET", { "routes" }, api_get_routes },
	{ "PUT", { "routes", "*" }, api_put_route },
	{ "DELETE", { "routes", "*" }, api_delete_route },
	{ "GET", { "lists" }, api_get_lists },
	{ "POST", { "lists" }, api_post_list },
	{ "GET", { "lists", "*" }, api_get_list },
	{ "POST", { "lists", "*", "members" }, api_post_members },
	{ "POST", { "lists", "*", "segments" }, api_post_segment },
	{ "GET", { "mailings" }, api_get_mailings },
	{ "POST", { "mailings" }, api_post_mailing },
	{ "GET", { "mailings", "*" }, api_get_mailing },
	{ "POST", { "mailings", "*", "pause|resume|cancel" }, api_post_mailing_state },
	{ "GET", { "attempts" }, api_get_attempts },
	{ "GET", { "reports", "streams" }, api_get_report_streams },
	{ "GET", { "explain" }, api_get_explain },
	{ "GET", { "blocks" }, api_get_blocks },
	{ "POST", { "blocks", "release" }, api_post_blocks_release },
	{ "GET", { "blocks", "*" }, api_get_block },
	{ "POST", { "blocks", "*", "release" }, api_post_block_release },
	{ "POST", { "blocks", "*", "permanent" }, api_post_block_permanent },
	{ "GET", { "reports", "domains" }, api_get_report_domains },
	{ "GET", { "limits" }, api_get_limits },
	{ "POST", { "limits" }, api_post_limit },
	{ "GET", { "limits", "*" }, api_get_limit },
	{ "PUT", { "limits", "*" }, api_put_limit },
	{ "DELETE", { "limits", "*" }, api_delete_limit },
	{ "GET", { "macros" }, api_get_macros },
	{ "PUT", { "macros", "*" }, api_put_macro },
	{ "DELETE", { "macros", "*" }, api_delete_macro },
};

static bool
api_is_word_in(const char *word, const char *alternatives)
{
	size_t wl = strlen(word);
	const char *p = alternatives;

	for (;;) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == wl && strncmp(p, word, l) == 0)
			return true;
		if (bar == NULL)
			return false;
		p = bar + 1;
	}
}

static bool
api_is_path_match(const struct api_route_def *d, const struct api_req *r)
{
	size_t n = 0;

	while (n < API_SEG_MAX && d->pattern[n] != NULL)
		n++;
	if (n != r->nseg)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(d->pattern[i], "*") != 0 &&
		    !api_is_word_in(r->seg[i], d->pattern[i]))
			return false;
	}
	return true;
}

void
api_route(struct api_req *r)
{
	bool path_known = false;

	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const struct api_route_def *d = &api_routes[i];
		if (!api_is_path_match(d, r))
			continue;
		path_known = true;
		if (strcmp(d->method, r->method) == 0) {
			d->fn(r);
			return;
		}
	}
	if (path_known)
		api_fail(r, 405, "method %s is not allowed on %s", r->method, r->path);
	else
		api_fail(r, 404, "no such endpoint: %s", r->path);
}
