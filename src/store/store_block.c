/*
 * store_block: blocks of (source IP, destination MX IP) pairs in the SQLite
 * backend (DESIGN 5.2; tables block and block_event of migration 2). Every
 * change of a block writes one block_event row, so `sluice block show`
 * tells when it was created, each probe, and who released it.
 *
 * A block stands while block.released is 0; releasing sets it to the time
 * of release and released_by to who did it. Rows are never deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define STORE_BLOCKS_MAX 100000 /* rows of one listing */
#define STORE_BLOCK_HISTORY_MAX 10000

static const char store_block_cols[] =
    "SELECT id, stream, source_ip, mx_ip, mx_host, domain, reason, code,"
    " created, last_probe, next_probe, probes, permanent, last_probe_result,"
    " released, released_by FROM block";

/* Append a history row for block id. */
static int
store_block_event(struct store *st, int64_t id, msec_t now, const char *kind,
    const char *detail, const char *by)
{
	sqlite3_stmt *s;
	int rc;

	s = store_prepare(st, "INSERT INTO block_event (block_id, time, kind,"
	    " detail, \"by\") VALUES (?1, ?2, ?3, ?4, ?5)");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	store_bind_text(s, 3, kind);
	store_bind_text(s, 4, detail ? detail : "");
	store_bind_text(s, 5, by ? by : "");
	rc = store_step_done(st, s, "block history");
	sqlite3_finalize(s);
	return rc;
}

/* Fill b from a row of store_block_cols. */
static void
store_block_from_row(sqlite3_stmt *s, struct store_block *b)
{
	memset(b, 0, sizeof(*b));
	b->id = sqlite3_column_int64(s, 0);
	str_copy(b->stream, store_col_text(s, 1), sizeof(b->stream));
	str_copy(b->source_ip, store_col_text(s, 2), sizeof(b->source_ip));
	str_copy(b->mx_ip, store_col_text(s, 3), sizeof(b->mx_ip));
	str_copy(b->mx_host, store_col_text(s, 4), sizeof(b->mx_host));
	str_copy(b->domain, store_col_text(s, 5), sizeof(b->domain));
	str_copy(b->reason, store_col_text(s, 6), sizeof(b->reason));
	b->code = sqlite3_column_int(s, 7);
	b->created = sqlite3_column_int64(s, 8);
	b->last_probe = sqlite3_column_int64(s, 9);
	b->next_probe = sqlite3_column_int64(s, 10);
	b->probes = sqlite3_column_int(s, 11);
	b->permanent = sqlite3_column_int(s, 12) != 0;
	str_copy(b->last_probe_result, store_col_text(s, 13),
	    sizeof(b->last_probe_result));
}

/* A text column as a JSON string; bytes that are not UTF-8 become '?'. */
static json_t *
store_block_str(const char *v)
{
	json_t *j = json_string(v);
	char *copy;

	if (j != NULL)
		return j;
	copy = xstrdup(v);
	for (char *p = copy; *p; p++) {
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	}
	j = json_string(copy);
	free(copy);
	return j ? j : json_string("");
}

/* A row of store_block_cols as the API's object. */
static json_t *
store_block_row_json(sqlite3_stmt *s)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:i,s:I,s:I,s:I,s:i,s:b,"
	    "s:o,s:I,s:o}",
	    "id", (json_int_t)sqlite3_column_int64(s, 0),
	    "stream", store_block_str(store_col_text(s, 1)),
	    "source_ip", store_block_str(store_col_text(s, 2)),
	    "mx_ip", store_block_str(store_col_text(s, 3)),
	    "mx_host", store_block_str(store_col_text(s, 4)),
	    "domain", store_block_str(store_col_text(s, 5)),
	    "reason", store_block_str(store_col_text(s, 6)),
	    "code", sqlite3_column_int(s, 7),
	    "created", (json_int_t)sqlite3_column_int64(s, 8),
	    "last_probe", (json_int_t)sqlite3_column_int64(s, 9),
	    "next_probe", (json_int_t)sqlite3_column_int64(s, 10),
	    "probes", sqlite3_column_int(s, 11),
	    "permanent", sqlite3_column_int(s, 12) != 0,
	    "last_probe_result", store_block_str(store_col_text(s, 13)),
	    "released", (json_int_t)sqlite3_column_int64(s, 14),
	    "released_by", store_block_str(store_col_text(s, 15)));
}

