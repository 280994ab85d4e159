/*
 * store_sqlite: the SQLite backend's handle: open, pragmas, transactions,
 * savepoints, the cache of prepared statements and error reporting. The
 * operations themselves live in store_admin.c (streams, routes, lists,
 * members), store_mailing.c (mailings, recipients, logs) and store_json.c
 * (the readers behind the API).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

/* SQL of the cached statements, indexed by enum store_stmt_id. */
static const char *const store_stmt_sql[STMT__COUNT] = {
	[STMT_RCPT_FINISH] =
	    "UPDATE recipient SET state = ?2,"
	    " next_at = CASE WHEN ?3 > 0 THEN ?3 ELSE next_at END,"
	    " attempts = ?4, sticky_ip = COALESCE(?5, sticky_ip),"
	    " last_code = ?6, last_reply = COALESCE(?7, ''),"
	    " last_category = COALESCE(?8, ''), updated = ?9"
	    " WHERE id = ?1",
	[STMT_RCPT_SET_STATES] =
	    "UPDATE recipient SET state = ?2, updated = ?3"
	    " WHERE id IN (SELECT value FROM json_each(?1))",
	[STMT_ATTEMPT_ADD] =
	    "INSERT INTO attempt (time, mailing_id, member_id, recipient_id, email,"
	    " domain, stream, source_ip, mx_host, mx_ip, stage, code, enhanced, text,"
	    " category, action, outcome, duration_ms) VALUES (?1, ?2, ?3, ?4,"
	    " COALESCE(?5, ''), COALESCE(?6, ''), COALESCE(?7, ''), COALESCE(?8, ''),"
	    " COALESCE(?9, ''), COALESCE(?10, ''), COALESCE(?11, ''), ?12,"
	    " COALESCE(?13, ''), COALESCE(?14, ''), COALESCE(?15, ''),"
	    " COALESCE(?16, ''), COALESCE(?17, ''), ?18)",
	[STMT_CONNECTION_ADD] =
	    "INSERT INTO connection (opened, closed, stream, source_ip, mx_host, mx_ip,"
	    " messages, tls, error) VALUES (?1, ?2, COALESCE(?3, ''), COALESCE(?4, ''),"
	    " COALESCE(?5, ''), COALESCE(?6, ''), ?7, ?8, ?9)",
	[STMT_CLAIM] =
	    "SELECT r.id, r.member_id, m.email, r.domain, m.name, m.fields, m.kind,"
	    " m.status, r.attempts, r.created, r.sticky_ip"
	    " FROM recipient r JOIN member m ON m.id = r.member_id"
	    " WHERE r.mailing_id = ?1 AND r.state IN ('pending','deferred')"
	    " AND r.next_at <= ?2"
	    " AND (?3 IS NULL OR r.domain NOT IN (SELECT value FROM json_each(?3)))"
	    " ORDER BY r.next_at, r.id LIMIT ?4",
	[STMT_NEXT_DUE] =
	    "SELECT MIN(next_at) FROM recipient WHERE mailing_id = ?1"
	    " AND state IN ('pending','deferred')",
	[STMT_COUNTS] =
	    "SELECT total, pending, inflight, sent, deferred, failed, expired,"
	    " skipped, suppressed FROM mailing_count WHERE mailing_id = ?1",
	[STMT_MEMBER_ADD] =
	    "INSERT INTO member (list_id, email, domain, name, kind, status, fields,"
	    " created, updated) VALUES (?1, ?2, ?3, COALESCE(?4, ''), ?5, 'active',"
	    " COALESCE(?6, '{}'), ?7, ?7) ON CONFLICT (list_id, email) DO NOTHING",
	[STMT_EVENT_ADD] =
	    "INSERT INTO event (time, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)",
	[STMT_STREAM_ID] = "SELECT id FROM stream WHERE name = ?1",
	[STMT_STAT_ADD] =
	    "INSERT INTO stream_stat (stream, source_ip, sent, deferred, failed,"
	    " connections) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (stream, source_ip) DO UPDATE SET"
	    " sent = sent + excluded.sent, deferred = deferred + excluded.deferred,"
	    " failed = failed + excluded.failed,"
	    " connections = connections + excluded.connections",
};

int
store_fail(struct store *st, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return code;
}

int
store_dberr(struct store *st, const char *what)
{
	return store_fail(st, STORE_EIO, "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *
store_stmt(struct store *st, enum store_stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];

	if (s == NULL) {
		if (sqlite3_prepare_v3(st->db, store_stmt_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
			store_dberr(st, "prepare");
			return NULL;
		}
		st->stmt[id] = s;
		return s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

sqlite3_stmt *
store_prepare(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		store_dberr(st, "prepare");
		return NULL;
	}
	return s;
}

int
store_exec(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_fail(st, STORE_EIO, "database: %s",
		    msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return STORE_EIO;
	}
	return 0;
}

int
store_step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_dberr(st, what);
		sqlite3_reset(s);
		return STORE_EIO;
	}
	sqlite3_reset(s);
	return 0;
}

void
store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

const char *
store_col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? (const char *)t : "";
}

