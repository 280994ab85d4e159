/*
 * store_limit: domain macros ($name -> domains) and domain connection
 * limits (DESIGN 5.3) in the SQLite backend: tables `macro` and `limit`
 * (migration 3).
 *
 * Validation here is what the store can check and the policy cannot:
 * syntax and ranges of every field (so a direct caller cannot store a limit
 * the engine would refuse), that a $macro named by a limit exists, that a
 * stream:NAME source names a stream, and that a macro still used by a limit
 * is not removed. The API also runs policy/limit.h's limit_spec_check()
 * before it calls these (the store layer does not link the policy layer).
 *
 * Every write records an event row and is atomic (a savepoint).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/str.h"
#include "util/xalloc.h"

#define STORE_MACRO_DOMAINS_MAX 10000 /* domains of one macro */
#define STORE_LIMITS_MAX 100000       /* limits loaded at once */
#define STORE_MACROS_MAX 10000        /* macros loaded at once */

static const char store_limit_cols[] =
    "id, source, target, messages_per_hour, connections_per_hour,"
    " simultaneous, messages_per_connection, greylist_interval,"
    " greylist_function, greylist_max, created";

/* ---- syntax ----------------------------------------------------------- */

/* A domain name: letters, digits, '-', '_', dots between labels. */
static bool
store_is_domain(const char *s)
{
	size_t n = strlen(s);

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

static bool
store_is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* An mx: pattern: a host name with '*' wildcards, or an IP address. */
static bool
store_is_mx_pattern(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	if (store_is_ip(s))
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != '*')
			return false;
	}
	return strcmp(s, "*") != 0;
}

