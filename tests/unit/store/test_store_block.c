/*
 * Tests of the store's blocks (migration 2): add, active, probed, release
 * by id / domain / IP / all, permanent, the JSON views and their filters,
 * the history, pairs_blocked in the streams report, and that blocks
 * survive closing and reopening the database. Each test uses its own
 * temporary database under /tmp, removed afterwards.
 */
#define STORE_FIXTURE_DIR "/tmp/sluice-block-XXXXXX"
#include "store_fixture.h"

#include <sqlite3.h>

#define HOUR 3600000LL

/* The blocks of the fixture below. */
struct blk {
	const char *stream, *source_ip, *mx_ip, *mx_host, *domain;
};

static const struct blk blks[] = {
	{ "bulk", "192.0.2.1", "198.51.100.1", "mx1.example.com", "example.com" },
	{ "bulk", "192.0.2.2", "198.51.100.1", "mx1.example.com", "Example.COM" },
	{ "bulk", "192.0.2.2", "198.51.100.9", "mx.other.org", "other.org" },
	{ "news", "192.0.2.7", "198.51.100.9", "mx.other.org", "other.org" },
};
#define NBLKS (sizeof(blks) / sizeof(blks[0]))

static void
add_streams(struct store *st)
{
	struct store_ip bulk[2], news[1];

	memset(bulk, 0, sizeof(bulk));
	memset(news, 0, sizeof(news));
	str_copy(bulk[0].ip, "192.0.2.1", sizeof(bulk[0].ip));
	str_copy(bulk[1].ip, "192.0.2.2", sizeof(bulk[1].ip));
	str_copy(news[0].ip, "192.0.2.7", sizeof(news[0].ip));
	assert_int_equal(store_stream_put(st, "bulk", bulk, 2), 0);
	assert_int_equal(store_stream_put(st, "news", news, 1), 0);
}

static void
add_blocks(struct store *st, int64_t *ids)
{
	for (size_t i = 0; i < NBLKS; i++) {
		struct store_block b;

		memset(&b, 0, sizeof(b));
		str_copy(b.stream, blks[i].stream, sizeof(b.stream));
		str_copy(b.source_ip, blks[i].source_ip, sizeof(b.source_ip));
		str_copy(b.mx_ip, blks[i].mx_ip, sizeof(b.mx_ip));
		str_copy(b.mx_host, blks[i].mx_host, sizeof(b.mx_host));
		str_copy(b.domain, blks[i].domain, sizeof(b.domain));
		snprintf(b.reason, sizeof(b.reason), "554 5.7.1 %s listed at "
		    "zen.spamhaus.org", blks[i].source_ip);
		b.code = 554;
		b.next_probe = T0 + HOUR;
		assert_int_equal(store_block_add(st, &b, T0 + (msec_t)i), 0);
		assert_true(b.id > 0);
		ids[i] = b.id;
	}
}

static size_t
count_json(struct store *st, const char *stream, const char *domain,
    const char *ip, bool released)
{
	json_t *o = store_blocks_json(st, stream, domain, ip, released);
	size_t n;

	assert_non_null(o);
	n = json_array_size(json_object_get(o, "blocks"));
	json_decref(o);
	return n;
}

static size_t
count_active(struct store *st)
{
	struct store_block *b;
	size_t n;

	assert_int_equal(store_blocks_active(st, &b, &n), 0);
	free(b);
	return n;
}

static void
test_add_active(void **state)
{
	struct fx *f = *state;
	struct store_block *b, dup;
	int64_t ids[NBLKS];
	size_t n;

	assert_int_equal(store_schema_version(f->st) >= 2, 1);
	add_streams(f->st);
	add_blocks(f->st, ids);
	assert_int_equal(store_blocks_active(f->st, &b, &n), 0);
	assert_int_equal(n, NBLKS);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(b[i].id, ids[i]);
		assert_string_equal(b[i].source_ip, blks[i].source_ip);
		assert_string_equal(b[i].mx_ip, blks[i].mx_ip);
		assert_string_equal(b[i].mx_host, blks[i].mx_host);
		assert_string_equal(b[i].stream, blks[i].stream);
		assert_int_equal(b[i].code, 554);
		assert_int_equal(b[i].created, T0 + (msec_t)i);
		assert_int_equal(b[i].next_probe, T0 + HOUR);
		assert_int_equal(b[i].probes, 0);
		assert_false(b[i].permanent);
		assert_non_null(strstr(b[i].reason, "spamhaus"));
	}
	/* the domain is kept in lower case */
	assert_string_equal(b[1].domain, "example.com");
	free(b);

	/* the same pair again: no second row, the same id */
	memset(&dup, 0, sizeof(dup));
	str_copy(dup.source_ip, "192.0.2.1", sizeof(dup.source_ip));
	str_copy(dup.mx_ip, "198.51.100.1", sizeof(dup.mx_ip));
	str_copy(dup.reason, "again", sizeof(dup.reason));
	assert_int_equal(store_block_add(f->st, &dup, T0 + 10), 0);
	assert_int_equal(dup.id, ids[0]);
	assert_int_equal(count_active(f->st), NBLKS);

	/* a block needs both addresses */
	memset(&dup, 0, sizeof(dup));
	str_copy(dup.source_ip, "192.0.2.1", sizeof(dup.source_ip));
	assert_int_equal(store_block_add(f->st, &dup, T0), STORE_EINVAL);
}

