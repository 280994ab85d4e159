/*
 * store_mailing: mailings and their recipients in the SQLite backend: the
 * creation of a mailing (segment evaluation, stream choice, one recipient
 * per active member in one INSERT ... SELECT), the engine's claim / finish
 * cycle and the attempt and connection logs. The per-state counters of a
 * mailing are kept in mailing_count by a trigger on recipient.state, so
 * they always add up and reading them costs one row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define STORE_CLAIM_MAX 100000

static const char *const store_rcpt_states[] = {
	"pending", "inflight", "sent", "deferred", "failed", "expired", "skipped",
	"suppressed",
};

static bool
store_is_rcpt_state(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < sizeof(store_rcpt_states) / sizeof(store_rcpt_states[0]); i++)
		if (strcmp(s, store_rcpt_states[i]) == 0)
			return true;
	return false;
}

/* ---- mailing creation ------------------------------------------------- */

struct store_mailing_src {
	int64_t list_id;
	int64_t segment_id;    /* 0: whole list */
	char *domains;         /* JSON array text or NULL */
	char *fields;          /* JSON object text or NULL */
	char *stream_cand[3];  /* segment, list, site defaults (NULL if unset) */
};

static void
store_mailing_src_fini(struct store_mailing_src *m)
{
	size_t i;

	free(m->domains);
	free(m->fields);
	for (i = 0; i < 3; i++)
		free(m->stream_cand[i]);
}

static char *
store_col_dup(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return NULL;
	return xstrdup(store_col_text(s, i));
}

static int
store_mailing_src_load(struct store *st, const char *list, const char *segment,
    struct store_mailing_src *m)
{
	sqlite3_stmt *s;
	int rc;

	memset(m, 0, sizeof(*m));
	s = store_prepare(st, "SELECT l.id, l.stream, si.stream FROM list l"
	    " JOIN site si ON si.id = l.site_id WHERE l.name = ?1");
	if (s == NULL)
		return STORE_EIO;
	store_bind_text(s, 1, list);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		m->list_id = sqlite3_column_int64(s, 0);
		m->stream_cand[1] = store_col_dup(s, 1);
		m->stream_cand[2] = store_col_dup(s, 2);
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_ENOTFOUND, "no such list '%s'",
		    list ? list : "");
	if (rc != SQLITE_ROW)
		return store_dberr(st, "mailing list");
	if (segment == NULL)
		return 0;

	s = store_prepare(st, "SELECT id, domains, fields, stream FROM segment"
	    " WHERE list_id = ?1 AND name = ?2");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, m->list_id);
	store_bind_text(s, 2, segment);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		m->segment_id = sqlite3_column_int64(s, 0);
		if (strcmp(store_col_text(s, 1), "[]") != 0)
			m->domains = store_col_dup(s, 1);
		if (strcmp(store_col_text(s, 2), "{}") != 0)
			m->fields = store_col_dup(s, 2);
		m->stream_cand[0] = store_col_dup(s, 3);
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_ENOTFOUND, "no segment '%s' in list '%s'",
		    segment, list);
	if (rc != SQLITE_ROW)
		return store_dberr(st, "mailing segment");
	return 0;
}

/* DESIGN 5.1: argument, segment, list, site, "default". */
static int
store_mailing_pick_stream(struct store *st, const char *explicit,
    const struct store_mailing_src *m, const char **out)
{
	int64_t id;
	size_t i;

	if (explicit) {
		if ((id = store_stream_id(st, explicit)) < 0)
			return (int)id;
		if (id == 0)
			return store_fail(st, STORE_ENOTFOUND, "no such stream '%s'",
			    explicit);
		*out = explicit;
		return 0;
	}
	for (i = 0; i < 3; i++) {
		if (m->stream_cand[i] == NULL || *m->stream_cand[i] == '\0')
			continue;
		if ((id = store_stream_id(st, m->stream_cand[i])) < 0)
			return (int)id;
		if (id > 0) {
			*out = m->stream_cand[i];
			return 0;
		}
	}
	*out = "default";
	return 0;
}

static const char store_rcpt_insert_sql[] =
    "INSERT INTO recipient (mailing_id, member_id, domain, state, next_at,"
    " created, updated)"
    " SELECT ?1, m.id, m.domain, 'pending', ?2, ?2, ?2 FROM member m"
    " WHERE m.list_id = ?3 AND m.status = 'active'"
    " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(?4) d"
    "  WHERE m.domain = d.value"
    "  OR substr(m.domain, -length(d.value) - 1) = '.' || d.value))"
    " AND (?5 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?5) f"
    "  WHERE json_extract(m.fields, '$.\"' || f.key || '\"') IS NOT f.value))"
    " ORDER BY m.id";

