/*
 * api_limits.c: the /api/v1/limits and /api/v1/macros routes (docs/api.md,
 * DESIGN 5.3). Each handler checks its body, runs limit_spec_check() (the
 * policy's own validation, so the engine never meets a limit it refuses),
 * and makes the change through engine_call(); the store then checks what
 * only it knows (a $macro exists, a stream:NAME exists, a macro in use is
 * not removed). The engine reloads limits and macros after every call.
 *
 * In bodies and answers a blank field is null (or absent): unlimited, or
 * the default. An explicit 0 is refused, so it cannot be mistaken for
 * "none allowed".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_internal.h"
#include "policy/limit.h"
#include "util/str.h"
#include "util/xalloc.h"

#define API_MACRO_DOMAINS_MAX 10000 /* domains of one macro */

/* The numeric fields of a limit body: JSON key, words for messages, and
 * where the value goes. */
static const struct {
	const char *key;
	const char *what;
	size_t off;
} api_limit_ints[] = {
	{ "messages_per_hour", "messages per hour",
	    offsetof(struct store_limit, messages_per_hour) },
	{ "connections_per_hour", "connections per hour",
	    offsetof(struct store_limit, connections_per_hour) },
	{ "simultaneous", "simultaneous connections",
	    offsetof(struct store_limit, simultaneous) },
	{ "messages_per_connection", "messages per connection",
	    offsetof(struct store_limit, messages_per_connection) },
	{ "greylist_interval", "greylist interval",
	    offsetof(struct store_limit, greylist_interval) },
	{ "greylist_max", "greylist maximum",
	    offsetof(struct store_limit, greylist_max) },
};

#define API_LIMIT_NINTS (sizeof(api_limit_ints) / sizeof(api_limit_ints[0]))

/* What a change carries to and from the engine thread. */
struct api_limit_arg {
	struct api_change c;
	struct store_limit l;
	int64_t id;
	const char *name;
	const char **domains;
	size_t ndomains;
};

static int
api_limit_add_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_limit_arg *a = arg;

	return api_change_result(&a->c, st,
	    store_limit_add(st, &a->l, time_now_ms()));
}

static int
api_limit_update_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_limit_arg *a = arg;

	return api_change_result(&a->c, st, store_limit_update(st, &a->l));
}

static int
api_limit_rm_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_limit_arg *a = arg;

	return api_change_result(&a->c, st, store_limit_rm(st, a->id));
}

static int
api_macro_set_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_limit_arg *a = arg;

	return api_change_result(&a->c, st,
	    store_macro_set(st, a->name, a->domains, a->ndomains));
}

static int
api_macro_rm_fn(struct engine *e, struct store *st, void *arg)
{
	struct api_limit_arg *a = arg;

	return api_change_result(&a->c, st, store_macro_rm(st, a->name));
}

/* ---- helpers ---------------------------------------------------------- */

/* A string member into dst: absent or null leaves "". 0 or -1 (answered). */
static int
api_limit_string(struct api_req *r, json_t *body, const char *key, char *dst,
    size_t n)
{
	json_t *v = json_object_get(body, key);

	*dst = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		api_fail(r, 400, "\"%s\" must be a string or null", key);
		return -1;
	}
	if (str_copy(dst, json_string_value(v), n) >= n) {
		api_fail(r, 400, "\"%s\" is longer than %zu characters", key, n - 1);
		return -1;
	}
	return 0;
}

/*
 * Fill l from a limit body and validate it as the policy does. Unknown
 * members are refused (a typo must not silently mean "unlimited").
 * 0, or -1 with the answer set.
 */
