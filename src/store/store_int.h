/*
 * store_int: what the files of the SQLite backend share and nobody else
 * sees: the handle, its cache of prepared statements, error helpers, the
 * migration runner and savepoint helpers. Not included outside src/store/.
 *
 * Ownership: struct store owns its sqlite3 connection and every cached
 * statement; store_stmt() returns a statement still owned by the cache
 * (reset and with its bindings cleared), which the caller must not finalize.
 */
#ifndef SLUICE_STORE_STORE_INT_H
#define SLUICE_STORE_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/store.h"

#define STORE_ERR_MAX 512
#define STORE_BUSY_TIMEOUT_MS 5000

/* Cached statements, one per hot or frequent SQL text (see store_sqlite.c). */
enum store_stmt_id {
	STMT_RCPT_FINISH,
	STMT_RCPT_SET_STATES,
	STMT_ATTEMPT_ADD,
	STMT_CONNECTION_ADD,
	STMT_CLAIM,
	STMT_NEXT_DUE,
	STMT_COUNTS,
	STMT_MEMBER_ADD,
	STMT_EVENT_ADD,
	STMT_STREAM_ID,
	STMT_STAT_ADD,
	STMT__COUNT
};

/* Pending additions to stream_stat, written at commit (store_stat.c). */
struct store_stat_delta {
	char *stream;
	char *source_ip;
	int64_t sent, deferred, failed, connections;
};

#define STORE_STAT_DELTAS_MAX 256

struct store {
	sqlite3 *db;
	bool readonly;
	int tx_depth;   /* 1 inside store_begin() */
	int sp_serial;  /* names nested savepoints */
	sqlite3_stmt *stmt[STMT__COUNT];
	struct store_stat_delta *stat;
	size_t nstat, stat_cap;
	char err[STORE_ERR_MAX];
};

/* Set the error text and return code. */
int store_fail(struct store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* STORE_EIO with "what: <sqlite message>". */
int store_dberr(struct store *st, const char *what);

/* The cached statement id (reset, bindings cleared), or NULL (error set). */
sqlite3_stmt *store_stmt(struct store *st, enum store_stmt_id id);
/* Prepare an uncached statement; NULL with error set. */
sqlite3_stmt *store_prepare(struct store *st, const char *sql);
/* Run SQL without results; 0 or STORE_EIO. */
int store_exec(struct store *st, const char *sql);
/* Step a statement that returns no rows: 0 or STORE_EIO; resets it. */
int store_step_done(struct store *st, sqlite3_stmt *s, const char *what);

/* Bind text, NULL stays NULL. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
/* Column text, "" for NULL. */
const char *store_col_text(sqlite3_stmt *s, int i);

/* Savepoints: nest inside or outside store_begin(). A release that fails
 * rolls the savepoint back. */
int store_sp_begin(struct store *st, char *name, size_t namelen);
int store_sp_release(struct store *st, const char *name);
void store_sp_rollback(struct store *st, const char *name);

/* Append an event history row (kind, subject, detail JSON text or NULL). */
int store_event(struct store *st, msec_t now, const char *kind, const char *subject,
    const char *detail);

/* Id of a stream by name, 0 if none, negative on error. */
int64_t store_stream_id(struct store *st, const char *name);

/*
 * Count one attempt outcome or connection for (stream, source IP): kept in
 * memory inside store_begin()/store_commit(), written at once otherwise.
 * what: 's'ent, 'd'eferred, 'f'ailed, 'c'onnection.
 */
int store_stat_note(struct store *st, const char *stream, const char *source_ip,
    char what);
/* Write the pending counts (before COMMIT); 0 or STORE_EIO. */
int store_stat_flush(struct store *st);
/* Forget the pending counts (rollback, free). */
void store_stat_discard(struct store *st);

/* Apply the migrations (read-write) or check the version (read-only). */
int store_migrate(struct store *st);
/* Highest version this binary knows. */
int store_migrate_latest(void);

/* Name checks shared by the admin operations. */
bool store_is_valid_name(const char *s);

#endif