int
store_mailing_create(struct store *st, const char *list, const char *segment,
    const char *stream, const char *message, size_t message_len, msec_t now,
    int64_t *id)
{
	struct store_mailing_src src;
	sqlite3_stmt *s = NULL;
	const char *chosen = NULL;
	char sp[32], detail[128], subject[32];
	int64_t mid = 0, nrcpt;
	int rc;

	if (message == NULL || message_len == 0)
		return store_fail(st, STORE_EINVAL, "empty message");
	if ((rc = store_mailing_src_load(st, list, segment, &src)) < 0)
		goto out;
	if ((rc = store_mailing_pick_stream(st, stream, &src, &chosen)) < 0)
		goto out;
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0)
		goto out;

	s = store_prepare(st, "INSERT INTO mailing (list_id, segment_id, stream,"
	    " state, created, updated, message) VALUES (?1, ?2, ?3, 'sending',"
	    " ?4, ?4, ?5)");
	if (s == NULL)
		goto eio;
	sqlite3_bind_int64(s, 1, src.list_id);
	if (src.segment_id)
		sqlite3_bind_int64(s, 2, src.segment_id);
	store_bind_text(s, 3, chosen);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_blob64(s, 5, message, message_len, SQLITE_STATIC);
	if ((rc = store_step_done(st, s, "mailing create")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	mid = sqlite3_last_insert_rowid(st->db);

	s = store_prepare(st, store_rcpt_insert_sql);
	if (s == NULL)
		goto eio;
	sqlite3_bind_int64(s, 1, mid);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, src.list_id);
	store_bind_text(s, 4, src.domains);
	store_bind_text(s, 5, src.fields);
	if ((rc = store_step_done(st, s, "mailing recipients")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	nrcpt = sqlite3_changes64(st->db);

	s = store_prepare(st, "INSERT INTO mailing_count (mailing_id, total, pending)"
	    " VALUES (?1, ?2, ?2)");
	if (s == NULL)
		goto eio;
	sqlite3_bind_int64(s, 1, mid);
	sqlite3_bind_int64(s, 2, nrcpt);
	if ((rc = store_step_done(st, s, "mailing counts")) < 0)
		goto rollback;
	sqlite3_finalize(s);
	s = NULL;

	snprintf(detail, sizeof(detail), "{\"recipients\":%lld}", (long long)nrcpt);
	snprintf(subject, sizeof(subject), "%lld", (long long)mid);
	if ((rc = store_event(st, now, "mailing.create", subject, detail)) < 0)
		goto rollback;
	if ((rc = store_sp_release(st, sp)) < 0)
		goto out;
	if (id)
		*id = mid;
	rc = 0;
	goto out;

eio:
	rc = STORE_EIO;
rollback:
	sqlite3_finalize(s);
	store_sp_rollback(st, sp);
out:
	store_mailing_src_fini(&src);
	return rc;
}

int
store_mailing_set_state(struct store *st, int64_t id, const char *state, msec_t now)
{
	sqlite3_stmt *s;
	char cur[16] = "", subject[32], detail[64];
	int rc;

	if (state == NULL || (strcmp(state, "queued") != 0 &&
	    strcmp(state, "sending") != 0 && strcmp(state, "paused") != 0 &&
	    strcmp(state, "done") != 0 && strcmp(state, "cancelled") != 0))
		return store_fail(st, STORE_EINVAL, "invalid mailing state '%s'",
		    state ? state : "");
	s = store_prepare(st, "SELECT state FROM mailing WHERE id = ?1");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		str_copy(cur, store_col_text(s, 0), sizeof(cur));
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_ENOTFOUND, "no such mailing %lld",
		    (long long)id);
	if (rc != SQLITE_ROW)
		return store_dberr(st, "mailing state");
	if (strcmp(cur, state) == 0)
		return 0;
	if (strcmp(cur, "done") == 0 || strcmp(cur, "cancelled") == 0)
		return store_fail(st, STORE_EINVAL, "mailing %lld is already %s",
		    (long long)id, cur);
	s = store_prepare(st, "UPDATE mailing SET state = ?2, updated = ?3,"
	    " finished = CASE WHEN ?2 IN ('done','cancelled') THEN ?3 ELSE NULL END"
	    " WHERE id = ?1");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	store_bind_text(s, 2, state);
	sqlite3_bind_int64(s, 3, now);
	rc = store_step_done(st, s, "mailing state");
	sqlite3_finalize(s);
	if (rc < 0)
		return rc;
	snprintf(subject, sizeof(subject), "%lld", (long long)id);
	snprintf(detail, sizeof(detail), "{\"from\":\"%s\",\"to\":\"%s\"}", cur,
	    state);
	return store_event(st, now, "mailing.state", subject, detail);
}

int
store_mailings_active(struct store *st, struct store_mailing **out, size_t *n)
{
	struct store_mailing *v = NULL;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*n = 0;
	s = store_prepare(st, "SELECT m.id, m.list_id, l.name, m.stream, l.from_addr,"
	    " m.state, m.message, m.created FROM mailing m"
	    " JOIN list l ON l.id = m.list_id WHERE m.state = 'sending'"
	    " ORDER BY m.id");
	if (s == NULL)
		return STORE_EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_mailing *m;
		const void *blob;
		size_t len;

		v = xgrow(v, &cap, cnt + 1, sizeof(*v));
		m = &v[cnt++];
		m->id = sqlite3_column_int64(s, 0);
		m->list_id = sqlite3_column_int64(s, 1);
		m->list = xstrdup(store_col_text(s, 2));
		m->stream = xstrdup(store_col_text(s, 3));
		m->from = xstrdup(store_col_text(s, 4));
		m->state = xstrdup(store_col_text(s, 5));
		blob = sqlite3_column_blob(s, 6);
		len = (size_t)sqlite3_column_bytes(s, 6);
		m->message = xmalloc(len + 1);
		if (len)
			memcpy(m->message, blob, len);
		m->message[len] = '\0';
		m->message_len = len;
		m->created = sqlite3_column_int64(s, 7);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_mailings_free(v, cnt);
		return store_dberr(st, "active mailings");
	}
	*out = v;
	*n = cnt;
	return 0;
}

