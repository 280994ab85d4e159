/*
 * store_admin: the administrative writes of the SQLite backend: streams,
 * routes, lists, segments and member import. Each runs in its own
 * savepoint, so it is atomic inside or outside a caller's transaction, and
 * records an event row.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/str.h"
#include "util/xalloc.h"

#define STORE_HOSTS_MAX 64

static bool
store_is_valid_ip(const char *ip)
{
	unsigned char a[16];

	return inet_pton(AF_INET, ip, a) == 1 || inet_pton(AF_INET6, ip, a) == 1;
}

/* ---- streams ---------------------------------------------------------- */

int
store_stream_put(struct store *st, const char *name, const struct store_ip *ips,
    size_t nips)
{
	msec_t now = time_now_ms();
	sqlite3_stmt *s = NULL;
	char sp[32];
	int64_t id;
	size_t i, j;
	int rc;

	if (!store_is_valid_name(name))
		return store_fail(st, STORE_EINVAL, "invalid stream name '%s'",
		    name ? name : "");
	if (nips == 0)
		return store_fail(st, STORE_EINVAL, "stream '%s' needs at least one IP",
		    name);
	for (i = 0; i < nips; i++) {
		if (!store_is_valid_ip(ips[i].ip))
			return store_fail(st, STORE_EINVAL, "invalid source IP '%s'",
			    ips[i].ip);
		for (j = 0; j < i; j++)
			if (strcmp(ips[i].ip, ips[j].ip) == 0)
				return store_fail(st, STORE_EINVAL,
				    "source IP '%s' listed twice", ips[i].ip);
	}
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	if ((id = store_stream_id(st, name)) < 0) {
		rc = (int)id;
		goto rollback;
	}
	if (id == 0) {
		s = store_prepare(st, "INSERT INTO stream (name, created, updated)"
		    " VALUES (?1, ?2, ?2)");
		if (s == NULL)
			goto eio;
		store_bind_text(s, 1, name);
		sqlite3_bind_int64(s, 2, now);
		if ((rc = store_step_done(st, s, "stream insert")) < 0)
			goto rollback;
		id = sqlite3_last_insert_rowid(st->db);
	} else {
		s = store_prepare(st, "DELETE FROM stream_ip WHERE stream_id = ?1");
		if (s == NULL)
			goto eio;
		sqlite3_bind_int64(s, 1, id);
		if ((rc = store_step_done(st, s, "stream update")) < 0)
			goto rollback;
		sqlite3_finalize(s);
		s = store_prepare(st, "UPDATE stream SET updated = ?2 WHERE id = ?1");
		if (s == NULL)
			goto eio;
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, now);
		if ((rc = store_step_done(st, s, "stream update")) < 0)
			goto rollback;
	}
	sqlite3_finalize(s);
	s = store_prepare(st, "INSERT INTO stream_ip (stream_id, pos, ip, helo)"
	    " VALUES (?1, ?2, ?3, ?4)");
	if (s == NULL)
		goto eio;
	for (i = 0; i < nips; i++) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, (int64_t)i);
		store_bind_text(s, 3, ips[i].ip);
		store_bind_text(s, 4, ips[i].helo);
		if ((rc = store_step_done(st, s, "stream ip insert")) < 0)
			goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = store_event(st, now, "stream.put", name, NULL)) < 0)
		goto rollback;
	return store_sp_release(st, sp);

eio:
	rc = STORE_EIO;
rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