static int
api_limit_parse(struct api_req *r, json_t *body, struct store_limit *l)
{
	static const char *const known[] = { "id", "source", "target",
	    "messages_per_hour", "connections_per_hour", "simultaneous",
	    "messages_per_connection", "greylist_interval", "greylist_function",
	    "greylist_max", "created" };
	struct limit_spec spec;
	char err[API_ERR_MAX];
	const char *key;
	json_t *v;
	size_t i;

	memset(l, 0, sizeof(*l));
	json_object_foreach(body, key, v) {
		bool found = false;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				found = true;
		if (!found) {
			api_fail(r, 400, "unknown member \"%s\"", key);
			return -1;
		}
	}
	if (api_limit_string(r, body, "source", l->source, sizeof(l->source)) < 0 ||
	    api_limit_string(r, body, "target", l->target, sizeof(l->target)) < 0 ||
	    api_limit_string(r, body, "greylist_function", l->greylist_function,
	    sizeof(l->greylist_function)) < 0)
		return -1;
	if (l->target[0] == '\0') {
		api_fail(r, 400, "target is required");
		return -1;
	}
	for (i = 0; i < API_LIMIT_NINTS; i++) {
		int64_t n;

		v = json_object_get(body, api_limit_ints[i].key);
		if (v == NULL || json_is_null(v))
			continue;
		if (!json_is_integer(v)) {
			api_fail(r, 400, "\"%s\" must be an integer or null",
			    api_limit_ints[i].key);
			return -1;
		}
		n = json_integer_value(v);
		if (strcmp(api_limit_ints[i].key, "simultaneous") == 0 &&
		    (n < 1 || n > LIMIT_SIMULTANEOUS_MAX)) {
			api_fail(r, 400, "simultaneous connections must be 1 to %d",
			    LIMIT_SIMULTANEOUS_MAX);
			return -1;
		}
		if (n < 0) {
			api_fail(r, 400, "%s must not be negative", api_limit_ints[i].what);
			return -1;
		}
		if (n == 0) {
			api_fail(r, 400, "%s must be at least 1 (null for no limit)",
			    api_limit_ints[i].what);
			return -1;
		}
		memcpy((char *)l + api_limit_ints[i].off, &n, sizeof(n));
	}

	memset(&spec, 0, sizeof(spec));
	spec.source = l->source;
	spec.target = l->target;
	spec.messages_per_hour = l->messages_per_hour;
	spec.connections_per_hour = l->connections_per_hour;
	spec.simultaneous = l->simultaneous;
	spec.messages_per_connection = l->messages_per_connection;
	spec.greylist_interval = l->greylist_interval;
	spec.greylist_function = l->greylist_function;
	spec.greylist_max = l->greylist_max;
	if (limit_spec_check(&spec, err, sizeof(err)) < 0) {
		api_fail(r, 400, "%s", err);
		return -1;
	}
	return 0;
}

/* Limit id as listed by the read handle (a new reference), or NULL. */
static json_t *
api_limit_find(struct api_req *r, int64_t id)
{
	json_t *all, *v, *found = NULL;
	size_t i;

	if ((all = store_limits_json(r->rd)) == NULL)
		return NULL;
	json_array_foreach(json_object_get(all, "limits"), i, v) {
		if (json_integer_value(json_object_get(v, "id")) == id) {
			found = json_incref(v);
			break;
		}
	}
	json_decref(all);
	return found;
}

/* ---- limits ----------------------------------------------------------- */

void
api_get_limits(struct api_req *r)
{
	json_t *o = store_limits_json(r->rd);

	if (o == NULL) {
		api_fail_store(r, STORE_EIO, store_errmsg(r->rd));
		return;
	}
	api_reply(r, 200, o);
}

void
api_get_limit(struct api_req *r)
{
	int64_t id;
	json_t *o;

	if (api_id_arg(r, r->seg[1], "limit", &id) < 0)
		return;
	if ((o = api_limit_find(r, id)) == NULL) {
		api_fail(r, 404, "no limit %" PRId64, id);
		return;
	}
	api_reply(r, 200, o);
}

