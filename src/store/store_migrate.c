/*
 * store_migrate: the numbered schema migrations of the SQLite backend.
 * Adding a schema change is appending one entry to store_migrations[];
 * entries are never edited once shipped. The versions applied are recorded
 * in schema_version; a database newer than this binary is refused.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"
#include "util/log.h"

struct store_migration {
	int version;
	const char *what;
	const char *sql;
};

#define STORE_NOW_SQL "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

static const char store_m1_sql[] =
    "CREATE TABLE site ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " stream TEXT,"
    " created INTEGER NOT NULL);"

    "CREATE TABLE stream ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"

    "CREATE TABLE stream_ip ("
    " id INTEGER PRIMARY KEY,"
    " stream_id INTEGER NOT NULL REFERENCES stream(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " ip TEXT NOT NULL,"
    " helo TEXT NOT NULL DEFAULT '',"
    " UNIQUE (stream_id, ip));"

    "CREATE TABLE route ("
    " domain TEXT PRIMARY KEY,"
    " hosts TEXT NOT NULL," /* JSON array of "host[:port]" */
    " created INTEGER NOT NULL);"

    "CREATE TABLE list ("
    " id INTEGER PRIMARY KEY,"
    " site_id INTEGER NOT NULL REFERENCES site(id),"
    " name TEXT NOT NULL UNIQUE,"
    " from_addr TEXT NOT NULL,"
    " stream TEXT,"
    " created INTEGER NOT NULL);"

    "CREATE TABLE segment ("
    " id INTEGER PRIMARY KEY,"
    " list_id INTEGER NOT NULL REFERENCES list(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " domains TEXT NOT NULL DEFAULT '[]',"
    " fields TEXT NOT NULL DEFAULT '{}',"
    " stream TEXT,"
    " created INTEGER NOT NULL,"
    " UNIQUE (list_id, name));"

    "CREATE TABLE member ("
    " id INTEGER PRIMARY KEY,"
    " list_id INTEGER NOT NULL REFERENCES list(id) ON DELETE CASCADE,"
    " email TEXT NOT NULL COLLATE NOCASE,"
    " domain TEXT NOT NULL,"
    " name TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL DEFAULT 'normal'"
    "  CHECK (kind IN ('normal','digest','moderator')),"
    " status TEXT NOT NULL DEFAULT 'active'"
    "  CHECK (status IN ('active','unsubscribed','removed','held')),"
    " fields TEXT NOT NULL DEFAULT '{}',"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX member_list_email ON member (list_id, email);"
    "CREATE INDEX member_list_status ON member (list_id, status);"
    "CREATE INDEX member_email ON member (email);"

    /* The message is stored here; the counters live in mailing_count so
     * that the hot updates never rewrite a row carrying a large BLOB. */
    "CREATE TABLE mailing ("
    " id INTEGER PRIMARY KEY,"
    " list_id INTEGER NOT NULL REFERENCES list(id),"
    " segment_id INTEGER REFERENCES segment(id),"
    " stream TEXT NOT NULL,"
    " state TEXT NOT NULL"
    "  CHECK (state IN ('queued','sending','paused','done','cancelled')),"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " finished INTEGER,"
    " message BLOB NOT NULL);"
    "CREATE INDEX mailing_state ON mailing (state);"

    "CREATE TABLE mailing_count ("
    " mailing_id INTEGER PRIMARY KEY REFERENCES mailing(id),"
    " total INTEGER NOT NULL DEFAULT 0,"
    " pending INTEGER NOT NULL DEFAULT 0,"
    " inflight INTEGER NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0,"
    " deferred INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0,"
    " expired INTEGER NOT NULL DEFAULT 0,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " suppressed INTEGER NOT NULL DEFAULT 0);"

    /* No NOT NULL or CHECK here on purpose: any constraint that can abort
     * makes SQLite open a statement journal for every UPDATE of the hot
     * path (claim, finish), which costs about half its time. Only the
     * store writes these rows, and it validates states in C. */
    "CREATE TABLE recipient ("
    " id INTEGER PRIMARY KEY,"
    " mailing_id INTEGER NOT NULL REFERENCES mailing(id),"
    " member_id INTEGER NOT NULL REFERENCES member(id),"
    " domain TEXT NOT NULL," /* the member's, so the skip list reads the index */
    " state TEXT,"
    " attempts INTEGER DEFAULT 0,"
    " next_at INTEGER,"
    " sticky_ip TEXT DEFAULT '',"
    " last_code INTEGER DEFAULT 0,"
    " last_reply TEXT DEFAULT '',"
    " last_category TEXT DEFAULT '',"
    " created INTEGER NOT NULL,"
    " updated INTEGER);"
    "CREATE UNIQUE INDEX recipient_member ON recipient (mailing_id, member_id);"
    "CREATE INDEX recipient_due ON recipient (mailing_id, next_at, id, domain)"
    " WHERE state IN ('pending','deferred');"
    "CREATE INDEX recipient_inflight ON recipient (mailing_id)"
    " WHERE state = 'inflight';"
    "CREATE INDEX recipient_by_member ON recipient (member_id);"

    /* Every state change of a recipient moves one count. */
    "CREATE TRIGGER recipient_count AFTER UPDATE OF state ON recipient"
    " WHEN old.state IS NOT new.state BEGIN"
    " UPDATE mailing_count SET"
    "  pending = pending + (new.state = 'pending') - (old.state = 'pending'),"
    "  inflight = inflight + (new.state = 'inflight') - (old.state = 'inflight'),"
    "  sent = sent + (new.state = 'sent') - (old.state = 'sent'),"
    "  deferred = deferred + (new.state = 'deferred') - (old.state = 'deferred'),"
    "  failed = failed + (new.state = 'failed') - (old.state = 'failed'),"
    "  expired = expired + (new.state = 'expired') - (old.state = 'expired'),"
    "  skipped = skipped + (new.state = 'skipped') - (old.state = 'skipped'),"
    "  suppressed = suppressed + (new.state = 'suppressed')"
    "   - (old.state = 'suppressed')"
    " WHERE mailing_id = new.mailing_id;"
    " END;"

    "CREATE TABLE attempt ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " mailing_id INTEGER NOT NULL DEFAULT 0,"
    " member_id INTEGER NOT NULL DEFAULT 0,"
    " recipient_id INTEGER NOT NULL DEFAULT 0,"
    " email TEXT NOT NULL DEFAULT '' COLLATE NOCASE,"
    " domain TEXT NOT NULL DEFAULT '',"
    " stream TEXT NOT NULL DEFAULT '',"
    " source_ip TEXT NOT NULL DEFAULT '',"
    " mx_host TEXT NOT NULL DEFAULT '',"
    " mx_ip TEXT NOT NULL DEFAULT '',"
    " stage TEXT NOT NULL DEFAULT '',"
    " code INTEGER NOT NULL DEFAULT 0,"
    " enhanced TEXT NOT NULL DEFAULT '',"
    " text TEXT NOT NULL DEFAULT '',"
    " category TEXT NOT NULL DEFAULT '',"
    " action TEXT NOT NULL DEFAULT '',"
    " outcome TEXT NOT NULL DEFAULT '',"
    " duration_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX attempt_mailing ON attempt (mailing_id);"
    "CREATE INDEX attempt_email ON attempt (email);"
    "CREATE INDEX attempt_domain ON attempt (domain);"
    "CREATE INDEX attempt_recipient ON attempt (recipient_id);"

    "CREATE TABLE connection ("
    " id INTEGER PRIMARY KEY,"
    " opened INTEGER NOT NULL,"
    " closed INTEGER NOT NULL,"
    " stream TEXT NOT NULL DEFAULT '',"
    " source_ip TEXT NOT NULL DEFAULT '',"
    " mx_host TEXT NOT NULL DEFAULT '',"
    " mx_ip TEXT NOT NULL DEFAULT '',"
    " messages INTEGER NOT NULL DEFAULT 0,"
    " tls INTEGER NOT NULL DEFAULT 0,"
    " error TEXT);"
    "CREATE INDEX connection_opened ON connection (opened);"

    /* Running totals per (stream, source IP) for the streams report, so
     * the report never scans the logs. The handle sums them in memory and
     * writes them at commit (a trigger per attempt doubled its cost). */
    "CREATE TABLE stream_stat ("
    " stream TEXT NOT NULL,"
    " source_ip TEXT NOT NULL,"
    " sent INTEGER NOT NULL DEFAULT 0,"
    " deferred INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0,"
    " connections INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (stream, source_ip)) WITHOUT ROWID;"
    "CREATE TABLE event ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " subject TEXT NOT NULL DEFAULT '',"
    " detail TEXT);"
    "CREATE INDEX event_time ON event (time);"

    /* First start: the default site and stream. */
    "INSERT INTO site (name, stream, created) VALUES ('default', NULL, "
    STORE_NOW_SQL ");"
    "INSERT INTO stream (name, created, updated) VALUES ('default', "
    STORE_NOW_SQL ", " STORE_NOW_SQL ");"
    "INSERT INTO stream_ip (stream_id, pos, ip, helo)"
    " SELECT id, 0, '0.0.0.0', '' FROM stream WHERE name = 'default';";

