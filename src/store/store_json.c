/*
 * store_json: the read side of the SQLite backend for the API and the
 * commands: each function returns a new jansson value the caller owns
 * (json_decref), or NULL with the error in store_errmsg(). Times are
 * integers in milliseconds. Rows become objects keyed by column name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define STORE_ATTEMPTS_MAX 10000
#define STORE_MAILINGS_MAX 10000

/* The current row as an object: column name -> typed value. */
static json_t *
store_row_json(sqlite3_stmt *s)
{
	json_t *o = json_object();
	int i, n = sqlite3_column_count(s);

	for (i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(s, i);
		json_t *v;

		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER:
			v = json_integer(sqlite3_column_int64(s, i));
			break;
		case SQLITE_FLOAT:
			v = json_real(sqlite3_column_double(s, i));
			break;
		case SQLITE_NULL:
			v = json_null();
			break;
		default:
			v = json_stringn(store_col_text(s, i),
			    (size_t)sqlite3_column_bytes(s, i));
			break;
		}
		json_object_set_new(o, name, v ? v : json_null());
	}
	return o;
}

/* Run a prepared statement; every row appended to a new array. NULL on error. */
static json_t *
store_rows_json(struct store *st, sqlite3_stmt *s, const char *what)
{
	json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, store_row_json(s));
	if (rc != SQLITE_DONE) {
		store_dberr(st, what);
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* Replace a text member holding JSON by its parsed value. */
static void
store_json_parse_member(json_t *o, const char *key)
{
	const char *text = json_string_value(json_object_get(o, key));
	json_t *v;

	if (text == NULL)
		return;
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (v)
		json_object_set_new(o, key, v);
}

/* ---- streams, routes -------------------------------------------------- */

json_t *
store_streams_json(struct store *st)
{
	sqlite3_stmt *s, *si;
	json_t *arr, *ips;
	size_t i;

	s = store_prepare(st, "SELECT id, name, created FROM stream ORDER BY name");
	if (s == NULL)
		return NULL;
	arr = store_rows_json(st, s, "streams");
	sqlite3_finalize(s);
	if (arr == NULL)
		return NULL;
	si = store_prepare(st, "SELECT ip, helo FROM stream_ip WHERE stream_id = ?1"
	    " ORDER BY pos");
	if (si == NULL)
		goto fail;
	for (i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);

		sqlite3_reset(si);
		sqlite3_bind_int64(si, 1, json_integer_value(json_object_get(o, "id")));
		if ((ips = store_rows_json(st, si, "stream ips")) == NULL)
			goto fail;
		json_object_set_new(o, "ips", ips);
		json_object_del(o, "id");
	}
	sqlite3_finalize(si);
	return arr;

fail:
	sqlite3_finalize(si);
	json_decref(arr);
	return NULL;
}

json_t *
store_routes_json(struct store *st)
{
	sqlite3_stmt *s;
	json_t *arr;
	size_t i;

	s = store_prepare(st, "SELECT domain, hosts, created FROM route"
	    " ORDER BY domain = '*', domain");
	if (s == NULL)
		return NULL;
	arr = store_rows_json(st, s, "routes");
	sqlite3_finalize(s);
	for (i = 0; arr && i < json_array_size(arr); i++)
		store_json_parse_member(json_array_get(arr, i), "hosts");
	return arr;
}

/* ---- lists, members --------------------------------------------------- */

static const char store_list_sql[] =
    "SELECT l.id, l.name, l.from_addr AS \"from\", l.stream, si.name AS site,"
    " l.created FROM list l JOIN site si ON si.id = l.site_id";