int
store_sp_begin(struct store *st, char *name, size_t namelen)
{
	char sql[64];

	snprintf(name, namelen, "sp%d", ++st->sp_serial);
	snprintf(sql, sizeof(sql), "SAVEPOINT %s", name);
	return store_exec(st, sql);
}

int
store_sp_release(struct store *st, const char *name)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "RELEASE %s", name);
	if (store_exec(st, sql) < 0) {
		store_sp_rollback(st, name);
		return STORE_EIO;
	}
	return 0;
}

void
store_sp_rollback(struct store *st, const char *name)
{
	char sql[96];

	/* Keep the caller's message: these only fail if the db is gone. */
	snprintf(sql, sizeof(sql), "ROLLBACK TO %s; RELEASE %s", name, name);
	sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

int
store_event(struct store *st, msec_t now, const char *kind, const char *subject,
    const char *detail)
{
	sqlite3_stmt *s;

	if ((s = store_stmt(st, STMT_EVENT_ADD)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, now);
	store_bind_text(s, 2, kind);
	store_bind_text(s, 3, subject ? subject : "");
	store_bind_text(s, 4, detail);
	return store_step_done(st, s, "event");
}

int64_t
store_stream_id(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int64_t id = 0;
	int rc;

	if ((s = store_stmt(st, STMT_STREAM_ID)) == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		id = store_dberr(st, "stream lookup");
	sqlite3_reset(s);
	return id;
}

bool
store_is_valid_name(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++, n++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return n <= 64;
}

/* Page cache of the writer (negative: KiB): the recipient and member
 * indexes of a large mailing stay in memory. */
#define STORE_CACHE_KIB "-65536"

static int
store_pragmas(struct store *st)
{
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (store_exec(st, "PRAGMA foreign_keys = ON") < 0)
		return STORE_EIO;
	if (st->readonly)
		return 0;
	if (store_exec(st, "PRAGMA journal_mode = WAL") < 0 ||
	    store_exec(st, "PRAGMA synchronous = NORMAL") < 0 ||
	    store_exec(st, "PRAGMA cache_size = " STORE_CACHE_KIB) < 0 ||
	    store_exec(st, "PRAGMA temp_store = MEMORY") < 0)
		return STORE_EIO;
	return 0;
}

struct store *
store_open(const char *path, bool readonly, char *err, size_t errlen)
{
	struct store *st;
	struct stat sb;
	int flags;

	if (readonly && stat(path, &sb) < 0) {
		snprintf(err, errlen, "%s: no such database (start sluice serve to "
		    "create it)", path);
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->readonly = readonly;
	flags = readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	flags |= SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "cannot open database");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	if (store_pragmas(st) < 0 || store_migrate(st) < 0) {
		snprintf(err, errlen, "%s: %s", path, st->err);
		goto fail;
	}
	return st;

fail:
	store_free(st);
	return NULL;
}

void
store_free(struct store *st)
{
	int i;

	if (st == NULL)
		return;
	store_stat_discard(st);
	free(st->stat);
	for (i = 0; i < STMT__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db)
		sqlite3_close(st->db);
	free(st);
}

const char *
store_errmsg(const struct store *st)
{
	return st->err[0] ? st->err : "no error";
}

int
store_schema_version(struct store *st)
{
	sqlite3_stmt *s;
	int v;

	s = store_prepare(st, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
	if (s == NULL)
		return STORE_EIO;
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return store_dberr(st, "schema version");
	}
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

int
store_begin(struct store *st)
{
	if (st->tx_depth > 0)
		return store_fail(st, STORE_EINVAL, "transaction already open");
	if (store_exec(st, st->readonly ? "BEGIN" : "BEGIN IMMEDIATE") < 0)
		return STORE_EIO;
	st->tx_depth = 1;
	return 0;
}

int
store_commit(struct store *st)
{
	if (st->tx_depth == 0)
		return store_fail(st, STORE_EINVAL, "no transaction open");
	if (store_stat_flush(st) < 0 || store_exec(st, "COMMIT") < 0) {
		store_stat_discard(st);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->tx_depth = 0;
		return STORE_EIO;
	}
	st->tx_depth = 0;
	return 0;
}

void
store_rollback(struct store *st)
{
	if (st->tx_depth == 0)
		return;
	store_stat_discard(st);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->tx_depth = 0;
}