int
store_stream_rm(struct store *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	char sp[32];
	int64_t id, mailing = 0;
	int rc;

	if (name && strcmp(name, "default") == 0)
		return store_fail(st, STORE_EBUSY, "the default stream cannot be removed");
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	if ((id = store_stream_id(st, name)) <= 0) {
		rc = id < 0 ? (int)id :
		    store_fail(st, STORE_ENOTFOUND, "no such stream '%s'", name);
		goto rollback;
	}
	s = store_prepare(st, "SELECT id FROM mailing WHERE stream = ?1"
	    " AND state IN ('queued','sending','paused') LIMIT 1");
	if (s == NULL)
		goto eio;
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		mailing = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE) {
		rc = store_dberr(st, "stream rm");
		goto rollback;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (mailing) {
		rc = store_fail(st, STORE_EBUSY, "stream '%s' is used by mailing %lld",
		    name, (long long)mailing);
		goto rollback;
	}
	s = store_prepare(st, "DELETE FROM stream WHERE id = ?1");
	if (s == NULL)
		goto eio;
	sqlite3_bind_int64(s, 1, id);
	if ((rc = store_step_done(st, s, "stream rm")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	s = NULL;
	if ((rc = store_event(st, time_now_ms(), "stream.rm", name, NULL)) < 0)
		goto rollback;
	return store_sp_release(st, sp);

eio:
	rc = STORE_EIO;
rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

int
store_stream_ips(struct store *st, const char *name, struct store_ip **ips,
    size_t *nips)
{
	struct store_ip *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int64_t id;
	int rc;

	*ips = NULL;
	*nips = 0;
	if ((id = store_stream_id(st, name)) < 0)
		return (int)id;
	if (id == 0)
		return store_fail(st, STORE_ENOTFOUND, "no such stream '%s'", name);
	s = store_prepare(st, "SELECT ip, helo FROM stream_ip WHERE stream_id = ?1"
	    " ORDER BY pos");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, n + 1, sizeof(*v));
		str_copy(v[n].ip, store_col_text(s, 0), sizeof(v[n].ip));
		str_copy(v[n].helo, store_col_text(s, 1), sizeof(v[n].helo));
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_dberr(st, "stream ips");
	}
	*ips = v;
	*nips = n;
	return 0;
}

/* ---- routes ----------------------------------------------------------- */

int
store_route_set(struct store *st, const char *domain, const char *const *hosts,
    size_t nhosts)
{
	sqlite3_stmt *s;
	json_t *arr;
	char *dom, *text;
	size_t i;
	int rc;

	if (domain == NULL || *domain == '\0' || strlen(domain) > 253 ||
	    strpbrk(domain, " \t\r\n,") != NULL)
		return store_fail(st, STORE_EINVAL, "invalid route domain '%s'",
		    domain ? domain : "");
	if (nhosts == 0 || nhosts > STORE_HOSTS_MAX)
		return store_fail(st, STORE_EINVAL,
		    "a route needs 1 to %d hosts", STORE_HOSTS_MAX);
	arr = json_array();
	for (i = 0; i < nhosts; i++) {
		if (hosts[i] == NULL || *hosts[i] == '\0' || strlen(hosts[i]) > 262 ||
		    strpbrk(hosts[i], " \t\r\n,") != NULL) {
			json_decref(arr);
			return store_fail(st, STORE_EINVAL, "invalid route host '%s'",
			    hosts[i] ? hosts[i] : "");
		}
		json_array_append_new(arr, json_string(hosts[i]));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	dom = xstrdup(domain);
	str_lower(dom);
	s = store_prepare(st, "INSERT INTO route (domain, hosts, created)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (domain) DO UPDATE SET"
	    " hosts = excluded.hosts");
	if (s == NULL) {
		rc = STORE_EIO;
		goto done;
	}
	store_bind_text(s, 1, dom);
	store_bind_text(s, 2, text);
	sqlite3_bind_int64(s, 3, time_now_ms());
	rc = store_step_done(st, s, "route set");
	sqlite3_finalize(s);
	if (rc == 0)
		rc = store_event(st, time_now_ms(), "route.set", dom, text);
done:
	free(dom);
	free(text);
	return rc;
}

int
store_route_rm(struct store *st, const char *domain)
{
	sqlite3_stmt *s;
	char *dom;
	int rc;

	if (domain == NULL)
		return store_fail(st, STORE_EINVAL, "no route domain");
	dom = xstrdup(domain);
	str_lower(dom);
	s = store_prepare(st, "DELETE FROM route WHERE domain = ?1");
	if (s == NULL) {
		free(dom);
		return STORE_EIO;
	}
	store_bind_text(s, 1, dom);
	rc = store_step_done(st, s, "route rm");
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = store_fail(st, STORE_ENOTFOUND, "no route for '%s'", dom);
	if (rc == 0)
		rc = store_event(st, time_now_ms(), "route.rm", dom, NULL);
	free(dom);
	return rc;
}

static int
store_route_lookup(struct store *st, const char *domain, char ***hosts)
{
	sqlite3_stmt *s;
	json_t *arr;
	json_error_t jerr;
	char **v;
	size_t i, n;
	int rc;

	s = store_prepare(st, "SELECT hosts FROM route WHERE domain = ?1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, domain);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(s);
		if (rc == SQLITE_DONE)
			return STORE_ENOTFOUND;
		return store_dberr(st, "route get");
	}
	arr = json_loads(store_col_text(s, 0), 0, &jerr);
	sqlite3_finalize(s);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return store_fail(st, STORE_EIO, "route '%s': bad hosts", domain);
	}
	n = json_array_size(arr);
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		const char *h = json_string_value(json_array_get(arr, i));

		v[i] = xstrdup(h ? h : "");
	}
	json_decref(arr);
	*hosts = v;
	return 0;
}