static int
store_list_fill(struct store *st, json_t *o)
{
	int64_t id = json_integer_value(json_object_get(o, "id"));
	sqlite3_stmt *s;
	json_t *members, *segs;
	size_t i;
	int rc;

	s = store_prepare(st, "SELECT status, COUNT(*) FROM member"
	    " WHERE list_id = ?1 GROUP BY status");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	members = json_pack("{s:i,s:i,s:i,s:i}", "active", 0, "unsubscribed", 0,
	    "removed", 0, "held", 0);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_object_set_new(members, store_col_text(s, 0),
		    json_integer(sqlite3_column_int64(s, 1)));
	sqlite3_finalize(s);
	json_object_set_new(o, "members", members);
	if (rc != SQLITE_DONE)
		return store_dberr(st, "list members");

	s = store_prepare(st, "SELECT name, domains, fields, stream, created"
	    " FROM segment WHERE list_id = ?1 ORDER BY name");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	segs = store_rows_json(st, s, "list segments");
	sqlite3_finalize(s);
	if (segs == NULL)
		return STORE_EIO;
	for (i = 0; i < json_array_size(segs); i++) {
		store_json_parse_member(json_array_get(segs, i), "domains");
		store_json_parse_member(json_array_get(segs, i), "fields");
	}
	json_object_set_new(o, "segments", segs);
	return 0;
}

json_t *
store_list_json(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	json_t *arr, *o;
	char *sql;

	sql = xasprintf("%s WHERE l.name = ?1", store_list_sql);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return NULL;
	store_bind_text(s, 1, name);
	arr = store_rows_json(st, s, "list");
	sqlite3_finalize(s);
	if (arr == NULL)
		return NULL;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		store_fail(st, STORE_ENOTFOUND, "no such list '%s'", name ? name : "");
		return NULL;
	}
	o = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	if (store_list_fill(st, o) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
store_lists_json(struct store *st)
{
	sqlite3_stmt *s;
	json_t *arr;
	char *sql;
	size_t i;

	sql = xasprintf("%s ORDER BY l.name", store_list_sql);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return NULL;
	arr = store_rows_json(st, s, "lists");
	sqlite3_finalize(s);
	for (i = 0; arr && i < json_array_size(arr); i++) {
		if (store_list_fill(st, json_array_get(arr, i)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *
store_member_json(struct store *st, const char *email)
{
	sqlite3_stmt *s;
	json_t *arr;
	size_t i;

	s = store_prepare(st, "SELECT m.id, m.email, m.name, m.kind, m.status,"
	    " m.fields, l.name AS list, m.created, m.updated FROM member m"
	    " JOIN list l ON l.id = m.list_id WHERE m.email = ?1 ORDER BY l.name");
	if (s == NULL)
		return NULL;
	store_bind_text(s, 1, email);
	arr = store_rows_json(st, s, "member");
	sqlite3_finalize(s);
	if (arr && json_array_size(arr) == 0) {
		json_decref(arr);
		store_fail(st, STORE_ENOTFOUND, "no member '%s'", email ? email : "");
		return NULL;
	}
	for (i = 0; arr && i < json_array_size(arr); i++)
		store_json_parse_member(json_array_get(arr, i), "fields");
	return arr;
}

/* ---- mailings --------------------------------------------------------- */

static const char store_mailing_sql[] =
    "SELECT m.id, l.name AS list, sg.name AS segment, m.stream, m.state,"
    " m.created, m.updated, m.finished, length(m.message) AS message_size,"
    " c.total, c.pending, c.inflight, c.sent, c.deferred, c.failed, c.expired,"
    " c.skipped, c.suppressed"
    " FROM mailing m JOIN list l ON l.id = m.list_id"
    " LEFT JOIN segment sg ON sg.id = m.segment_id"
    " LEFT JOIN mailing_count c ON c.mailing_id = m.id";

static const char *const store_count_keys[] = {
	"total", "pending", "inflight", "sent", "deferred", "failed", "expired",
	"skipped", "suppressed",
};

/* Move the counter members of a mailing row into "counts". */
static void
store_mailing_nest_counts(json_t *o)
{
	json_t *c = json_object();
	size_t i;

	for (i = 0; i < sizeof(store_count_keys) / sizeof(store_count_keys[0]); i++) {
		json_t *v = json_object_get(o, store_count_keys[i]);

		json_object_set_new(c, store_count_keys[i],
		    json_integer(json_integer_value(v)));
		json_object_del(o, store_count_keys[i]);
	}
	json_object_set_new(o, "counts", c);
}

json_t *
store_mailing_json(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	json_t *arr, *o;
	char *sql;

	sql = xasprintf("%s WHERE m.id = ?1", store_mailing_sql);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, id);
	arr = store_rows_json(st, s, "mailing");
	sqlite3_finalize(s);
	if (arr == NULL)
		return NULL;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		store_fail(st, STORE_ENOTFOUND, "no such mailing %lld", (long long)id);
		return NULL;
	}
	o = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	store_mailing_nest_counts(o);
	return o;
}

json_t *
store_mailings_json(struct store *st, int limit)
{
	sqlite3_stmt *s;
	json_t *arr;
	char *sql;
	size_t i;

	if (limit <= 0 || limit > STORE_MAILINGS_MAX)
		limit = limit <= 0 ? 100 : STORE_MAILINGS_MAX;
	sql = xasprintf("%s ORDER BY m.id DESC LIMIT ?1", store_mailing_sql);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return NULL;
	sqlite3_bind_int(s, 1, limit);
	arr = store_rows_json(st, s, "mailings");
	sqlite3_finalize(s);
	for (i = 0; arr && i < json_array_size(arr); i++)
		store_mailing_nest_counts(json_array_get(arr, i));
	return arr;
}

/* ---- attempts, reports ------------------------------------------------ */

static const char store_attempt_cols[] =
    "SELECT id, time, mailing_id, member_id, recipient_id, email, domain, stream,"
    " source_ip, mx_host, mx_ip, stage, code, enhanced, text, category, action,"
    " outcome, duration_ms FROM attempt";

json_t *
store_attempts_json(struct store *st, const struct store_attempt_filter *f)
{
	struct buf sql;
	sqlite3_stmt *s;
	json_t *arr;
	char *dom = NULL;
	int limit = f && f->limit > 0 ? f->limit : 100;

	if (limit > STORE_ATTEMPTS_MAX)
		limit = STORE_ATTEMPTS_MAX;
	buf_init(&sql, 4096);
	buf_puts(&sql, store_attempt_cols);
	buf_puts(&sql, " WHERE 1");
	if (f && f->mailing_id)
		buf_puts(&sql, " AND mailing_id = ?1");
	if (f && f->email)
		buf_puts(&sql, " AND email = ?2");
	if (f && f->domain)
		buf_puts(&sql, " AND domain = ?3");
	buf_puts(&sql, " ORDER BY id DESC LIMIT ?4");
	s = store_prepare(st, sql.data);
	buf_fini(&sql);
	if (s == NULL)
		return NULL;
	if (f && f->mailing_id)
		sqlite3_bind_int64(s, 1, f->mailing_id);
	if (f && f->email)
		store_bind_text(s, 2, f->email);
	if (f && f->domain) {
		dom = xstrdup(f->domain);
		str_lower(dom);
		store_bind_text(s, 3, dom);
	}
	sqlite3_bind_int(s, 4, limit);
	arr = store_rows_json(st, s, "attempts");
	sqlite3_finalize(s);
	free(dom);
	return arr;
}

static json_t *
store_stat_obj(sqlite3_stmt *s, const char *key, int keycol)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I}", key, store_col_text(s, keycol),
	    "sent", (json_int_t)sqlite3_column_int64(s, keycol + 1),
	    "deferred", (json_int_t)sqlite3_column_int64(s, keycol + 2),
	    "failed", (json_int_t)sqlite3_column_int64(s, keycol + 3),
	    "connections", (json_int_t)sqlite3_column_int64(s, keycol + 4));
}