void
api_post_limit(struct api_req *r)
{
	struct api_limit_arg a;
	json_t *body, *o;
	int rc;

	memset(&a, 0, sizeof(a));
	if ((body = api_body_object(r)) == NULL)
		return;
	if (json_object_get(body, "id") != NULL) {
		api_fail(r, 400, "\"id\" is chosen by the server");
		goto out;
	}
	if (api_limit_parse(r, body, &a.l) < 0)
		goto out;
	if ((rc = engine_call(r->engine, api_limit_add_fn, &a)) < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	o = api_limit_find(r, a.l.id);
	api_reply(r, 201, o ? o : json_pack("{s:I}", "id", (json_int_t)a.l.id));
out:
	json_decref(body);
}

void
api_put_limit(struct api_req *r)
{
	struct api_limit_arg a;
	json_t *body, *o, *idv;
	int64_t id;
	int rc;

	memset(&a, 0, sizeof(a));
	if (api_id_arg(r, r->seg[1], "limit", &id) < 0)
		return;
	if ((body = api_body_object(r)) == NULL)
		return;
	idv = json_object_get(body, "id");
	if (idv != NULL && !(json_is_integer(idv) && json_integer_value(idv) == id)) {
		api_fail(r, 400, "\"id\" in the body does not match the path");
		goto out;
	}
	if (api_limit_parse(r, body, &a.l) < 0)
		goto out;
	a.l.id = id;
	if ((rc = engine_call(r->engine, api_limit_update_fn, &a)) < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	o = api_limit_find(r, id);
	api_reply(r, 200, o ? o : json_pack("{s:I}", "id", (json_int_t)id));
out:
	json_decref(body);
}

void
api_delete_limit(struct api_req *r)
{
	struct api_limit_arg a;
	int rc;

	memset(&a, 0, sizeof(a));
	if (api_id_arg(r, r->seg[1], "limit", &a.id) < 0)
		return;
	if ((rc = engine_call(r->engine, api_limit_rm_fn, &a)) < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, json_pack("{s:I}", "removed", (json_int_t)a.id));
}

/* ---- macros ----------------------------------------------------------- */

void
api_get_macros(struct api_req *r)
{
	json_t *o = store_macros_json(r->rd);

	if (o == NULL) {
		api_fail_store(r, STORE_EIO, store_errmsg(r->rd));
		return;
	}
	api_reply(r, 200, o);
}

/* The macro name of the path, without one leading '$'. */
static const char *
api_macro_name(const struct api_req *r)
{
	const char *name = r->seg[1];

	return name[0] == '$' ? name + 1 : name;
}

void
api_put_macro(struct api_req *r)
{
	struct api_limit_arg a;
	json_t *body, *doms, *v, *all, *found = NULL;
	size_t i;
	int rc;

	memset(&a, 0, sizeof(a));
	a.name = api_macro_name(r);
	if ((body = api_body_object(r)) == NULL)
		return;
	doms = json_object_get(body, "domains");
	if (!json_is_array(doms) || json_array_size(doms) == 0 ||
	    json_array_size(doms) > API_MACRO_DOMAINS_MAX) {
		api_fail(r, 400, "\"domains\" must be an array of 1 to %d domain names",
		    API_MACRO_DOMAINS_MAX);
		goto out;
	}
	a.ndomains = json_array_size(doms);
	a.domains = xcalloc(a.ndomains, sizeof(*a.domains));
	json_array_foreach(doms, i, v) {
		if (!json_is_string(v)) {
			api_fail(r, 400, "domains[%zu] is not a string", i);
			goto out;
		}
		a.domains[i] = json_string_value(v);
	}
	if ((rc = engine_call(r->engine, api_macro_set_fn, &a)) < 0) {
		api_fail_store(r, rc, a.c.err);
		goto out;
	}
	all = store_macros_json(r->rd);
	json_array_foreach(json_object_get(all, "macros"), i, v) {
		if (strcmp(json_string_value(json_object_get(v, "name")), a.name) == 0) {
			found = json_incref(v);
			break;
		}
	}
	json_decref(all);
	api_reply(r, 200, found ? found : json_pack("{s:s}", "name", a.name));
out:
	free(a.domains);
	json_decref(body);
}

void
api_delete_macro(struct api_req *r)
{
	struct api_limit_arg a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.name = api_macro_name(r);
	if ((rc = engine_call(r->engine, api_macro_rm_fn, &a)) < 0) {
		api_fail_store(r, rc, a.c.err);
		return;
	}
	api_reply(r, 200, json_pack("{s:s}", "removed", a.name));
}