/* Does the macro exist? 1 yes, 0 no, negative on error. */
static int
store_macro_exists(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int rc;

	s = store_prepare(st, "SELECT 1 FROM macro WHERE name = ?1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_dberr(st, "macro lookup");
}

static int
store_limit_check_macro(struct store *st, const char *ref)
{
	int rc;

	if (!store_is_valid_name(ref + 1))
		return store_fail(st, STORE_EINVAL, "invalid macro name '%s'", ref);
	if ((rc = store_macro_exists(st, ref + 1)) < 0)
		return rc;
	if (rc == 0)
		return store_fail(st, STORE_EINVAL, "unknown macro %s", ref);
	return 0;
}

static int
store_limit_check_source(struct store *st, const char *src)
{
	int64_t id;

	if (*src == '\0')
		return 0;
	if (src[0] == '$')
		return store_limit_check_macro(st, src);
	if (str_has_prefix(src, "stream:")) {
		const char *name = src + strlen("stream:");

		if (!store_is_valid_name(name))
			return store_fail(st, STORE_EINVAL, "invalid stream name '%s'",
			    name);
		if ((id = store_stream_id(st, name)) < 0)
			return (int)id;
		if (id == 0)
			return store_fail(st, STORE_EINVAL, "no such stream '%s'", name);
		return 0;
	}
	if (store_is_ip(src) || store_is_domain(src))
		return 0;
	return store_fail(st, STORE_EINVAL, "invalid source '%s': a sender domain,"
	    " $macro, stream:NAME or an IP address", src);
}

static int
store_limit_check_target(struct store *st, const char *t)
{
	if (*t == '\0')
		return store_fail(st, STORE_EINVAL, "target is required");
	if (t[0] == '$')
		return store_limit_check_macro(st, t);
	if (str_has_prefix(t, "mx:")) {
		if (!store_is_mx_pattern(t + 3))
			return store_fail(st, STORE_EINVAL, "invalid target '%s': mx: "
			    "needs a host name pattern or an IP address", t);
		return 0;
	}
	if (store_is_ip(t))
		return store_fail(st, STORE_EINVAL,
		    "bad target '%s' (use mx:%s for an MX IP)", t, t);
	if (store_is_domain(t))
		return 0;
	return store_fail(st, STORE_EINVAL, "invalid target '%s': a domain, "
	    "$macro or mx:HOST", t);
}

/* Ranges and syntax of every field, then the references. */
static int
store_limit_check(struct store *st, const struct store_limit *l)
{
	static const struct {
		const char *what;
		size_t off;
	} nonneg[] = {
		{ "messages per hour", offsetof(struct store_limit, messages_per_hour) },
		{ "connections per hour",
		    offsetof(struct store_limit, connections_per_hour) },
		{ "messages per connection",
		    offsetof(struct store_limit, messages_per_connection) },
		{ "greylist interval", offsetof(struct store_limit, greylist_interval) },
		{ "greylist maximum", offsetof(struct store_limit, greylist_max) },
	};
	const char *f = l->greylist_function;
	int rc;

	if (memchr(l->source, '\0', sizeof(l->source)) == NULL ||
	    memchr(l->target, '\0', sizeof(l->target)) == NULL ||
	    memchr(f, '\0', sizeof(l->greylist_function)) == NULL)
		return store_fail(st, STORE_EINVAL, "limit field too long");
	if (l->simultaneous < 0 || l->simultaneous > 100)
		return store_fail(st, STORE_EINVAL,
		    "simultaneous connections must be 1 to 100");
	for (size_t i = 0; i < sizeof(nonneg) / sizeof(nonneg[0]); i++) {
		int64_t v;

		memcpy(&v, (const char *)l + nonneg[i].off, sizeof(v));
		if (v < 0)
			return store_fail(st, STORE_EINVAL, "%s must not be negative",
			    nonneg[i].what);
	}
	if (*f && strcmp(f, "same") != 0 && strcmp(f, "double") != 0 &&
	    strcmp(f, "square") != 0)
		return store_fail(st, STORE_EINVAL,
		    "unknown greylist function '%s' (same, double or square)", f);
	if (l->greylist_max > 0 && l->greylist_interval > l->greylist_max)
		return store_fail(st, STORE_EINVAL,
		    "greylist maximum (%" PRId64 " s) is below the interval (%" PRId64
		    " s)", l->greylist_max, l->greylist_interval);
	if ((rc = store_limit_check_target(st, l->target)) < 0)
		return rc;
	return store_limit_check_source(st, l->source);
}

/* Lower-case domain and mx: parts; macro and stream names keep their case. */
static void
store_limit_normalize(char *v)
{
	if (v[0] == '$' || str_has_prefix(v, "stream:"))
		return;
	str_lower(v);
}

static void
store_limit_bind(sqlite3_stmt *s, const struct store_limit *l, const char *src,
    const char *dst)
{
	store_bind_text(s, 1, src);
	store_bind_text(s, 2, dst);
	sqlite3_bind_int64(s, 3, l->messages_per_hour);
	sqlite3_bind_int64(s, 4, l->connections_per_hour);
	sqlite3_bind_int64(s, 5, l->simultaneous);
	sqlite3_bind_int64(s, 6, l->messages_per_connection);
	sqlite3_bind_int64(s, 7, l->greylist_interval);
	store_bind_text(s, 8, l->greylist_function);
	sqlite3_bind_int64(s, 9, l->greylist_max);
}

/* ---- limits ----------------------------------------------------------- */

static int
store_limit_write(struct store *st, struct store_limit *l, bool insert, msec_t now)
{
	char src[sizeof(l->source)], dst[sizeof(l->target)], sp[32], subj[32];
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = store_limit_check(st, l)) < 0)
		return rc;
	str_copy(src, l->source, sizeof(src));
	str_copy(dst, l->target, sizeof(dst));
	store_limit_normalize(src);
	store_limit_normalize(dst);
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	if (insert)
		s = store_prepare(st, "INSERT INTO \"limit\" (source, target,"
		    " messages_per_hour, connections_per_hour, simultaneous,"
		    " messages_per_connection, greylist_interval, greylist_function,"
		    " greylist_max, created)"
		    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
	else
		s = store_prepare(st, "UPDATE \"limit\" SET source = ?1, target = ?2,"
		    " messages_per_hour = ?3, connections_per_hour = ?4,"
		    " simultaneous = ?5, messages_per_connection = ?6,"
		    " greylist_interval = ?7, greylist_function = ?8,"
		    " greylist_max = ?9 WHERE id = ?10");
	if (s == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	store_limit_bind(s, l, src, dst);
	sqlite3_bind_int64(s, 10, insert ? now : l->id);
	if ((rc = store_step_done(st, s, insert ? "limit add" : "limit update")) < 0)
		goto rollback;
	if (!insert && sqlite3_changes(st->db) == 0) {
		rc = store_fail(st, STORE_ENOTFOUND, "no limit %" PRId64, l->id);
		goto rollback;
	}
	if (insert) {
		l->id = sqlite3_last_insert_rowid(st->db);
		l->created = now;
		str_copy(l->source, src, sizeof(l->source));
		str_copy(l->target, dst, sizeof(l->target));
	}
	snprintf(subj, sizeof(subj), "%" PRId64, l->id);
	rc = store_event(st, now, insert ? "limit.add" : "limit.update", subj, NULL);
	if (rc < 0)
		goto rollback;
	sqlite3_finalize(s);
	return store_sp_release(st, sp);

rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

int
store_limit_add(struct store *st, struct store_limit *l, msec_t now)
{
	return store_limit_write(st, l, true, now);
}

int
store_limit_update(struct store *st, const struct store_limit *l)
{
	struct store_limit copy = *l;

	return store_limit_write(st, &copy, false, time_now_ms());
}

int
store_limit_rm(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	char subj[32];
	int rc;

	s = store_prepare(st, "DELETE FROM \"limit\" WHERE id = ?1");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = store_step_done(st, s, "limit rm");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = store_fail(st, STORE_ENOTFOUND, "no limit %" PRId64, id);
	if (rc == 0) {
		snprintf(subj, sizeof(subj), "%" PRId64, id);
		rc = store_event(st, time_now_ms(), "limit.rm", subj, NULL);
	}
	return rc;
}

static void
store_limit_row(sqlite3_stmt *s, struct store_limit *l)
{
	memset(l, 0, sizeof(*l));
	l->id = sqlite3_column_int64(s, 0);
	str_copy(l->source, store_col_text(s, 1), sizeof(l->source));
	str_copy(l->target, store_col_text(s, 2), sizeof(l->target));
	l->messages_per_hour = sqlite3_column_int64(s, 3);
	l->connections_per_hour = sqlite3_column_int64(s, 4);
	l->simultaneous = sqlite3_column_int64(s, 5);
	l->messages_per_connection = sqlite3_column_int64(s, 6);
	l->greylist_interval = sqlite3_column_int64(s, 7);
	str_copy(l->greylist_function, store_col_text(s, 8),
	    sizeof(l->greylist_function));
	l->greylist_max = sqlite3_column_int64(s, 9);
	l->created = sqlite3_column_int64(s, 10);
}

int
store_limits_all(struct store *st, struct store_limit **out, size_t *n)
{
	struct store_limit *v = NULL;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	char sql[512];
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT %s FROM \"limit\" ORDER BY id LIMIT %d",
	    store_limit_cols, STORE_LIMITS_MAX);
	if ((s = store_prepare(st, sql)) == NULL)
		return STORE_EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, cnt + 1, sizeof(*v));
		store_limit_row(s, &v[cnt++]);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_dberr(st, "limits");
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* A number, or null when blank (0). */
static json_t *
store_json_blank_int(int64_t v)
{
	return v == 0 ? json_null() : json_integer(v);
}

static json_t *
store_json_blank_str(const char *v)
{
	return *v == '\0' ? json_null() : json_string(v);
}

json_t *
store_limits_json(struct store *st)
{
	struct store_limit *v;
	json_t *arr;
	size_t n;

	if (store_limits_all(st, &v, &n) < 0)
		return NULL;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "id", json_integer(v[i].id));
		json_object_set_new(o, "source", store_json_blank_str(v[i].source));
		json_object_set_new(o, "target", json_string(v[i].target));
		json_object_set_new(o, "messages_per_hour",
		    store_json_blank_int(v[i].messages_per_hour));
		json_object_set_new(o, "connections_per_hour",
		    store_json_blank_int(v[i].connections_per_hour));
		json_object_set_new(o, "simultaneous",
		    store_json_blank_int(v[i].simultaneous));
		json_object_set_new(o, "messages_per_connection",
		    store_json_blank_int(v[i].messages_per_connection));
		json_object_set_new(o, "greylist_interval",
		    store_json_blank_int(v[i].greylist_interval));
		json_object_set_new(o, "greylist_function",
		    store_json_blank_str(v[i].greylist_function));
		json_object_set_new(o, "greylist_max",
		    store_json_blank_int(v[i].greylist_max));
		json_object_set_new(o, "created", json_integer(v[i].created));
		json_array_append_new(arr, o);
	}
	free(v);
	return json_pack("{s:o}", "limits", arr);
}