void
store_mailings_free(struct store_mailing *m, size_t n)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(m[i].list);
		free(m[i].stream);
		free(m[i].from);
		free(m[i].state);
		free(m[i].message);
	}
	free(m);
}

int
store_mailing_counts(struct store *st, int64_t id, struct store_counts *c)
{
	sqlite3_stmt *s;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((s = store_stmt(st, STMT_COUNTS)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		c->total = sqlite3_column_int64(s, 0);
		c->pending = sqlite3_column_int64(s, 1);
		c->inflight = sqlite3_column_int64(s, 2);
		c->sent = sqlite3_column_int64(s, 3);
		c->deferred = sqlite3_column_int64(s, 4);
		c->failed = sqlite3_column_int64(s, 5);
		c->expired = sqlite3_column_int64(s, 6);
		c->skipped = sqlite3_column_int64(s, 7);
		c->suppressed = sqlite3_column_int64(s, 8);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return store_fail(st, STORE_ENOTFOUND, "no such mailing %lld",
		    (long long)id);
	if (rc != SQLITE_ROW)
		return store_dberr(st, "mailing counts");
	return 0;
}

/* ---- the engine's cycle ----------------------------------------------- */

static int
store_kind_parse(const char *k)
{
	if (strcmp(k, "digest") == 0)
		return MEMBER_DIGEST;
	if (strcmp(k, "moderator") == 0)
		return MEMBER_MODERATOR;
	return MEMBER_NORMAL;
}

static char *
store_skip_json(const char *const *skip, size_t n_skip)
{
	json_t *arr;
	char *text, *d;
	size_t i;

	if (n_skip == 0)
		return NULL;
	arr = json_array();
	for (i = 0; i < n_skip; i++) {
		if (skip[i] == NULL)
			continue;
		d = xstrdup(skip[i]);
		str_lower(d);
		json_array_append_new(arr, json_string(d));
		free(d);
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/* Set the state of the recipients ids[0..n) in one statement. */
static int
store_rcpt_set_states(struct store *st, const int64_t *ids, size_t n,
    const char *state, msec_t now)
{
	struct buf b;
	sqlite3_stmt *s;
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	buf_init(&b, STORE_CLAIM_MAX * 24 + 16);
	buf_putc(&b, '[');
	for (i = 0; i < n; i++)
		if (buf_printf(&b, "%s%lld", i ? "," : "", (long long)ids[i]) < 0) {
			buf_fini(&b);
			return store_fail(st, STORE_EINVAL, "too many recipients");
		}
	buf_putc(&b, ']');
	if ((s = store_stmt(st, STMT_RCPT_SET_STATES)) == NULL) {
		buf_fini(&b);
		return STORE_EIO;
	}
	sqlite3_bind_text(s, 1, b.data, (int)b.len, SQLITE_STATIC);
	store_bind_text(s, 2, state);
	sqlite3_bind_int64(s, 3, now);
	rc = store_step_done(st, s, "recipient state");
	sqlite3_clear_bindings(s);
	buf_fini(&b);
	return rc;
}

int
store_recipients_claim(struct store *st, int64_t mailing_id, msec_t now,
    size_t max, const char *const *skip, size_t n_skip,
    struct store_recipient **out, size_t *n)
{
	struct store_recipient *v = NULL;
	int64_t *gone = NULL, *ids = NULL;
	size_t cnt = 0, cap = 0, ngone = 0, gcap = 0, i;
	sqlite3_stmt *s;
	char sp[32], *skiptext;
	int rc;

	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	if (max > STORE_CLAIM_MAX)
		max = STORE_CLAIM_MAX;
	skiptext = store_skip_json(skip, n_skip);
	if ((rc = store_sp_begin(st, sp, sizeof(sp))) < 0) {
		free(skiptext);
		return rc;
	}
	if ((s = store_stmt(st, STMT_CLAIM)) == NULL) {
		rc = STORE_EIO;
		goto rollback;
	}
	sqlite3_bind_int64(s, 1, mailing_id);
	sqlite3_bind_int64(s, 2, now);
	store_bind_text(s, 3, skiptext);
	sqlite3_bind_int64(s, 4, (int64_t)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_recipient *r;

		if (strcmp(store_col_text(s, 7), "active") != 0) {
			gone = xgrow(gone, &gcap, ngone + 1, sizeof(*gone));
			gone[ngone++] = sqlite3_column_int64(s, 0);
			continue;
		}
		v = xgrow(v, &cap, cnt + 1, sizeof(*v));
		r = &v[cnt++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(s, 0);
		r->mailing_id = mailing_id;
		r->member_id = sqlite3_column_int64(s, 1);
		str_copy(r->email, store_col_text(s, 2), sizeof(r->email));
		str_copy(r->domain, store_col_text(s, 3), sizeof(r->domain));
		r->name = xstrdup(store_col_text(s, 4));
		r->fields = xstrdup(*store_col_text(s, 5) ? store_col_text(s, 5) : "{}");
		r->kind = store_kind_parse(store_col_text(s, 6));
		r->attempts = sqlite3_column_int(s, 8);
		r->created = sqlite3_column_int64(s, 9);
		str_copy(r->sticky_ip, store_col_text(s, 10), sizeof(r->sticky_ip));
	}
	if (rc != SQLITE_DONE) {
		rc = store_dberr(st, "claim");
		sqlite3_reset(s);
		goto rollback;
	}
	sqlite3_reset(s);
	ids = xcalloc(cnt + 1, sizeof(*ids));
	for (i = 0; i < cnt; i++)
		ids[i] = v[i].id;
	if ((rc = store_rcpt_set_states(st, ids, cnt, "inflight", now)) < 0)
		goto rollback;
	if ((rc = store_rcpt_set_states(st, gone, ngone, "suppressed", now)) < 0)
		goto rollback;
	if ((rc = store_sp_release(st, sp)) < 0)
		goto released;
	free(ids);
	free(gone);
	free(skiptext);
	*out = v;
	*n = cnt;
	return 0;

rollback:
	store_sp_rollback(st, sp);
released:
	store_recipients_free(v, cnt);
	free(ids);
	free(gone);
	free(skiptext);
	return rc;
}

void
store_recipients_free(struct store_recipient *r, size_t n)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].fields);
	}
	free(r);
}

int
store_recover_inflight(struct store *st, int64_t *n)
{
	sqlite3_stmt *s;
	int rc;

	if (n)
		*n = 0;
	s = store_prepare(st, "UPDATE recipient SET state = 'pending'"
	    " WHERE state = 'inflight'");
	if (s == NULL)
		return STORE_EIO;
	rc = store_step_done(st, s, "recover inflight");
	sqlite3_finalize(s);
	if (rc == 0 && n)
		*n = sqlite3_changes64(st->db);
	return rc;
}

int
store_mailing_next_due(struct store *st, int64_t mailing_id, msec_t *next)
{
	sqlite3_stmt *s;
	int rc;

	*next = 0;
	if ((s = store_stmt(st, STMT_NEXT_DUE)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, mailing_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		*next = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return store_dberr(st, "next due");
	return 0;
}

int
store_mailing_finish_if_done(struct store *st, int64_t mailing_id, msec_t now)
{
	struct store_counts c;
	sqlite3_stmt *s;
	int rc;

	if ((rc = store_mailing_counts(st, mailing_id, &c)) < 0)
		return rc;
	if (c.pending + c.inflight + c.deferred > 0)
		return 0;
	s = store_prepare(st, "UPDATE mailing SET state = 'done', finished = ?2,"
	    " updated = ?2 WHERE id = ?1 AND state IN ('queued','sending','paused')");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, mailing_id);
	sqlite3_bind_int64(s, 2, now);
	rc = store_step_done(st, s, "mailing done");
	sqlite3_finalize(s);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(st->db) > 0) {
		char subject[32];

		snprintf(subject, sizeof(subject), "%lld", (long long)mailing_id);
		if ((rc = store_event(st, now, "mailing.done", subject, NULL)) < 0)
			return rc;
	}
	return 1;
}

int
store_recipient_finish(struct store *st, const struct store_outcome *o)
{
	sqlite3_stmt *s;
	msec_t next_at = 0;
	int rc;

	if (!store_is_rcpt_state(o->state))
		return store_fail(st, STORE_EINVAL, "invalid recipient state '%s'",
		    o->state ? o->state : "");
	if (strcmp(o->state, "deferred") == 0)
		next_at = o->next_at > 0 ? o->next_at : o->now;
	else if (strcmp(o->state, "pending") == 0)
		next_at = o->next_at > 0 ? o->next_at : o->now;
	if ((s = store_stmt(st, STMT_RCPT_FINISH)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, o->recipient_id);
	store_bind_text(s, 2, o->state);
	sqlite3_bind_int64(s, 3, next_at);
	sqlite3_bind_int(s, 4, o->attempts);
	store_bind_text(s, 5, o->sticky_ip);
	sqlite3_bind_int(s, 6, o->code);
	store_bind_text(s, 7, o->reply);
	store_bind_text(s, 8, o->category);
	sqlite3_bind_int64(s, 9, o->now);
	if ((rc = store_step_done(st, s, "recipient finish")) < 0)
		return rc;
	if (sqlite3_changes(st->db) == 0)
		return store_fail(st, STORE_ENOTFOUND, "no such recipient %lld",
		    (long long)o->recipient_id);
	return 0;
}

/* ---- logs ------------------------------------------------------------- */

int
store_attempt_add(struct store *st, const struct store_attempt *a)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = store_stmt(st, STMT_ATTEMPT_ADD)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, a->time);
	sqlite3_bind_int64(s, 2, a->mailing_id);
	sqlite3_bind_int64(s, 3, a->member_id);
	sqlite3_bind_int64(s, 4, a->recipient_id);
	store_bind_text(s, 5, a->email);
	store_bind_text(s, 6, a->domain);
	store_bind_text(s, 7, a->stream);
	store_bind_text(s, 8, a->source_ip);
	store_bind_text(s, 9, a->mx_host);
	store_bind_text(s, 10, a->mx_ip);
	store_bind_text(s, 11, a->stage);
	sqlite3_bind_int(s, 12, a->code);
	store_bind_text(s, 13, a->enhanced);
	store_bind_text(s, 14, a->text);
	store_bind_text(s, 15, a->category);
	store_bind_text(s, 16, a->action);
	store_bind_text(s, 17, a->outcome);
	sqlite3_bind_int(s, 18, a->duration_ms);
	if ((rc = store_step_done(st, s, "attempt add")) < 0)
		return rc;
	if (a->outcome == NULL)
		return 0;
	if (strcmp(a->outcome, "sent") == 0)
		return store_stat_note(st, a->stream, a->source_ip, 's');
	if (strcmp(a->outcome, "deferred") == 0)
		return store_stat_note(st, a->stream, a->source_ip, 'd');
	if (strcmp(a->outcome, "failed") == 0)
		return store_stat_note(st, a->stream, a->source_ip, 'f');
	return 0;
}

int
store_connection_add(struct store *st, const struct store_connection *c)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = store_stmt(st, STMT_CONNECTION_ADD)) == NULL)
		return STORE_EIO;
	sqlite3_bind_int64(s, 1, c->opened);
	sqlite3_bind_int64(s, 2, c->closed);
	store_bind_text(s, 3, c->stream);
	store_bind_text(s, 4, c->source_ip);
	store_bind_text(s, 5, c->mx_host);
	store_bind_text(s, 6, c->mx_ip);
	sqlite3_bind_int(s, 7, c->messages);
	sqlite3_bind_int(s, 8, c->tls ? 1 : 0);
	store_bind_text(s, 9, c->error);
	if ((rc = store_step_done(st, s, "connection add")) < 0)
		return rc;
	return store_stat_note(st, c->stream, c->source_ip, 'c');
}