static void
test_probed(void **state)
{
	struct fx *f = *state;
	struct store_block *b;
	int64_t ids[NBLKS];
	size_t n;

	add_streams(f->st);
	add_blocks(f->st, ids);
	assert_int_equal(store_block_probed(f->st, ids[2], T0 + HOUR,
	    T0 + 2 * HOUR, "554 still listed"), 0);
	assert_int_equal(store_block_probed(f->st, ids[2], T0 + 2 * HOUR,
	    T0 + 3 * HOUR, "connect: timed out"), 0);
	assert_int_equal(store_blocks_active(f->st, &b, &n), 0);
	assert_int_equal(b[2].probes, 2);
	assert_int_equal(b[2].last_probe, T0 + 2 * HOUR);
	assert_int_equal(b[2].next_probe, T0 + 3 * HOUR);
	assert_string_equal(b[2].last_probe_result, "connect: timed out");
	assert_int_equal(b[0].probes, 0);
	free(b);
	assert_int_equal(store_block_probed(f->st, 9999, T0, T0, "x"),
	    STORE_ENOTFOUND);
}

struct release_case {
	const char *what;
	int64_t id_index;      /* -1: no id */
	const char *domain;
	const char *source_ip;
	int rc;
	int64_t released;
	size_t left;
};

static const struct release_case release_cases[] = {
	{ "one by id", 0, NULL, NULL, 0, 1, 3 },
	{ "by domain (any case)", -1, "EXAMPLE.com", NULL, 0, 2, 2 },
	{ "by source ip", -1, NULL, "192.0.2.2", 0, 2, 2 },
	{ "domain and ip", -1, "other.org", "192.0.2.7", 0, 1, 3 },
	{ "all", -1, NULL, NULL, 0, 4, 0 },
	{ "unknown domain", -1, "nowhere.test", NULL, 0, 0, 4 },
};

static void
test_release(void **state)
{
	struct fx *f = *state;

	for (size_t c = 0; c < sizeof(release_cases) / sizeof(release_cases[0]);
	    c++) {
		const struct release_case *rc = &release_cases[c];
		int64_t ids[NBLKS], n = -1;

		/* fresh blocks for each case: release what stands first */
		assert_int_equal(store_block_release(f->st, 0, NULL, NULL,
		    "operator", T0, NULL), 0);
		add_blocks(f->st, ids);
		if (c == 0)
			add_streams(f->st);
		assert_int_equal(store_block_release(f->st,
		    rc->id_index >= 0 ? ids[rc->id_index] : 0, rc->domain,
		    rc->source_ip, "api:test", T0 + HOUR, &n), rc->rc);
		if (n != rc->released)
			fail_msg("%s: released %lld, expected %lld", rc->what,
			    (long long)n, (long long)rc->released);
		if (count_active(f->st) != rc->left)
			fail_msg("%s: %zu left, expected %zu", rc->what,
			    count_active(f->st), rc->left);
		/* released ones show with released=1 only */
		assert_int_equal(count_json(f->st, NULL, NULL, NULL, false),
		    rc->left);
	}
}