json_t *
store_report_streams_json(struct store *st)
{
	sqlite3_stmt *s = NULL, *si = NULL, *sb = NULL;
	json_t *streams = json_array(), *o, *ips, *io;
	int64_t blocked, stream_blocked;
	int rc;

	s = store_prepare(st, "WITH names AS (SELECT name FROM stream"
	    " UNION SELECT stream FROM stream_stat)"
	    " SELECT n.name, COALESCE(SUM(t.sent), 0), COALESCE(SUM(t.deferred), 0),"
	    " COALESCE(SUM(t.failed), 0), COALESCE(SUM(t.connections), 0)"
	    " FROM names n LEFT JOIN stream_stat t ON t.stream = n.name"
	    " GROUP BY n.name ORDER BY n.name");
	si = store_prepare(st, "WITH ips AS (SELECT ip, pos FROM stream_ip"
	    " WHERE stream_id = (SELECT id FROM stream WHERE name = ?1)"
	    " UNION SELECT source_ip, 1000000 FROM stream_stat WHERE stream = ?1"
	    " AND source_ip NOT IN (SELECT ip FROM stream_ip WHERE stream_id ="
	    "  (SELECT id FROM stream WHERE name = ?1)))"
	    " SELECT i.ip, COALESCE(t.sent, 0), COALESCE(t.deferred, 0),"
	    " COALESCE(t.failed, 0), COALESCE(t.connections, 0)"
	    " FROM ips i LEFT JOIN stream_stat t ON t.stream = ?1"
	    " AND t.source_ip = i.ip ORDER BY i.pos, i.ip");
	/* pairs_blocked: standing blocks from each IP (migration 2) */
	sb = store_prepare(st, "SELECT COUNT(*) FROM block WHERE released = 0"
	    " AND source_ip = ?1");
	if (s == NULL || si == NULL || sb == NULL)
		goto fail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		o = store_stat_obj(s, "name", 0);
		json_array_append_new(streams, o);
		sqlite3_reset(si);
		store_bind_text(si, 1, store_col_text(s, 0));
		ips = json_array();
		json_object_set_new(o, "ips", ips);
		stream_blocked = 0;
		while ((rc = sqlite3_step(si)) == SQLITE_ROW) {
			io = store_stat_obj(si, "ip", 0);
			json_array_append_new(ips, io);
			sqlite3_reset(sb);
			store_bind_text(sb, 1, store_col_text(si, 0));
			if (sqlite3_step(sb) != SQLITE_ROW) {
				store_dberr(st, "report blocks");
				goto fail;
			}
			blocked = sqlite3_column_int64(sb, 0);
			stream_blocked += blocked;
			json_object_set_new(io, "pairs_blocked", json_integer(blocked));
		}
		if (rc != SQLITE_DONE) {
			store_dberr(st, "report ips");
			goto fail;
		}
		json_object_set_new(o, "pairs_blocked", json_integer(stream_blocked));
	}
	if (rc != SQLITE_DONE) {
		store_dberr(st, "report streams");
		goto fail;
	}
	sqlite3_finalize(s);
	sqlite3_finalize(si);
	sqlite3_finalize(sb);
	return json_pack("{s:o}", "streams", streams);