/* ---- macros ----------------------------------------------------------- */

/* The name without one leading '$'. */
static const char *
store_macro_name(const char *name)
{
	if (name != NULL && name[0] == '$')
		return name + 1;
	return name;
}

int
store_macro_set(struct store *st, const char *name, const char *const *domains,
    size_t n)
{
	msec_t now = time_now_ms();
	sqlite3_stmt *s;
	json_t *arr;
	char *text, dom[256];
	int rc;

	name = store_macro_name(name);
	if (!store_is_valid_name(name))
		return store_fail(st, STORE_EINVAL, "invalid macro name '%s': 1 to 64 "
		    "letters, digits, '.', '_' or '-'", name ? name : "");
	if (n == 0 || n > STORE_MACRO_DOMAINS_MAX)
		return store_fail(st, STORE_EINVAL, "macro $%s needs 1 to %d domains",
		    name, STORE_MACRO_DOMAINS_MAX);
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		size_t j;
		json_t *v;

		if (domains[i] == NULL ||
		    str_copy(dom, domains[i], sizeof(dom)) >= sizeof(dom) ||
		    !store_is_domain(dom)) {
			json_decref(arr);
			return store_fail(st, STORE_EINVAL,
			    "macro $%s: '%s' is not a domain name", name,
			    domains[i] ? domains[i] : "");
		}
		str_lower(dom);
		json_array_foreach(arr, j, v)
			if (strcmp(json_string_value(v), dom) == 0)
				dup = true;
		if (!dup)
			json_array_append_new(arr, json_string(dom));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	s = store_prepare(st, "INSERT INTO macro (name, domains, created, updated)"
	    " VALUES (?1, ?2, ?3, ?3) ON CONFLICT (name) DO UPDATE SET"
	    " domains = excluded.domains, updated = excluded.updated");
	if (s == NULL) {
		free(text);
		return STORE_EIO;
	}
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, text);
	sqlite3_bind_int64(s, 3, now);
	rc = store_step_done(st, s, "macro set");
	sqlite3_finalize(s);
	if (rc == 0)
		rc = store_event(st, now, "macro.set", name, text);
	free(text);
	return rc;
}