/* Blocks of (source IP, MX IP) pairs and their history (DESIGN 5.2).
 * released is 0 while the block stands, else when it was released. */
static const char store_m2_sql[] =
    "CREATE TABLE block ("
    " id INTEGER PRIMARY KEY,"
    " stream TEXT NOT NULL DEFAULT '',"
    " source_ip TEXT NOT NULL,"
    " mx_ip TEXT NOT NULL,"
    " mx_host TEXT NOT NULL DEFAULT '',"
    " domain TEXT NOT NULL DEFAULT '',"
    " reason TEXT NOT NULL DEFAULT '',"
    " code INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " last_probe INTEGER NOT NULL DEFAULT 0,"
    " next_probe INTEGER NOT NULL DEFAULT 0,"
    " probes INTEGER NOT NULL DEFAULT 0,"
    " permanent INTEGER NOT NULL DEFAULT 0,"
    " last_probe_result TEXT NOT NULL DEFAULT '',"
    " released INTEGER NOT NULL DEFAULT 0,"
    " released_by TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX block_released ON block (released, id);"
    "CREATE INDEX block_stream ON block (stream, released);"
    "CREATE INDEX block_domain ON block (domain, released);"
    "CREATE INDEX block_source_ip ON block (source_ip, released);"
    "CREATE INDEX block_pair ON block (source_ip, mx_ip) WHERE released = 0;"
    "CREATE TABLE block_event ("
    " id INTEGER PRIMARY KEY,"
    " block_id INTEGER NOT NULL REFERENCES block(id),"
    " time INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " detail TEXT NOT NULL DEFAULT '',"
    " \"by\" TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX block_event_block ON block_event (block_id, id);";