int
store_route_get(struct store *st, const char *domain, char ***hosts)
{
	char *dom;
	int rc;

	*hosts = NULL;
	if (domain == NULL)
		return store_fail(st, STORE_EINVAL, "no route domain");
	dom = xstrdup(domain);
	str_lower(dom);
	rc = store_route_lookup(st, dom, hosts);
	if (rc == STORE_ENOTFOUND)
		rc = store_route_lookup(st, "*", hosts);
	if (rc == STORE_ENOTFOUND)
		store_fail(st, rc, "no route for '%s'", dom);
	free(dom);
	return rc;
}

void
store_strv_free(char **v)
{
	char **p;

	if (v == NULL)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

/* ---- lists, segments -------------------------------------------------- */

static int
store_check_stream(struct store *st, const char *stream)
{
	int64_t id;

	if (stream == NULL)
		return 0;
	if ((id = store_stream_id(st, stream)) < 0)
		return (int)id;
	if (id == 0)
		return store_fail(st, STORE_ENOTFOUND, "no such stream '%s'", stream);
	return 0;
}

int
store_list_create(struct store *st, const char *name, const char *from,
    const char *stream, int64_t *id)
{
	sqlite3_stmt *s;
	msec_t now = time_now_ms();
	int rc;

	if (!store_is_valid_name(name))
		return store_fail(st, STORE_EINVAL, "invalid list name '%s'",
		    name ? name : "");
	if (from == NULL || strchr(from, '@') == NULL || strlen(from) > 320)
		return store_fail(st, STORE_EINVAL, "invalid From address '%s'",
		    from ? from : "");
	if ((rc = store_check_stream(st, stream)) < 0)
		return rc;
	s = store_prepare(st, "INSERT INTO list (site_id, name, from_addr, stream,"
	    " created) SELECT id, ?1, ?2, ?3, ?4 FROM site WHERE name = 'default'");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, name);
	store_bind_text(s, 2, from);
	store_bind_text(s, 3, stream);
	sqlite3_bind_int64(s, 4, now);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return store_fail(st, STORE_EEXISTS, "list '%s' already exists", name);
	if (rc != SQLITE_DONE)
		return store_dberr(st, "list create");
	if (id)
		*id = sqlite3_last_insert_rowid(st->db);
	return store_event(st, now, "list.create", name, NULL);
}

static int64_t
store_list_id(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int64_t id = 0;
	int rc;

	s = store_prepare(st, "SELECT id FROM list WHERE name = ?1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		id = store_dberr(st, "list lookup");
	else
		id = store_fail(st, STORE_ENOTFOUND, "no such list '%s'",
		    name ? name : "");
	sqlite3_finalize(s);
	return id;
}

int
store_segment_put(struct store *st, const char *list, const char *name,
    const char *const *domains, size_t ndomains, json_t *fields, const char *stream)
{
	sqlite3_stmt *s;
	json_t *arr;
	char *dtext, *ftext;
	int64_t list_id;
	size_t i;
	int rc;

	if (!store_is_valid_name(name))
		return store_fail(st, STORE_EINVAL, "invalid segment name '%s'",
		    name ? name : "");
	if (fields && !json_is_object(fields))
		return store_fail(st, STORE_EINVAL, "segment fields must be an object");
	if (fields) {
		const char *key;
		json_t *val;

		json_object_foreach(fields, key, val) {
			if (*key == '\0' || strpbrk(key, "\"\\") != NULL)
				return store_fail(st, STORE_EINVAL,
				    "invalid segment field name '%s'", key);
			if (json_is_object(val) || json_is_array(val))
				return store_fail(st, STORE_EINVAL,
				    "segment field '%s' must be a string, number or boolean",
				    key);
		}
	}
	if ((list_id = store_list_id(st, list)) < 0)
		return (int)list_id;
	if ((rc = store_check_stream(st, stream)) < 0)
		return rc;
	arr = json_array();
	for (i = 0; i < ndomains; i++) {
		char *d;

		if (domains[i] == NULL || *domains[i] == '\0') {
			json_decref(arr);
			return store_fail(st, STORE_EINVAL, "empty segment domain");
		}
		d = xstrdup(domains[i]);
		str_lower(d);
		json_array_append_new(arr, json_string(d));
		free(d);
	}
	dtext = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	ftext = fields ? json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS) :
	    xstrdup("{}");
	s = store_prepare(st, "INSERT INTO segment (list_id, name, domains, fields,"
	    " stream, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (list_id, name) DO UPDATE SET domains = excluded.domains,"
	    " fields = excluded.fields, stream = excluded.stream");
	if (s == NULL) {
		rc = STORE_EIO;
		goto done;
	}
	sqlite3_bind_int64(s, 1, list_id);
	store_bind_text(s, 2, name);
	store_bind_text(s, 3, dtext);
	store_bind_text(s, 4, ftext);
	store_bind_text(s, 5, stream);
	sqlite3_bind_int64(s, 6, time_now_ms());
	rc = store_step_done(st, s, "segment put");
	sqlite3_finalize(s);
	if (rc == 0)
		rc = store_event(st, time_now_ms(), "segment.put", name, ftext);
done:
	free(dtext);
	free(ftext);
	return rc;
}