int
store_macro_rm(struct store *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	char ref[80], sp[32];
	int64_t used = 0;
	int rc;

	name = store_macro_name(name);
	if (!store_is_valid_name(name))
		return store_fail(st, STORE_ENOTFOUND, "no macro $%s", name ? name : "");
	snprintf(ref, sizeof(ref), "$%s", name);
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	s = store_prepare(st, "SELECT id FROM \"limit\" WHERE source = ?1"
	    " OR target = ?1 ORDER BY id LIMIT 1");
	if (s == NULL)
		goto eio;
	store_bind_text(s, 1, ref);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		used = sqlite3_column_int64(s, 0);
	} else if (rc != SQLITE_DONE) {
		rc = store_dberr(st, "macro rm");
		goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (used) {
		rc = store_fail(st, STORE_EBUSY, "macro %s is used by limit %" PRId64,
		    ref, used);
		goto rollback;
	}
	s = store_prepare(st, "DELETE FROM macro WHERE name = ?1");
	if (s == NULL)
		goto eio;
	store_bind_text(s, 1, name);
	if ((rc = store_step_done(st, s, "macro rm")) < 0)
		goto rollback;
	if (sqlite3_changes(st->db) == 0) {
		rc = store_fail(st, STORE_ENOTFOUND, "no macro %s", ref);
		goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = store_event(st, time_now_ms(), "macro.rm", name, NULL)) < 0)
		goto rollback;
	return store_sp_release(st, sp);

eio:
	rc = STORE_EIO;
rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

/* Every macro as (name, parsed domains array), by name. */
static json_t *
store_macros_rows(struct store *st)
{
	sqlite3_stmt *s;
	json_t *arr;
	int rc;

	s = store_prepare(st, "SELECT name, domains FROM macro ORDER BY name");
	if (s == NULL)
		return NULL;
	arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW &&
	    json_array_size(arr) < STORE_MACROS_MAX) {
		json_t *doms = json_loads(store_col_text(s, 1), 0, NULL);

		if (!json_is_array(doms)) {
			json_decref(doms);
			doms = json_array();
		}
		json_array_append_new(arr, json_pack("{s:s,s:o}", "name",
		    store_col_text(s, 0), "domains", doms));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		json_decref(arr);
		store_dberr(st, "macros");
		return NULL;
	}
	return arr;
}

json_t *
store_macros_json(struct store *st)
{
	json_t *arr = store_macros_rows(st);

	if (arr == NULL)
		return NULL;
	return json_pack("{s:o}", "macros", arr);
}

int
store_macros_all(struct store *st, char ***names, char ****domains)
{
	json_t *arr, *o, *d;
	char **nv, ***dv;
	size_t i, j, n;

	*names = NULL;
	*domains = NULL;
	if ((arr = store_macros_rows(st)) == NULL)
		return STORE_EIO;
	n = json_array_size(arr);
	nv = xcalloc(n + 1, sizeof(*nv));
	dv = xcalloc(n + 1, sizeof(*dv));
	json_array_foreach(arr, i, o) {
		json_t *doms = json_object_get(o, "domains");

		nv[i] = xstrdup(json_string_value(json_object_get(o, "name")));
		dv[i] = xcalloc(json_array_size(doms) + 1, sizeof(**dv));
		json_array_foreach(doms, j, d)
			dv[i][j] = xstrdup(json_is_string(d) ? json_string_value(d) : "");
	}
	json_decref(arr);
	*names = nv;
	*domains = dv;
	return 0;
}

void
store_macros_free(char **names, char ***domains)
{
	size_t i;

	if (domains != NULL)
		for (i = 0; domains[i] != NULL; i++)
			store_strv_free(domains[i]);
	free(domains);
	store_strv_free(names);
}