static void
test_release_by_id_twice(void **state)
{
	struct fx *f = *state;
	int64_t ids[NBLKS], n = -1;
	json_t *o, *b;

	add_blocks(f->st, ids);
	assert_int_equal(store_block_release(f->st, ids[1], NULL, NULL, "probe",
	    T0 + HOUR, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_block_release(f->st, ids[1], NULL, NULL, "probe",
	    T0 + HOUR, &n), STORE_ENOTFOUND);
	assert_int_equal(n, 0);
	assert_int_equal(store_block_release(f->st, 4242, NULL, NULL, "operator",
	    T0, &n), STORE_ENOTFOUND);
	o = store_block_json(f->st, ids[1]);
	assert_non_null(o);
	b = json_object_get(o, "block");
	assert_int_equal(json_integer_value(json_object_get(b, "released")),
	    T0 + HOUR);
	assert_string_equal(json_string_value(json_object_get(b, "released_by")),
	    "probe");
	json_decref(o);
	/* a released block can be added again as a new block */
	{
		struct store_block nb;

		memset(&nb, 0, sizeof(nb));
		str_copy(nb.source_ip, blks[1].source_ip, sizeof(nb.source_ip));
		str_copy(nb.mx_ip, blks[1].mx_ip, sizeof(nb.mx_ip));
		assert_int_equal(store_block_add(f->st, &nb, T0 + 2 * HOUR), 0);
		assert_true(nb.id != ids[1]);
	}
}

static void
test_permanent(void **state)
{
	struct fx *f = *state;
	struct store_block *b;
	int64_t ids[NBLKS];
	size_t n;

	add_blocks(f->st, ids);
	assert_int_equal(store_block_set_permanent(f->st, ids[0], true, 0, T0 + 5),
	    0);
	assert_int_equal(store_blocks_active(f->st, &b, &n), 0);
	assert_true(b[0].permanent);
	assert_int_equal(b[0].next_probe, 0);
	assert_false(b[1].permanent);
	free(b);
	/* a probe result on a permanent block keeps next_probe 0 */
	assert_int_equal(store_block_probed(f->st, ids[0], T0 + 6, T0 + HOUR,
	    "x"), 0);
	assert_int_equal(store_blocks_active(f->st, &b, &n), 0);
	assert_int_equal(b[0].next_probe, 0);
	free(b);

	assert_int_equal(store_block_set_permanent(f->st, ids[0], false,
	    T0 + 7 * HOUR, T0 + 10), 0);
	assert_int_equal(store_blocks_active(f->st, &b, &n), 0);
	assert_false(b[0].permanent);
	assert_int_equal(b[0].next_probe, T0 + 7 * HOUR);
	free(b);

	assert_int_equal(store_block_set_permanent(f->st, 777, true, 0, T0),
	    STORE_ENOTFOUND);
	assert_int_equal(store_block_release(f->st, ids[0], NULL, NULL, NULL, T0,
	    NULL), 0);
	assert_int_equal(store_block_set_permanent(f->st, ids[0], true, 0, T0),
	    STORE_ENOTFOUND);
}

struct view_case {
	const char *stream, *domain, *ip;
	bool released;
	size_t n;
	int has;  /* index into blks that must be in the view, -1 none */
};

static const struct view_case view_cases[] = {
	{ NULL, NULL, NULL, false, 3, 0 },
	{ NULL, NULL, NULL, true, 4, 3 },
	{ "bulk", NULL, NULL, false, 3, 2 },
	{ "news", NULL, NULL, false, 0, -1 },
	{ "news", NULL, NULL, true, 1, 3 },
	{ "nosuch", NULL, NULL, true, 0, -1 },
	{ NULL, "example.com", NULL, false, 2, 1 },
	{ NULL, "Other.Org", NULL, true, 2, 2 },
	{ NULL, NULL, "192.0.2.2", false, 2, 2 },
	{ "bulk", "other.org", "192.0.2.2", false, 1, 2 },
	{ "bulk", "example.com", "192.0.2.7", true, 0, -1 },
};

static void
test_views(void **state)
{
	struct fx *f = *state;
	int64_t ids[NBLKS];

	add_streams(f->st);
	add_blocks(f->st, ids);
	assert_int_equal(store_block_release(f->st, ids[3], NULL, NULL,
	    "operator", T0 + 1, NULL), 0);
	for (size_t c = 0; c < sizeof(view_cases) / sizeof(view_cases[0]); c++) {
		const struct view_case *v = &view_cases[c];
		json_t *o = store_blocks_json(f->st, v->stream, v->domain, v->ip,
		    v->released);
		json_t *arr = json_object_get(o, "blocks"), *b;
		bool found = false;
		size_t i;

		assert_non_null(o);
		if (json_array_size(arr) != v->n)
			fail_msg("case %zu: %zu blocks, expected %zu", c,
			    json_array_size(arr), v->n);
		json_array_foreach(arr, i, b) {
			if (json_integer_value(json_object_get(b, "id")) ==
			    (v->has >= 0 ? ids[v->has] : -1))
				found = true;
		}
		if (v->has >= 0 && !found)
			fail_msg("case %zu: block %d not in the view", c, v->has);
		json_decref(o);
	}
	/* a block found by another stream shows in the view of the stream
	 * that owns its source IP too */
	{
		struct store_block b;
		json_t *o;

		memset(&b, 0, sizeof(b));
		str_copy(b.stream, "news", sizeof(b.stream));
		str_copy(b.source_ip, "192.0.2.1", sizeof(b.source_ip));
		str_copy(b.mx_ip, "203.0.113.5", sizeof(b.mx_ip));
		str_copy(b.domain, "third.net", sizeof(b.domain));
		assert_int_equal(store_block_add(f->st, &b, T0), 0);
		o = store_blocks_json(f->st, "bulk", "third.net", NULL, false);
		assert_int_equal(json_array_size(json_object_get(o, "blocks")), 1);
		json_decref(o);
		o = store_blocks_json(f->st, "news", "third.net", NULL, false);
		assert_int_equal(json_array_size(json_object_get(o, "blocks")), 1);
		json_decref(o);
	}
}

static void
test_json_fields_history(void **state)
{
	struct fx *f = *state;
	int64_t ids[NBLKS];
	json_t *o, *b, *h;
	static const char *const kinds[] = { "created", "probe", "permanent",
		"not permanent", "released" };

	add_blocks(f->st, ids);
	assert_null(store_block_json(f->st, 31337));
	assert_int_equal(store_block_probed(f->st, ids[0], T0 + 1, T0 + HOUR,
	    "554 still"), 0);
	assert_int_equal(store_block_set_permanent(f->st, ids[0], true, 0, T0 + 2),
	    0);
	assert_int_equal(store_block_set_permanent(f->st, ids[0], false,
	    T0 + HOUR, T0 + 3), 0);
	assert_int_equal(store_block_release(f->st, 0, "example.com", NULL,
	    "api:admin", T0 + 4, NULL), 0);

	o = store_block_json(f->st, ids[0]);
	assert_non_null(o);
	b = json_object_get(o, "block");
	assert_string_equal(json_string_value(json_object_get(b, "source_ip")),
	    "192.0.2.1");
	assert_string_equal(json_string_value(json_object_get(b, "mx_host")),
	    "mx1.example.com");
	assert_int_equal(json_integer_value(json_object_get(b, "code")), 554);
	assert_int_equal(json_integer_value(json_object_get(b, "probes")), 1);
	assert_true(json_is_false(json_object_get(b, "permanent")));
	assert_string_equal(json_string_value(json_object_get(b, "released_by")),
	    "api:admin");
	h = json_object_get(o, "history");
	assert_int_equal(json_array_size(h), 5);
	for (size_t i = 0; i < 5; i++) {
		json_t *e = json_array_get(h, i);
		assert_string_equal(json_string_value(json_object_get(e, "kind")),
		    kinds[i]);
		assert_int_equal(json_integer_value(json_object_get(e, "time")),
		    i == 0 ? T0 : T0 + (msec_t)i);
	}
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(h, 1), "detail")), "554 still");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(h, 4), "by")), "api:admin");
	json_decref(o);
}

