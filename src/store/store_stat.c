/*
 * store_stat: the running totals behind the streams report. Attempts and
 * connections are logged by the thousand inside the engine's batches; their
 * per-(stream, source IP) counts are summed here in memory and written to
 * stream_stat in the same transaction, just before it commits, so a batch
 * costs a few upserts instead of one per row. A rollback forgets them.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/xalloc.h"

static struct store_stat_delta *
store_stat_find(struct store *st, const char *stream, const char *ip)
{
	struct store_stat_delta *d;
	size_t i;

	for (i = 0; i < st->nstat; i++) {
		d = &st->stat[i];
		if (strcmp(d->stream, stream) == 0 && strcmp(d->source_ip, ip) == 0)
			return d;
	}
	st->stat = xgrow(st->stat, &st->stat_cap, st->nstat + 1, sizeof(*st->stat));
	d = &st->stat[st->nstat++];
	memset(d, 0, sizeof(*d));
	d->stream = xstrdup(stream);
	d->source_ip = xstrdup(ip);
	return d;
}

int
store_stat_note(struct store *st, const char *stream, const char *source_ip,
    char what)
{
	struct store_stat_delta *d;

	if (st->tx_depth > 0 && st->nstat >= STORE_STAT_DELTAS_MAX &&
	    store_stat_flush(st) < 0)
		return STORE_EIO;
	d = store_stat_find(st, stream ? stream : "", source_ip ? source_ip : "");
	switch (what) {
	case 's':
		d->sent++;
		break;
	case 'd':
		d->deferred++;
		break;
	case 'f':
		d->failed++;
		break;
	default:
		d->connections++;
		break;
	}
	if (st->tx_depth == 0)
		return store_stat_flush(st);
	return 0;
}

int
store_stat_flush(struct store *st)
{
	struct store_stat_delta *d;
	sqlite3_stmt *s;
	size_t i;
	int rc = 0;

	for (i = 0; i < st->nstat && rc == 0; i++) {
		d = &st->stat[i];
		if ((s = store_stmt(st, STMT_STAT_ADD)) == NULL) {
			rc = STORE_EIO;
			break;
		}
		store_bind_text(s, 1, d->stream);
		store_bind_text(s, 2, d->source_ip);
		sqlite3_bind_int64(s, 3, d->sent);
		sqlite3_bind_int64(s, 4, d->deferred);
		sqlite3_bind_int64(s, 5, d->failed);
		sqlite3_bind_int64(s, 6, d->connections);
		rc = store_step_done(st, s, "stream stats");
	}
	store_stat_discard(st);
	return rc;
}

void
store_stat_discard(struct store *st)
{
	size_t i;

	for (i = 0; i < st->nstat; i++) {
		free(st->stat[i].stream);
		free(st->stat[i].source_ip);
	}
	st->nstat = 0;
}