fail:
	sqlite3_finalize(s);
	sqlite3_finalize(si);
	sqlite3_finalize(sb);
	json_decref(streams);
	return NULL;
}

json_t *
store_recipient_json(struct store *st, int64_t mailing_id, const char *email)
{
	sqlite3_stmt *s;
	json_t *arr, *rcpt, *attempts;
	char *sql;

	s = store_prepare(st, "SELECT r.id, r.mailing_id, r.member_id, m.email,"
	    " m.domain, m.name, m.status AS member_status, r.state, r.attempts,"
	    " r.next_at, r.sticky_ip, r.last_code, r.last_reply, r.last_category,"
	    " r.created, r.updated FROM member m"
	    " JOIN recipient r ON r.member_id = m.id AND r.mailing_id = ?1"
	    " WHERE m.email = ?2 LIMIT 1");
	if (s == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, mailing_id);
	store_bind_text(s, 2, email);
	arr = store_rows_json(st, s, "recipient");
	sqlite3_finalize(s);
	if (arr == NULL)
		return NULL;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		store_fail(st, STORE_ENOTFOUND, "'%s' is not a recipient of mailing %lld",
		    email ? email : "", (long long)mailing_id);
		return NULL;
	}
	rcpt = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	sql = xasprintf("%s WHERE recipient_id = ?1 ORDER BY id DESC LIMIT %d",
	    store_attempt_cols, STORE_ATTEMPTS_MAX);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL) {
		json_decref(rcpt);
		return NULL;
	}
	sqlite3_bind_int64(s, 1, json_integer_value(json_object_get(rcpt, "id")));
	attempts = store_rows_json(st, s, "recipient attempts");
	sqlite3_finalize(s);
	if (attempts == NULL) {
		json_decref(rcpt);
		return NULL;
	}
	return json_pack("{s:o,s:o}", "recipient", rcpt, "attempts", attempts);
}
