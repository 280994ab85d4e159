/*
 * store_engine: queries the engine needs for blocks and expiry: a waiting
 * recipient to probe a block with, the number waiting for a domain, and the
 * expiry of what a mailing still has waiting past its maximum age.
 */
#include <string.h>

#include "store/store_int.h"
#include "util/str.h"

int
store_waiting_recipient(struct store *st, const char *stream, const char *domain,
    char *email, size_t n)
{
	sqlite3_stmt *s;
	int rc;

	s = store_prepare(st, "SELECT m.email FROM recipient r"
	    " JOIN mailing g ON g.id = r.mailing_id"
	    " JOIN member m ON m.id = r.member_id"
	    " WHERE g.state = 'sending' AND g.stream = ?1 AND r.domain = ?2"
	    " AND r.state IN ('pending','deferred') LIMIT 1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, stream);
	store_bind_text(s, 2, domain);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		str_copy(email, store_col_text(s, 0), n);
		sqlite3_finalize(s);
		return 0;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_dberr(st, "waiting recipient");
	return store_fail(st, STORE_ENOTFOUND, "no recipient of %s waits", domain);
}

int
store_domain_waiting(struct store *st, const char *stream, const char *domain,
    int64_t *count)
{
	sqlite3_stmt *s;
	int rc;

	*count = 0;
	s = store_prepare(st, "SELECT COUNT(*) FROM recipient r"
	    " JOIN mailing g ON g.id = r.mailing_id"
	    " WHERE g.state = 'sending' AND g.stream = ?1 AND r.domain = ?2"
	    " AND r.state IN ('pending','deferred')");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, stream);
	store_bind_text(s, 2, domain);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : store_dberr(st, "domain waiting");
}

int
store_mailing_domain_waiting(struct store *st, int64_t mailing_id, const char *domain,
    int64_t *count)
{
	sqlite3_stmt *s;
	int rc;

	*count = 0;
	s = store_prepare(st, "SELECT COUNT(*) FROM recipient WHERE mailing_id = ?1"
	    " AND domain = ?2 AND state IN ('pending','deferred')");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, mailing_id);
	store_bind_text(s, 2, domain);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : store_dberr(st, "mailing domain waiting");
}

int
store_mailing_expire(struct store *st, int64_t mailing_id, msec_t cutoff, msec_t now,
    int64_t *n)
{
	sqlite3_stmt *s;
	int rc;

	*n = 0;
	s = store_prepare(st, "UPDATE recipient SET state = 'expired', updated = ?3,"
	    " last_reply = 'expired: maximum age reached while waiting',"
	    " last_category = 'expired'"
	    " WHERE mailing_id = ?1 AND state IN ('pending','deferred')"
	    " AND created < ?2");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, mailing_id);
	sqlite3_bind_int64(s, 2, cutoff);
	sqlite3_bind_int64(s, 3, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		*n = sqlite3_changes(sqlite3_db_handle(s));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : store_dberr(st, "mailing expire");
}