static void
test_invalid_utf8_reason(void **state)
{
	struct fx *f = *state;
	struct store_block b;
	json_t *o;

	memset(&b, 0, sizeof(b));
	str_copy(b.source_ip, "192.0.2.1", sizeof(b.source_ip));
	str_copy(b.mx_ip, "198.51.100.3", sizeof(b.mx_ip));
	str_copy(b.reason, "550 bad \xff\xfe bytes", sizeof(b.reason));
	assert_int_equal(store_block_add(f->st, &b, T0), 0);
	o = store_blocks_json(f->st, NULL, NULL, NULL, false);
	assert_int_equal(json_array_size(json_object_get(o, "blocks")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(o, "blocks"), 0), "reason")), "550 bad ?? bytes");
	json_decref(o);
}

static json_t *
find_named(json_t *arr, const char *key, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (strcmp(json_string_value(json_object_get(v, key)), name) == 0)
			return v;
	}
	return NULL;
}

static void
test_report_pairs_blocked(void **state)
{
	struct fx *f = *state;
	int64_t ids[NBLKS];
	json_t *o, *s, *ip;

	add_streams(f->st);
	add_blocks(f->st, ids);
	assert_int_equal(store_block_release(f->st, ids[3], NULL, NULL, "probe",
	    T0, NULL), 0);
	o = store_report_streams_json(f->st);
	assert_non_null(o);
	s = find_named(json_object_get(o, "streams"), "name", "bulk");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "pairs_blocked")), 3);
	ip = find_named(json_object_get(s, "ips"), "ip", "192.0.2.1");
	assert_int_equal(json_integer_value(json_object_get(ip, "pairs_blocked")), 1);
	ip = find_named(json_object_get(s, "ips"), "ip", "192.0.2.2");
	assert_int_equal(json_integer_value(json_object_get(ip, "pairs_blocked")), 2);
	s = find_named(json_object_get(o, "streams"), "name", "news");
	assert_int_equal(json_integer_value(json_object_get(s, "pairs_blocked")), 0);
	s = find_named(json_object_get(o, "streams"), "name", "default");
	assert_int_equal(json_integer_value(json_object_get(s, "pairs_blocked")), 0);
	json_decref(o);
}