/* Domain macros and connection limits (DESIGN 5.3). A macro's domains are
 * a JSON array of lower-case names; blank limit fields are 0 / ''. */
static const char store_m3_sql[] =
    "CREATE TABLE macro ("
    " name TEXT PRIMARY KEY,"
    " domains TEXT NOT NULL DEFAULT '[]',"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE \"limit\" ("
    " id INTEGER PRIMARY KEY,"
    " source TEXT NOT NULL DEFAULT '',"
    " target TEXT NOT NULL,"
    " messages_per_hour INTEGER NOT NULL DEFAULT 0,"
    " connections_per_hour INTEGER NOT NULL DEFAULT 0,"
    " simultaneous INTEGER NOT NULL DEFAULT 0,"
    " messages_per_connection INTEGER NOT NULL DEFAULT 0,"
    " greylist_interval INTEGER NOT NULL DEFAULT 0,"
    " greylist_function TEXT NOT NULL DEFAULT '',"
    " greylist_max INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);";

static const struct store_migration store_migrations[] = {
	{ 1, "initial schema", store_m1_sql },
	{ 2, "blocks", store_m2_sql },
	{ 3, "domain macros and connection limits", store_m3_sql },
};

#define STORE_NMIGRATIONS (sizeof(store_migrations) / sizeof(store_migrations[0]))

int
store_migrate_latest(void)
{
	return store_migrations[STORE_NMIGRATIONS - 1].version;
}

static int
store_has_version_table(struct store *st, bool *has)
{
	sqlite3_stmt *s;
	int rc;

	s = store_prepare(st, "SELECT 1 FROM sqlite_master WHERE type = 'table'"
	    " AND name = 'schema_version'");
	if (s == NULL)
		return STORE_EIO;
	rc = sqlite3_step(s);
	*has = rc == SQLITE_ROW;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_dberr(st, "schema check");
	return 0;
}

static int
store_current_version(struct store *st, int *version)
{
	sqlite3_stmt *s;
	bool has;
	int rc;

	*version = 0;
	if ((rc = store_has_version_table(st, &has)) < 0)
		return rc;
	if (!has)
		return 0;
	s = store_prepare(st, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
	if (s == NULL)
		return STORE_EIO;
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return store_dberr(st, "schema version");
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int
store_record_version(struct store *st, int version)
{
	sqlite3_stmt *s;
	int rc;

	s = store_prepare(st, "INSERT INTO schema_version (version, applied)"
	    " VALUES (?1, " STORE_NOW_SQL ")");
	if (s == NULL)
		return STORE_EIO;
	sqlite3_bind_int(s, 1, version);
	rc = store_step_done(st, s, "record schema version");
	sqlite3_finalize(s);
	return rc;
}

int
store_migrate(struct store *st)
{
	int latest = store_migrate_latest();
	int version, rc;
	size_t i;

	if (st->readonly) {
		if ((rc = store_current_version(st, &version)) < 0)
			return rc;
		if (version == 0)
			return store_fail(st, STORE_EINVAL,
			    "database has no sluice schema (start sluice serve once)");
		if (version != latest)
			return store_fail(st, STORE_EINVAL,
			    "database schema version %d, this sluice knows %d", version,
			    latest);
		return 0;
	}

	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		return STORE_EIO;
	rc = store_exec(st, "CREATE TABLE IF NOT EXISTS schema_version ("
	    " version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)");
	if (rc < 0)
		goto rollback;
	if ((rc = store_current_version(st, &version)) < 0)
		goto rollback;
	if (version > latest) {
		rc = store_fail(st, STORE_EINVAL,
		    "database schema version %d is newer than this sluice (%d);"
		    " refusing to open it", version, latest);
		goto rollback;
	}
	for (i = 0; i < STORE_NMIGRATIONS; i++) {
		const struct store_migration *m = &store_migrations[i];

		if (m->version <= version)
			continue;
		if ((rc = store_exec(st, m->sql)) < 0)
			goto rollback;
		if ((rc = store_record_version(st, m->version)) < 0)
			goto rollback;
		log_info("store", "event=migrated version=%d what=\"%s\"", m->version,
		    m->what);
	}
	if (store_exec(st, "COMMIT") < 0) {
		rc = STORE_EIO;
		goto rollback;
	}
	return 0;

rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