/* ---- members ---------------------------------------------------------- */

static const char *
store_kind_name(enum store_member_kind k)
{
	switch (k) {
	case MEMBER_DIGEST:
		return "digest";
	case MEMBER_MODERATOR:
		return "moderator";
	case MEMBER_NORMAL:
		break;
	}
	return "normal";
}

int
store_members_import(struct store *st, const char *list,
    const struct store_member_in *m, size_t n, size_t *added, size_t *existing)
{
	msec_t now = time_now_ms();
	sqlite3_stmt *s;
	char sp[32], domain[256], detail[96];
	const char *at;
	char *ftext;
	int64_t list_id;
	size_t i, nadd = 0, nold = 0;
	int rc;

	if (added)
		*added = 0;
	if (existing)
		*existing = 0;
	if ((list_id = store_list_id(st, list)) < 0)
		return (int)list_id;
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		const char *email = m[i].email;

		if (email == NULL || (at = strrchr(email, '@')) == NULL ||
		    at == email || at[1] == '\0' || strlen(email) > 320 ||
		    strlen(at + 1) >= sizeof(domain)) {
			rc = store_fail(st, STORE_EINVAL, "member %zu: invalid address "
			    "'%s'", i + 1, email ? email : "");
			goto rollback;
		}
		if (m[i].fields && !json_is_object(m[i].fields)) {
			rc = store_fail(st, STORE_EINVAL, "member %zu: fields must be an "
			    "object", i + 1);
			goto rollback;
		}
		str_copy(domain, at + 1, sizeof(domain));
		str_lower(domain);
		if ((s = store_stmt(st, STMT_MEMBER_ADD)) == NULL) {
			rc = STORE_EIO;
			goto rollback;
		}
		ftext = m[i].fields ?
		    json_dumps(m[i].fields, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		sqlite3_bind_int64(s, 1, list_id);
		store_bind_text(s, 2, email);
		store_bind_text(s, 3, domain);
		store_bind_text(s, 4, m[i].name);
		store_bind_text(s, 5, store_kind_name(m[i].kind));
		store_bind_text(s, 6, ftext);
		sqlite3_bind_int64(s, 7, now);
		rc = store_step_done(st, s, "member import");
		free(ftext);
		if (rc < 0)
			goto rollback;
		if (sqlite3_changes(st->db) > 0)
			nadd++;
		else
			nold++;
	}
	snprintf(detail, sizeof(detail), "{\"added\":%zu,\"existing\":%zu}", nadd, nold);
	if ((rc = store_event(st, now, "member.import", list, detail)) < 0)
		goto rollback;
	if ((rc = store_sp_release(st, sp)) < 0)
		return rc;
	if (added)
		*added = nadd;
	if (existing)
		*existing = nold;
	return 0;

rollback:
	store_sp_rollback(st, sp);
	return rc;
}

int
store_member_set_status(struct store *st, const char *list, const char *email,
    const char *status)
{
	sqlite3_stmt *s;
	char subject[400];
	int64_t list_id;
	int rc;

	if (status == NULL || (strcmp(status, "active") != 0 &&
	    strcmp(status, "unsubscribed") != 0 && strcmp(status, "removed") != 0 &&
	    strcmp(status, "held") != 0))
		return store_fail(st, STORE_EINVAL, "invalid member status '%s'",
		    status ? status : "");
	if ((list_id = store_list_id(st, list)) < 0)
		return (int)list_id;
	s = store_prepare(st, "UPDATE member SET status = ?3, updated = ?4"
	    " WHERE list_id = ?1 AND email = ?2");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, list_id);
	store_bind_text(s, 2, email);
	store_bind_text(s, 3, status);
	sqlite3_bind_int64(s, 4, time_now_ms());
	rc = store_step_done(st, s, "member status");
	sqlite3_finalize(s);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(st->db) == 0)
		return store_fail(st, STORE_ENOTFOUND, "no member '%s' in list '%s'",
		    email ? email : "", list);
	snprintf(subject, sizeof(subject), "%s/%s", list, email);
	return store_event(st, time_now_ms(), "member.status", subject, NULL);
}