static void
test_reopen(void **state)
{
	struct fx *f = *state;
	struct store *ro;
	int64_t ids[NBLKS];
	char err[256];
	json_t *o;

	assert_true(store_schema_version(f->st) >= 2);
	add_blocks(f->st, ids);
	assert_int_equal(store_block_set_permanent(f->st, ids[1], true, 0, T0), 0);
	assert_int_equal(store_block_release(f->st, ids[0], NULL, NULL, "operator",
	    T0, NULL), 0);
	store_free(f->st);
	f->st = store_open(f->path, false, err, sizeof(err));
	if (f->st == NULL)
		fail_msg("reopen: %s", err);
	assert_true(store_schema_version(f->st) >= 2);
	assert_int_equal(count_active(f->st), NBLKS - 1);
	assert_int_equal(count_json(f->st, NULL, NULL, NULL, true), NBLKS);

	/* a read-only handle sees them too */
	ro = store_open(f->path, true, err, sizeof(err));
	if (ro == NULL)
		fail_msg("readonly: %s", err);
	o = store_block_json(ro, ids[1]);
	assert_non_null(o);
	assert_true(json_is_true(json_object_get(json_object_get(o, "block"),
	    "permanent")));
	json_decref(o);
	store_free(ro);
}

/* The tables of schema version 1. */
static const char *const v1_tables[] = {
	"site", "stream", "stream_ip", "route", "list", "segment", "member",
	"mailing", "mailing_count", "recipient", "attempt", "connection",
	"stream_stat", "event", "schema_version",
};

static bool
is_v1_table(const char *name)
{
	for (size_t i = 0; i < sizeof(v1_tables) / sizeof(v1_tables[0]); i++) {
		if (strcmp(v1_tables[i], name) == 0)
			return true;
	}
	return str_has_prefix(name, "sqlite_");
}

/*
 * A version-1 database, made here by taking every later migration out of a
 * new one (their tables and their schema_version rows), is upgraded on
 * open and keeps its data.
 */
static void
test_upgrade_from_v1(void **state)
{
	struct fx *f = *state;
	char err[256], *sql;
	sqlite3_stmt *s;
	int latest;
	json_t *l;
	sqlite3 *db;

	assert_int_equal(store_list_create(f->st, "keep", "a@example.com", NULL,
	    NULL), 0);
	latest = store_schema_version(f->st);
	store_free(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL,
	    NULL), SQLITE_OK);
	for (;;) {
		char name[128] = "";

		assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM"
		    " sqlite_master WHERE type = 'table' ORDER BY name", -1, &s,
		    NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *n = (const char *)sqlite3_column_text(s, 0);
			if (!is_v1_table(n)) {
				str_copy(name, n, sizeof(name));
				break;
			}
		}
		sqlite3_finalize(s);
		if (name[0] == '\0')
			break;
		sql = xasprintf("DROP TABLE \"%s\"", name);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		free(sql);
	}
	assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version WHERE"
	    " version >= 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	f->st = store_open(f->path, false, err, sizeof(err));
	if (f->st == NULL)
		fail_msg("upgrade: %s", err);
	assert_int_equal(store_schema_version(f->st), latest);
	l = store_list_json(f->st, "keep");
	assert_non_null(l);
	json_decref(l);
	assert_int_equal(count_active(f->st), 0);
	{
		int64_t ids[NBLKS];

		add_blocks(f->st, ids);
		assert_int_equal(count_active(f->st), NBLKS);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_by_id_twice, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_permanent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_views, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_fields_history, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_reason, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_report_pairs_blocked, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