/* The id of the standing block of the pair, 0 if none, negative on error. */
static int64_t
store_block_standing(struct store *st, const char *source_ip, const char *mx_ip)
{
	sqlite3_stmt *s;
	int64_t id = 0;
	int rc;

	s = store_prepare(st, "SELECT id FROM block WHERE source_ip = ?1"
	    " AND mx_ip = ?2 AND released = 0 ORDER BY id LIMIT 1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, source_ip);
	store_bind_text(s, 2, mx_ip);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		id = store_dberr(st, "block lookup");
	sqlite3_finalize(s);
	return id;
}

/*
 * A pair has at most one standing block: adding one that stands already
 * returns the existing block's id (history: "seen again" with the reply)
 * instead of a second row.
 */
int
store_block_add(struct store *st, struct store_block *b, msec_t now)
{
	sqlite3_stmt *s = NULL;
	char sp[32], domain[sizeof(b->domain)];
	int64_t id;
	int rc;

	if (b->source_ip[0] == '\0' || b->mx_ip[0] == '\0')
		return store_fail(st, STORE_EINVAL,
		    "a block needs a source IP and an MX IP");
	str_copy(domain, b->domain, sizeof(domain));
	str_lower(domain);
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	if ((id = store_block_standing(st, b->source_ip, b->mx_ip)) < 0) {
		rc = (int)id;
		goto rollback;
	}
	if (id > 0) {
		b->id = id;
		rc = store_block_event(st, id, now, "seen again", b->reason,
		    "engine");
		if (rc < 0)
			goto rollback;
		return store_sp_release(st, sp);
	}
	s = store_prepare(st, "INSERT INTO block (stream, source_ip, mx_ip, mx_host,"
	    " domain, reason, code, created, last_probe, next_probe, probes,"
	    " permanent, last_probe_result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
	    " ?8, ?9, ?10, ?11, ?12, ?13)");
	if (s == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	store_bind_text(s, 1, b->stream);
	store_bind_text(s, 2, b->source_ip);
	store_bind_text(s, 3, b->mx_ip);
	store_bind_text(s, 4, b->mx_host);
	store_bind_text(s, 5, domain);
	store_bind_text(s, 6, b->reason);
	sqlite3_bind_int(s, 7, b->code);
	sqlite3_bind_int64(s, 8, b->created > 0 ? b->created : now);
	sqlite3_bind_int64(s, 9, b->last_probe);
	sqlite3_bind_int64(s, 10, b->permanent ? 0 : b->next_probe);
	sqlite3_bind_int(s, 11, b->probes);
	sqlite3_bind_int(s, 12, b->permanent ? 1 : 0);
	store_bind_text(s, 13, b->last_probe_result);
	if ((rc = store_step_done(st, s, "block insert")) < 0)
		goto rollback;
	b->id = sqlite3_last_insert_rowid(st->db);
	if (b->created <= 0)
		b->created = now;
	if (b->permanent)
		b->next_probe = 0;
	str_copy(b->domain, domain, sizeof(b->domain));
	if ((rc = store_block_event(st, b->id, now, "created", b->reason,
	    "engine")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	return store_sp_release(st, sp);

rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

int
store_blocks_active(struct store *st, struct store_block **out, size_t *n)
{
	struct store_block *v = NULL;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	char *sql;
	int rc;

	*out = NULL;
	*n = 0;
	sql = xasprintf("%s WHERE released = 0 ORDER BY id", store_block_cols);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return STORE_EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		v = xgrow(v, &cap, cnt + 1, sizeof(*v));
		store_block_from_row(s, &v[cnt++]);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_dberr(st, "blocks");
	}
	*out = v;
	*n = cnt;
	return 0;
}

int
store_block_probed(struct store *st, int64_t id, msec_t now, msec_t next_probe,
    const char *result)
{
	sqlite3_stmt *s = NULL;
	char sp[32];
	int rc;

	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	s = store_prepare(st, "UPDATE block SET last_probe = ?2,"
	    " next_probe = CASE WHEN permanent THEN 0 ELSE ?3 END,"
	    " probes = probes + 1, last_probe_result = ?4"
	    " WHERE id = ?1 AND released = 0");
	if (s == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, next_probe);
	store_bind_text(s, 4, result ? result : "");
	if ((rc = store_step_done(st, s, "block probe")) < 0)
		goto rollback;
	if (sqlite3_changes(st->db) == 0) {
		rc = store_fail(st, STORE_ENOTFOUND, "no standing block %lld",
		    (long long)id);
		goto rollback;
	}
	if ((rc = store_block_event(st, id, now, "probe", result, "probe")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	return store_sp_release(st, sp);

rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

int
store_block_release(struct store *st, int64_t id, const char *domain,
    const char *source_ip, const char *by, msec_t now, int64_t *n)
{
	sqlite3_stmt *s = NULL, *u = NULL;
	char sp[32], *dom = NULL;
	int64_t count = 0;
	int rc;

	if (n != NULL)
		*n = 0;
	if (by == NULL || *by == '\0')
		by = "operator";
	if (domain != NULL) {
		dom = xstrdup(domain);
		str_lower(dom);
	}
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		goto out;
	s = store_prepare(st, "SELECT id FROM block WHERE released = 0"
	    " AND (?1 = 0 OR id = ?1) AND (?2 IS NULL OR domain = ?2)"
	    " AND (?3 IS NULL OR source_ip = ?3) ORDER BY id");
	u = store_prepare(st, "UPDATE block SET released = ?2, released_by = ?3"
	    " WHERE id = ?1");
	if (s == NULL || u == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	sqlite3_bind_int64(s, 1, id > 0 ? id : 0);
	store_bind_text(s, 2, dom);
	store_bind_text(s, 3, source_ip);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t bid = sqlite3_column_int64(s, 0);

		sqlite3_bind_int64(u, 1, bid);
		sqlite3_bind_int64(u, 2, now);
		store_bind_text(u, 3, by);
		if ((rc = store_step_done(st, u, "block release")) < 0)
			goto rollback;
		if ((rc = store_block_event(st, bid, now, "released", NULL, by)) < 0)
			goto rollback;
		count++;
	}
	if (rc != SQLITE_DONE) {
		rc = store_dberr(st, "block release");
		goto rollback;
	}
	if (id > 0 && count == 0) {
		rc = store_fail(st, STORE_ENOTFOUND, "no standing block %lld",
		    (long long)id);
		goto rollback;
	}
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	s = u = NULL;
	if ((rc = store_sp_release(st, sp)) < 0)
		goto out;
	if (n != NULL)
		*n = count;
	goto out;

rollback:
	sqlite3_finalize(s);
	sqlite3_finalize(u);
	store_sp_rollback(st, sp);
out:
	free(dom);
	return rc;
}

int
store_block_set_permanent(struct store *st, int64_t id, bool permanent,
    msec_t next_probe, msec_t now)
{
	sqlite3_stmt *s = NULL;
	char sp[32];
	int rc;

	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		return rc;
	s = store_prepare(st, "UPDATE block SET permanent = ?2, next_probe = ?3"
	    " WHERE id = ?1 AND released = 0");
	if (s == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, permanent ? 1 : 0);
	sqlite3_bind_int64(s, 3, permanent ? 0 : next_probe);
	if ((rc = store_step_done(st, s, "block permanent")) < 0)
		goto rollback;
	if (sqlite3_changes(st->db) == 0) {
		rc = store_fail(st, STORE_ENOTFOUND, "no standing block %lld",
		    (long long)id);
		goto rollback;
	}
	if ((rc = store_block_event(st, id, now,
	    permanent ? "permanent" : "not permanent", NULL, "operator")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	return store_sp_release(st, sp);

rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
	return rc;
}

/*
 * A block is in a stream's view when the stream found it or when its source
 * IP is one of the stream's IPs (a block of the pair holds for every stream
 * that sends from that IP).
 */
json_t *
store_blocks_json(struct store *st, const char *stream, const char *domain,
    const char *source_ip, bool include_released)
{
	struct buf sql;
	sqlite3_stmt *s;
	json_t *arr;
	char *dom = NULL;
	int rc;

	buf_init(&sql, 4096);
	buf_puts(&sql, store_block_cols);
	buf_puts(&sql, " WHERE (?1 IS NULL OR stream = ?1 OR source_ip IN"
	    " (SELECT i.ip FROM stream_ip i JOIN stream t ON t.id = i.stream_id"
	    " WHERE t.name = ?1))"
	    " AND (?2 IS NULL OR domain = ?2) AND (?3 IS NULL OR source_ip = ?3)");
	if (!include_released)
		buf_puts(&sql, " AND released = 0");
	buf_printf(&sql, " ORDER BY id LIMIT %d", STORE_BLOCKS_MAX);
	s = store_prepare(st, sql.data);
	buf_fini(&sql);
	if (s == NULL)
		return NULL;
	if (domain != NULL) {
		dom = xstrdup(domain);
		str_lower(dom);
	}
	store_bind_text(s, 1, stream);
	store_bind_text(s, 2, dom);
	store_bind_text(s, 3, source_ip);
	arr = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(arr, store_block_row_json(s));
	sqlite3_finalize(s);
	free(dom);
	if (rc != SQLITE_DONE) {
		store_dberr(st, "blocks");
		json_decref(arr);
		return NULL;
	}
	return json_pack("{s:o}", "blocks", arr);
}

json_t *
store_block_json(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	json_t *block = NULL, *hist;
	char *sql;
	int rc;

	sql = xasprintf("%s WHERE id = ?1", store_block_cols);
	s = store_prepare(st, sql);
	free(sql);
	if (s == NULL)
		return NULL;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		block = store_block_row_json(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE) {
		store_fail(st, STORE_ENOTFOUND, "no block %lld", (long long)id);
		return NULL;
	}
	if (block == NULL) {
		store_dberr(st, "block");
		return NULL;
	}
	s = store_prepare(st, "SELECT time, kind, detail, \"by\" FROM block_event"
	    " WHERE block_id = ?1 ORDER BY id LIMIT ?2");
	if (s == NULL) {
		json_decref(block);
		return NULL;
	}
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, STORE_BLOCK_HISTORY_MAX);
	hist = json_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(hist, json_pack("{s:I,s:o,s:o,s:o}", "time",
		    (json_int_t)sqlite3_column_int64(s, 0), "kind",
		    store_block_str(store_col_text(s, 1)), "detail",
		    store_block_str(store_col_text(s, 2)), "by",
		    store_block_str(store_col_text(s, 3))));
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_dberr(st, "block history");
		json_decref(block);
		json_decref(hist);
		return NULL;
	}
	return json_pack("{s:o,s:o}", "block", block, "history", hist);
}
