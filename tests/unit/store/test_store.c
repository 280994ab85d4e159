/*
 * Tests of the SQLite store on temporary database files under /tmp, each
 * removed after its test.
 */
#include "store_fixture.h"

#include <sqlite3.h>

#include "store/store_int.h"

static const char msg[] = "From: a@b\r\nSubject: hi\r\n\r\nhello {{name}}\r\n";

/* helpers */

static void
add_members(struct store *st, const char *list, const char *const *emails, size_t n)
{
	struct store_member_in *m = xcalloc(n, sizeof(*m));
	size_t i, added, existing;

	for (i = 0; i < n; i++)
		m[i].email = emails[i];
	assert_int_equal(store_members_import(st, list, m, n, &added, &existing), 0);
	free(m);
}

static int64_t
mk_mailing(struct store *st, const char *list, const char *segment,
    const char *stream)
{
	int64_t id = 0;

	assert_int_equal(store_mailing_create(st, list, segment, stream, msg,
	    strlen(msg), T0, &id), 0);
	assert_true(id > 0);
	return id;
}

static void
assert_counts_add_up(struct store *st, int64_t id)
{
	struct store_counts c;

	assert_int_equal(store_mailing_counts(st, id, &c), 0);
	assert_int_equal(c.total, c.pending + c.inflight + c.sent + c.deferred +
	    c.failed + c.expired + c.skipped + c.suppressed);
}

/* The counters agree with the recipient rows themselves. */
static void
assert_counts_match_rows(const char *path, struct store *st, int64_t id)
{
	struct store_counts c;
	sqlite3_stmt *q;
	sqlite3 *db;
	int64_t rows[9] = { 0 };
	static const char *const states[] = { "pending", "inflight", "sent",
		"deferred", "failed", "expired", "skipped", "suppressed" };
	size_t i;

	assert_int_equal(store_mailing_counts(st, id, &c), 0);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, COUNT(*) FROM"
	    " recipient WHERE mailing_id = ?1 GROUP BY state", -1, &q, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(q, 1, id);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(q, 0);

		for (i = 0; i < 8; i++)
			if (strcmp(s, states[i]) == 0)
				rows[i] = sqlite3_column_int64(q, 1);
		rows[8] += sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	assert_int_equal(c.pending, rows[0]);
	assert_int_equal(c.inflight, rows[1]);
	assert_int_equal(c.sent, rows[2]);
	assert_int_equal(c.deferred, rows[3]);
	assert_int_equal(c.failed, rows[4]);
	assert_int_equal(c.expired, rows[5]);
	assert_int_equal(c.skipped, rows[6]);
	assert_int_equal(c.suppressed, rows[7]);
	assert_int_equal(c.total, rows[8]);
}

static const char *
mailing_stream(struct store *st, int64_t id)
{
	static char out[64];
	json_t *j = store_mailing_json(st, id);

	assert_non_null(j);
	str_copy(out, json_string_value(json_object_get(j, "stream")), sizeof(out));
	json_decref(j);
	return out;
}

/* ---- open, migrate ---------------------------------------------------- */

static void
test_open_migrate_reopen(void **state)
{
	struct fx *f = *state;
	struct store *st;
	sqlite3 *db;
	char err[256];
	json_t *j;

	assert_int_equal(store_schema_version(f->st), store_migrate_latest());
	assert_int_equal(store_list_create(f->st, "news", "news@example.com", NULL,
	    NULL), 0);
	store_free(f->st);

	f->st = store_open(f->path, false, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_schema_version(f->st), store_migrate_latest());
	j = store_list_json(f->st, "news");
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "from")),
	    "news@example.com");
	json_decref(j);
	j = store_streams_json(f->st);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	store_free(f->st);
	f->st = NULL;

	/* A newer schema is refused, and left as it is. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99, 0)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	st = store_open(f->path, false, err, sizeof(err));
	assert_null(st);
	assert_non_null(strstr(err, "newer"));
	st = store_open(f->path, true, err, sizeof(err));
	assert_null(st);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT name FROM list", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version WHERE version"
	    " = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f->st = store_open(f->path, false, err, sizeof(err));
	assert_non_null(f->st);

	/* Read-only open of a missing database is a clear error. */
	st = store_open("/tmp/sluice-store-no-such.db", true, err, sizeof(err));
	assert_null(st);
	assert_non_null(strstr(err, "no such database"));
}

static void
test_defaults(void **state)
{
	struct fx *f = *state;
	struct store_ip *ips;
	size_t n;
	json_t *j;

	assert_int_equal(store_stream_ips(f->st, "default", &ips, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ips[0].ip, "0.0.0.0");
	assert_string_equal(ips[0].helo, "");
	free(ips);
	j = store_streams_json(f->st);
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0),
	    "name")), "default");
	json_decref(j);
	assert_int_equal(store_list_create(f->st, "l", "l@x.org", NULL, NULL), 0);
	j = store_list_json(f->st, "l");
	assert_string_equal(json_string_value(json_object_get(j, "site")), "default");
	json_decref(j);
}

/* ---- streams, routes, lists ------------------------------------------ */

static void
test_stream_put_replace_rm(void **state)
{
	struct fx *f = *state;
	struct store_ip two[2] = { { "127.0.0.11", "a.example" },
		{ "::1", "b.example" } };
	struct store_ip bad[1] = { { "300.1.1.1", "" } };
	const char *emails[] = { "x@example.com" };
	struct store_ip *ips;
	size_t n;
	int64_t mid;

	assert_int_equal(store_stream_put(f->st, "bulk", two, 2), 0);
	assert_int_equal(store_stream_ips(f->st, "bulk", &ips, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ips[1].ip, "::1");
	assert_string_equal(ips[1].helo, "b.example");
	free(ips);
	assert_int_equal(store_stream_put(f->st, "bulk", &two[1], 1), 0);
	assert_int_equal(store_stream_ips(f->st, "bulk", &ips, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ips[0].ip, "::1");
	free(ips);
	assert_int_equal(store_stream_put(f->st, "bulk", bad, 1), STORE_EINVAL);
	assert_int_equal(store_stream_put(f->st, "bad name", two, 1), STORE_EINVAL);
	assert_int_equal(store_stream_put(f->st, "empty", two, 0), STORE_EINVAL);
	assert_int_equal(store_stream_ips(f->st, "nope", &ips, &n), STORE_ENOTFOUND);
	assert_int_equal(store_stream_rm(f->st, "nope"), STORE_ENOTFOUND);
	assert_non_null(strstr(store_errmsg(f->st), "no such stream 'nope'"));
	assert_int_equal(store_stream_rm(f->st, "default"), STORE_EBUSY);

	assert_int_equal(store_list_create(f->st, "l", "l@x.org", NULL, NULL), 0);
	add_members(f->st, "l", emails, 1);
	mid = mk_mailing(f->st, "l", NULL, "bulk");
	assert_int_equal(store_stream_rm(f->st, "bulk"), STORE_EBUSY);
	assert_int_equal(store_mailing_set_state(f->st, mid, "paused", T0), 0);
	assert_int_equal(store_stream_rm(f->st, "bulk"), STORE_EBUSY);
	assert_int_equal(store_mailing_set_state(f->st, mid, "cancelled", T0), 0);
	assert_int_equal(store_stream_rm(f->st, "bulk"), 0);
	assert_int_equal(store_stream_ips(f->st, "bulk", &ips, &n), STORE_ENOTFOUND);
	assert_int_equal(store_mailing_set_state(f->st, mid, "sending", T0),
	    STORE_EINVAL);
}

static void
test_routes(void **state)
{
	struct fx *f = *state;
	const char *h1[] = { "127.0.0.21:2525", "127.0.0.22" };
	const char *h2[] = { "127.0.0.99:25" };
	char **hosts;
	json_t *j;

	assert_int_equal(store_route_set(f->st, "Example.COM", h1, 2), 0);
	assert_int_equal(store_route_get(f->st, "example.com", &hosts), 0);
	assert_string_equal(hosts[0], "127.0.0.21:2525");
	assert_string_equal(hosts[1], "127.0.0.22");
	assert_null(hosts[2]);
	store_strv_free(hosts);
	assert_int_equal(store_route_get(f->st, "other.org", &hosts), STORE_ENOTFOUND);
	assert_null(hosts);
	assert_int_equal(store_route_set(f->st, "*", h2, 1), 0);
	assert_int_equal(store_route_get(f->st, "other.org", &hosts), 0);
	assert_string_equal(hosts[0], "127.0.0.99:25");
	assert_null(hosts[1]);
	store_strv_free(hosts);
	assert_int_equal(store_route_get(f->st, "EXAMPLE.com", &hosts), 0);
	assert_string_equal(hosts[0], "127.0.0.21:2525");
	store_strv_free(hosts);
	/* replace */
	assert_int_equal(store_route_set(f->st, "example.com", h2, 1), 0);
	assert_int_equal(store_route_get(f->st, "example.com", &hosts), 0);
	assert_string_equal(hosts[0], "127.0.0.99:25");
	store_strv_free(hosts);
	j = store_routes_json(f->st);
	assert_int_equal(json_array_size(j), 2);
	assert_true(json_is_array(json_object_get(json_array_get(j, 0), "hosts")));
	json_decref(j);
	assert_int_equal(store_route_rm(f->st, "*"), 0);
	assert_int_equal(store_route_rm(f->st, "*"), STORE_ENOTFOUND);
	assert_int_equal(store_route_get(f->st, "other.org", &hosts), STORE_ENOTFOUND);
	assert_int_equal(store_route_set(f->st, "x.org", h1, 0), STORE_EINVAL);
}

static void
test_list_create(void **state)
{
	struct fx *f = *state;
	int64_t id = 0;
	json_t *j;

	assert_int_equal(store_list_create(f->st, "news", "n@x.org", NULL, &id), 0);
	assert_true(id > 0);
	assert_int_equal(store_list_create(f->st, "news", "n@x.org", NULL, NULL),
	    STORE_EEXISTS);
	assert_string_equal(store_errmsg(f->st), "list 'news' already exists");
	assert_int_equal(store_list_create(f->st, "n2", "n@x.org", "bulk", NULL),
	    STORE_ENOTFOUND);
	assert_int_equal(store_list_create(f->st, "n3", "nobody", NULL, NULL),
	    STORE_EINVAL);
	assert_null(store_list_json(f->st, "n2"));
	j = store_lists_json(f->st);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
}

static void
test_import_idempotent(void **state)
{
	struct fx *f = *state;
	struct store_member_in a[3] = {
		{ "one@example.com", "One", MEMBER_NORMAL, NULL },
		{ "two@example.com", NULL, MEMBER_DIGEST, NULL },
		{ "three@Example.org", NULL, MEMBER_MODERATOR, NULL },
	};
	struct store_member_in b[4] = {
		{ "ONE@example.com", "Other", MEMBER_NORMAL, NULL },
		{ "two@example.com", NULL, MEMBER_NORMAL, NULL },
		{ "three@example.org", NULL, MEMBER_NORMAL, NULL },
		{ "four@example.net", NULL, MEMBER_NORMAL, NULL },
	};
	struct store_member_in bad[2] = {
		{ "five@example.net", NULL, MEMBER_NORMAL, NULL },
		{ "no-at-sign", NULL, MEMBER_NORMAL, NULL },
	};
	size_t added, existing;
	json_t *j;

	assert_int_equal(store_list_create(f->st, "l", "l@x.org", NULL, NULL), 0);
	assert_int_equal(store_members_import(f->st, "l", a, 3, &added, &existing), 0);
	assert_int_equal(added, 3);
	assert_int_equal(existing, 0);
	assert_int_equal(store_members_import(f->st, "l", b, 4, &added, &existing), 0);
	assert_int_equal(added, 1);
	assert_int_equal(existing, 3);
	/* A bad line changes nothing. */
	assert_int_equal(store_members_import(f->st, "l", bad, 2, &added, &existing),
	    STORE_EINVAL);
	assert_non_null(strstr(store_errmsg(f->st), "member 2"));
	assert_null(store_member_json(f->st, "five@example.net"));
	assert_int_equal(store_members_import(f->st, "nolist", a, 1, NULL, NULL),
	    STORE_ENOTFOUND);

	j = store_member_json(f->st, "one@EXAMPLE.com");
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0),
	    "name")), "One");
	json_decref(j);
	j = store_list_json(f->st, "l");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
	    "members"), "active")), 4);
	json_decref(j);
}

/* ---- segments and stream choice -------------------------------------- */

static void
test_segments(void **state)
{
	struct fx *f = *state;
	struct store_member_in m[5] = {
		{ "a@example.com", NULL, MEMBER_NORMAL, NULL },
		{ "b@sub.example.com", NULL, MEMBER_NORMAL, NULL },
		{ "c@notexample.com", NULL, MEMBER_NORMAL, NULL },
		{ "d@other.org", NULL, MEMBER_NORMAL, NULL },
		{ "e@example.com", NULL, MEMBER_NORMAL, NULL },
	};
	const char *dom_ex[] = { "example.com" };
	const char *dom_two[] = { "EXAMPLE.com", "other.org" };
	struct {
		const char *name;
		const char *const *domains;
		size_t ndomains;
		const char *fields;
		int64_t want;
	} cases[] = {
		{ "all", NULL, 0, NULL, 5 },
		{ "ex", dom_ex, 1, NULL, 3 },
		{ "two", dom_two, 2, NULL, 4 },
		{ "pro", NULL, 0, "{\"plan\":\"pro\"}", 2 },
		{ "pro_ex", dom_ex, 1, "{\"plan\":\"pro\"}", 1 },
		{ "pro_de", NULL, 0, "{\"plan\":\"pro\",\"lang\":\"de\"}", 1 },
		{ "num", NULL, 0, "{\"n\":3}", 1 },
		{ "vip", NULL, 0, "{\"vip\":true}", 1 },
		{ "nobody", NULL, 0, "{\"plan\":\"gold\"}", 0 },
		{ "sub", (const char *const[]){ "sub.example.com" }, 1, NULL, 1 },
	};
	struct store_counts c;
	size_t i;

	m[0].fields = json_pack("{s:s,s:s}", "plan", "pro", "lang", "en");
	m[2].fields = json_pack("{s:s,s:s,s:i}", "plan", "pro", "lang", "de", "n", 3);
	m[3].fields = json_pack("{s:s}", "plan", "free");
	m[1].fields = json_pack("{s:b}", "vip", 1);
	assert_int_equal(store_list_create(f->st, "l", "l@x.org", NULL, NULL), 0);
	assert_int_equal(store_members_import(f->st, "l", m, 5, NULL, NULL), 0);
	for (i = 0; i < 5; i++)
		json_decref(m[i].fields);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *fields = cases[i].fields ? json_loads(cases[i].fields, 0, NULL) :
		    NULL;
		int64_t id;

		assert_int_equal(store_segment_put(f->st, "l", cases[i].name,
		    cases[i].domains, cases[i].ndomains, fields, NULL), 0);
		json_decref(fields);
		id = mk_mailing(f->st, "l", cases[i].name, NULL);
		assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
		if (c.total != cases[i].want)
			fail_msg("segment %s: %lld recipients, want %lld", cases[i].name,
			    (long long)c.total, (long long)cases[i].want);
		assert_int_equal(c.pending, c.total);
	}
	assert_int_equal(store_mailing_create(f->st, "l", "nope", NULL, msg,
	    strlen(msg), T0, NULL), STORE_ENOTFOUND);
	{
		json_t *bad = json_pack("{s:s}", "a\"b", "x");

		assert_int_equal(store_segment_put(f->st, "l", "bad", NULL, 0, bad, NULL),
		    STORE_EINVAL);
		json_decref(bad);
		assert_int_equal(store_segment_put(f->st, "nolist", "x", NULL, 0, NULL,
		    NULL), STORE_ENOTFOUND);
		assert_int_equal(store_segment_put(f->st, "l", "x", NULL, 0, NULL,
		    "nostream"), STORE_ENOTFOUND);
	}
	/* Inactive members are not recipients. */
	assert_int_equal(store_member_set_status(f->st, "l", "A@example.com",
	    "unsubscribed"), 0);
	assert_int_equal(store_mailing_counts(f->st, mk_mailing(f->st, "l", NULL,
	    NULL), &c), 0);
	assert_int_equal(c.total, 4);
}

static void
test_stream_selection(void **state)
{
	struct fx *f = *state;
	struct store_ip ip = { "127.0.0.11", "" };
	const char *emails[] = { "a@example.com" };
	const char *dom[] = { "example.com" };
	sqlite3 *db;

	assert_int_equal(store_stream_put(f->st, "s_arg", &ip, 1), 0);
	assert_int_equal(store_stream_put(f->st, "s_seg", &ip, 1), 0);
	assert_int_equal(store_stream_put(f->st, "s_list", &ip, 1), 0);
	assert_int_equal(store_stream_put(f->st, "s_site", &ip, 1), 0);
	assert_int_equal(store_list_create(f->st, "plain", "p@x.org", NULL, NULL), 0);
	assert_int_equal(store_list_create(f->st, "withs", "w@x.org", "s_list", NULL),
	    0);
	add_members(f->st, "plain", emails, 1);
	add_members(f->st, "withs", emails, 1);
	assert_int_equal(store_segment_put(f->st, "withs", "seg", dom, 1, NULL,
	    "s_seg"), 0);
	assert_int_equal(store_segment_put(f->st, "withs", "noseg", dom, 1, NULL,
	    NULL), 0);

	/* level 5: server default */
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "plain", NULL,
	    NULL)), "default");
	/* level 4: the site's */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE site SET stream = 's_site'", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "plain", NULL,
	    NULL)), "s_site");
	/* level 3: the list's */
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "withs", NULL,
	    NULL)), "s_list");
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "withs", "noseg",
	    NULL)), "s_list");
	/* level 2: the segment's */
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "withs", "seg",
	    NULL)), "s_seg");
	/* level 1: the argument */
	assert_string_equal(mailing_stream(f->st, mk_mailing(f->st, "withs", "seg",
	    "s_arg")), "s_arg");
	/* an explicit stream that does not exist */
	assert_int_equal(store_mailing_create(f->st, "withs", NULL, "bulk", msg,
	    strlen(msg), T0, NULL), STORE_ENOTFOUND);
	assert_string_equal(store_errmsg(f->st), "no such stream 'bulk'");
}

/* ---- the engine's cycle ----------------------------------------------- */

static int64_t
mk_list_mailing(struct store *st, size_t n)
{
	const char *doms[] = { "a.example", "b.example", "c.example" };
	struct store_member_in *m = xcalloc(n, sizeof(*m));
	char **emails = xcalloc(n, sizeof(*emails));
	int64_t id;
	size_t i;

	assert_int_equal(store_list_create(st, "l", "l@x.org", NULL, NULL), 0);
	for (i = 0; i < n; i++) {
		emails[i] = xasprintf("u%zu@%s", i, doms[i % 3]);
		m[i].email = emails[i];
		m[i].name = "N";
	}
	assert_int_equal(store_members_import(st, "l", m, n, NULL, NULL), 0);
	for (i = 0; i < n; i++)
		free(emails[i]);
	free(emails);
	free(m);
	id = mk_mailing(st, "l", NULL, NULL);
	return id;
}

static void
test_claim(void **state)
{
	struct fx *f = *state;
	const char *skip[] = { "B.example" };
	struct store_recipient *r;
	struct store_outcome o;
	struct store_counts c;
	size_t n, i, total = 0;
	int64_t id;

	id = mk_list_mailing(f->st, 30);
	/* max */
	assert_int_equal(store_recipients_claim(f->st, id, T0, 4, NULL, 0, &r, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(r[0].name, "N");
	assert_string_equal(r[0].fields, "{}");
	assert_int_equal(r[0].created, T0);
	assert_int_equal(r[0].mailing_id, id);
	total += n;
	/* defer the first one into the future; finish the others */
	memset(&o, 0, sizeof(o));
	for (i = 0; i < n; i++) {
		o.recipient_id = r[i].id;
		o.state = i == 0 ? "deferred" : "sent";
		o.next_at = T0 + 60000;
		o.attempts = 1;
		o.sticky_ip = "127.0.0.11";
		o.code = i == 0 ? 451 : 250;
		o.reply = "ok";
		o.now = T0;
		assert_int_equal(store_recipient_finish(f->st, &o), 0);
	}
	store_recipients_free(r, n);
	/* nothing before its time; the skip list */
	assert_int_equal(store_recipients_claim(f->st, id, T0, 100, skip, 1, &r, &n),
	    0);
	for (i = 0; i < n; i++)
		assert_string_not_equal(r[i].domain, "b.example");
	total += n;
	store_recipients_free(r, n);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.inflight, 20 - 3 + 0);
	/* the deferred one waits until next_at */
	assert_int_equal(store_recipients_claim(f->st, id, T0 + 59999, 100, NULL, 0,
	    &r, &n), 0);
	for (i = 0; i < n; i++)
		assert_int_not_equal(r[i].attempts, 1);
	total += n;
	store_recipients_free(r, n);
	assert_int_equal(store_recipients_claim(f->st, id, T0 + 60000, 100, NULL, 0,
	    &r, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(r[0].attempts, 1);
	assert_string_equal(r[0].sticky_ip, "127.0.0.11");
	store_recipients_free(r, n);
	assert_int_equal(total, 30);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.inflight, 30 - 3);
	assert_int_equal(c.sent, 3);
	assert_counts_add_up(f->st, id);
}

static void
test_claim_suppressed_and_tx(void **state)
{
	struct fx *f = *state;
	struct store_recipient *r;
	struct store_counts c;
	size_t n, i;
	int64_t id;

	id = mk_list_mailing(f->st, 6);
	assert_int_equal(store_member_set_status(f->st, "l", "u1@b.example",
	    "unsubscribed"), 0);
	assert_int_equal(store_member_set_status(f->st, "l", "u2@c.example",
	    "removed"), 0);
	assert_int_equal(store_member_set_status(f->st, "l", "nobody@x", "removed"),
	    STORE_ENOTFOUND);
	/* inside a caller's transaction, rolled back: nothing changes */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_recipients_claim(f->st, id, T0, 10, NULL, 0, &r, &n), 0);
	assert_int_equal(n, 4);
	store_recipients_free(r, n);
	store_rollback(f->st);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.pending, 6);
	/* inside one, committed */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_recipients_claim(f->st, id, T0, 10, NULL, 0, &r, &n), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		assert_string_not_equal(r[i].email, "u1@b.example");
		assert_string_not_equal(r[i].email, "u2@c.example");
	}
	store_recipients_free(r, n);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.suppressed, 2);
	assert_int_equal(c.inflight, 4);
	assert_int_equal(c.pending, 0);
	assert_counts_add_up(f->st, id);
	assert_counts_match_rows(f->path, f->st, id);
}

static void
test_finish_counts_recover_done(void **state)
{
	struct fx *f = *state;
	static const char *outcomes[] = { "sent", "failed", "expired", "skipped",
		"suppressed", "deferred", "pending", "sent", "sent" };
	struct store_recipient *r;
	struct store_outcome o;
	struct store_counts c;
	size_t n, i;
	int64_t id, back;
	msec_t next;

	id = mk_list_mailing(f->st, 12);
	assert_int_equal(store_mailing_next_due(f->st, id, &next), 0);
	assert_int_equal(next, T0);
	assert_int_equal(store_recipients_claim(f->st, id, T0, 100, NULL, 0, &r, &n), 0);
	assert_int_equal(n, 12);
	assert_int_equal(store_mailing_next_due(f->st, id, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(store_begin(f->st), 0);
	for (i = 0; i < 9; i++) {
		memset(&o, 0, sizeof(o));
		o.recipient_id = r[i].id;
		o.state = outcomes[i];
		o.next_at = T0 + 1000 * (msec_t)(i + 1);
		o.attempts = 1;
		o.now = T0;
		assert_int_equal(store_recipient_finish(f->st, &o), 0);
		assert_counts_add_up(f->st, id);
	}
	assert_int_equal(store_commit(f->st), 0);
	o.state = "bogus";
	assert_int_equal(store_recipient_finish(f->st, &o), STORE_EINVAL);
	o.state = "sent";
	o.recipient_id = 999999;
	assert_int_equal(store_recipient_finish(f->st, &o), STORE_ENOTFOUND);
	store_recipients_free(r, n);

	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.total, 12);
	assert_int_equal(c.sent, 3);
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.expired, 1);
	assert_int_equal(c.skipped, 1);
	assert_int_equal(c.suppressed, 1);
	assert_int_equal(c.deferred, 1);
	assert_int_equal(c.pending, 1);
	assert_int_equal(c.inflight, 3);
	assert_counts_match_rows(f->path, f->st, id);
	assert_int_equal(store_mailing_next_due(f->st, id, &next), 0);
	assert_int_equal(next, T0 + 6000);
	assert_int_equal(store_mailing_finish_if_done(f->st, id, T0), 0);

	/* crash: inflight back to pending */
	assert_int_equal(store_recover_inflight(f->st, &back), 0);
	assert_int_equal(back, 3);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.inflight, 0);
	assert_int_equal(c.pending, 4);
	assert_counts_add_up(f->st, id);
	assert_counts_match_rows(f->path, f->st, id);

	/* drain all, then done */
	assert_int_equal(store_recipients_claim(f->st, id, T0 + 100000, 100, NULL, 0,
	    &r, &n), 0);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		o.recipient_id = r[i].id;
		o.state = "sent";
		o.now = T0;
		assert_int_equal(store_mailing_finish_if_done(f->st, id, T0), 0);
		assert_int_equal(store_recipient_finish(f->st, &o), 0);
	}
	store_recipients_free(r, n);
	assert_int_equal(store_mailing_finish_if_done(f->st, id, T0 + 5), 1);
	assert_int_equal(store_mailing_finish_if_done(f->st, id, T0 + 5), 1);
	assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
	assert_int_equal(c.sent, 8);
	assert_counts_add_up(f->st, id);
	{
		json_t *j = store_mailing_json(f->st, id);

		assert_string_equal(json_string_value(json_object_get(j, "state")),
		    "done");
		assert_int_equal(json_integer_value(json_object_get(j, "finished")),
		    T0 + 5);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
		    "counts"), "sent")), 8);
		json_decref(j);
	}
	{
		struct store_mailing *m;
		size_t nm;

		assert_int_equal(store_mailings_active(f->st, &m, &nm), 0);
		assert_int_equal(nm, 0);
		store_mailings_free(m, nm);
	}
	assert_int_equal(store_mailing_finish_if_done(f->st, 4242, T0),
	    STORE_ENOTFOUND);
}

static void
test_mailings_active(void **state)
{
	struct fx *f = *state;
	struct store_mailing *m;
	size_t n;
	int64_t id, id2;

	id = mk_list_mailing(f->st, 3);
	id2 = mk_mailing(f->st, "l", NULL, NULL);
	assert_int_equal(store_mailing_set_state(f->st, id2, "paused", T0), 0);
	assert_int_equal(store_mailings_active(f->st, &m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0].id, id);
	assert_string_equal(m[0].list, "l");
	assert_string_equal(m[0].from, "l@x.org");
	assert_string_equal(m[0].stream, "default");
	assert_string_equal(m[0].state, "sending");
	assert_int_equal(m[0].message_len, strlen(msg));
	assert_memory_equal(m[0].message, msg, strlen(msg));
	store_mailings_free(m, n);
	assert_int_equal(store_mailing_set_state(f->st, id2, "bogus", T0),
	    STORE_EINVAL);
	assert_int_equal(store_mailing_set_state(f->st, 777, "paused", T0),
	    STORE_ENOTFOUND);
	{
		json_t *j = store_mailings_json(f->st, 0);

		assert_int_equal(json_array_size(j), 2);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0),
		    "id")), id2);
		json_decref(j);
	}
}

/* ---- logs and reports ------------------------------------------------- */

static void
add_attempt(struct store *st, int64_t mailing, int64_t rid, const char *email,
    const char *domain, const char *ip, const char *outcome, msec_t t)
{
	struct store_attempt a = {
		.time = t, .mailing_id = mailing, .recipient_id = rid, .email = email,
		.domain = domain, .stream = "default", .source_ip = ip,
		.mx_host = "mx.example", .mx_ip = "127.0.0.30", .stage = "rcpt",
		.code = 250, .enhanced = "2.0.0", .text = "250 ok", .category = NULL,
		.action = "deliver", .outcome = outcome, .duration_ms = 12,
	};

	assert_int_equal(store_attempt_add(st, &a), 0);
}

static void
test_attempts_filter(void **state)
{
	struct fx *f = *state;
	struct store_attempt_filter flt;
	json_t *j, *o;

	assert_int_equal(store_begin(f->st), 0);
	add_attempt(f->st, 1, 10, "a@x.org", "x.org", "127.0.0.11", "sent", T0);
	add_attempt(f->st, 1, 11, "b@y.org", "y.org", "127.0.0.11", "deferred", T0 + 1);
	add_attempt(f->st, 2, 12, "A@x.org", "x.org", "127.0.0.12", "failed", T0 + 2);
	add_attempt(f->st, 2, 13, "c@y.org", "y.org", "127.0.0.12", "sent", T0 + 3);
	assert_int_equal(store_commit(f->st), 0);

	struct {
		int64_t mailing;
		const char *email, *domain;
		int limit;
		size_t want;
		int64_t first_time;
	} cases[] = {
		{ 0, NULL, NULL, 0, 4, T0 + 3 },
		{ 1, NULL, NULL, 0, 2, T0 + 1 },
		{ 0, "a@X.org", NULL, 0, 2, T0 + 2 },
		{ 0, NULL, "Y.ORG", 0, 2, T0 + 3 },
		{ 2, NULL, "x.org", 0, 1, T0 + 2 },
		{ 0, NULL, NULL, 3, 3, T0 + 3 },
		{ 3, NULL, NULL, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&flt, 0, sizeof(flt));
		flt.mailing_id = cases[i].mailing;
		flt.email = cases[i].email;
		flt.domain = cases[i].domain;
		flt.limit = cases[i].limit;
		j = store_attempts_json(f->st, &flt);
		assert_non_null(j);
		if (json_array_size(j) != cases[i].want)
			fail_msg("case %zu: %zu attempts, want %zu", i,
			    json_array_size(j), cases[i].want);
		if (cases[i].want) {
			o = json_array_get(j, 0);
			assert_int_equal(json_integer_value(json_object_get(o, "time")),
			    cases[i].first_time);
			assert_string_equal(json_string_value(json_object_get(o, "mx_ip")),
			    "127.0.0.30");
			assert_int_equal(json_integer_value(json_object_get(o,
			    "duration_ms")), 12);
			assert_string_equal(json_string_value(json_object_get(o,
			    "enhanced")), "2.0.0");
		}
		json_decref(j);
	}
	j = store_attempts_json(f->st, NULL);
	assert_int_equal(json_array_size(j), 4);
	json_decref(j);
}

static json_t *
find_by(json_t *arr, const char *key, const char *val)
{
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		const char *v = json_string_value(json_object_get(json_array_get(arr, i),
		    key));

		if (v && strcmp(v, val) == 0)
			return json_array_get(arr, i);
	}
	return NULL;
}

static void
test_report_streams(void **state)
{
	struct fx *f = *state;
	struct store_ip two[2] = { { "127.0.0.11", "" }, { "127.0.0.12", "" } };
	struct store_connection cn = { T0, T0 + 5, "bulk", "127.0.0.11", "mx", "127.0.0.30",
		3, true, NULL };
	json_t *j, *s, *ip;

	assert_int_equal(store_stream_put(f->st, "bulk", two, 2), 0);
	add_attempt(f->st, 1, 1, "a@x.org", "x.org", "127.0.0.11", "sent", T0);
	add_attempt(f->st, 1, 2, "b@x.org", "x.org", "127.0.0.11", "sent", T0);
	add_attempt(f->st, 1, 3, "c@x.org", "x.org", "0.0.0.0", "deferred", T0);
	add_attempt(f->st, 1, 4, "d@x.org", "x.org", "0.0.0.0", "failed", T0);
	add_attempt(f->st, 1, 4, "d@x.org", "x.org", "0.0.0.0", "inflight", T0);
	/* attempts carry their stream: re-tag two as bulk */
	{
		struct store_attempt a = { .time = T0, .stream = "bulk",
			.source_ip = "127.0.0.12", .outcome = "deferred" };

		assert_int_equal(store_attempt_add(f->st, &a), 0);
		a.source_ip = "127.0.0.11";
		a.outcome = "sent";
		assert_int_equal(store_attempt_add(f->st, &a), 0);
	}
	assert_int_equal(store_connection_add(f->st, &cn), 0);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_connection_add(f->st, &cn), 0);
	assert_int_equal(store_commit(f->st), 0);
	/* what a rolled-back batch logged is not counted */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_connection_add(f->st, &cn), 0);
	add_attempt(f->st, 1, 1, "a@x.org", "x.org", "127.0.0.11", "sent", T0);
	store_rollback(f->st);
	cn.stream = "default";
	cn.source_ip = "0.0.0.0";
	cn.error = "timeout";
	assert_int_equal(store_connection_add(f->st, &cn), 0);

	j = store_report_streams_json(f->st);
	assert_non_null(j);
	s = find_by(json_object_get(j, "streams"), "name", "default");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "sent")), 2);
	assert_int_equal(json_integer_value(json_object_get(s, "deferred")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "connections")), 1);
	ip = find_by(json_object_get(s, "ips"), "ip", "127.0.0.11");
	assert_non_null(ip); /* seen in the log although not in the stream */
	assert_int_equal(json_integer_value(json_object_get(ip, "sent")), 2);
	s = find_by(json_object_get(j, "streams"), "name", "bulk");
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "sent")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "deferred")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "connections")), 2);
	assert_int_equal(json_array_size(json_object_get(s, "ips")), 2);
	ip = find_by(json_object_get(s, "ips"), "ip", "127.0.0.12");
	assert_int_equal(json_integer_value(json_object_get(ip, "deferred")), 1);
	assert_int_equal(json_integer_value(json_object_get(ip, "connections")), 0);
	ip = find_by(json_object_get(s, "ips"), "ip", "127.0.0.11");
	assert_int_equal(json_integer_value(json_object_get(ip, "connections")), 2);
	json_decref(j);
}

static void
test_recipient_json(void **state)
{
	struct fx *f = *state;
	struct store_recipient *r;
	struct store_outcome o;
	size_t n;
	int64_t id;
	json_t *j, *rc;

	id = mk_list_mailing(f->st, 3);
	assert_int_equal(store_recipients_claim(f->st, id, T0, 1, NULL, 0, &r, &n), 0);
	assert_int_equal(n, 1);
	memset(&o, 0, sizeof(o));
	o.recipient_id = r[0].id;
	o.state = "deferred";
	o.next_at = T0 + 240000;
	o.attempts = 1;
	o.sticky_ip = "127.0.0.11";
	o.code = 451;
	o.reply = "451 4.7.1 greylisted";
	o.category = "greylisting";
	o.now = T0;
	assert_int_equal(store_recipient_finish(f->st, &o), 0);
	add_attempt(f->st, id, r[0].id, r[0].email, r[0].domain, "127.0.0.11",
	    "deferred", T0);
	j = store_recipient_json(f->st, id, r[0].email);
	assert_non_null(j);
	rc = json_object_get(j, "recipient");
	assert_string_equal(json_string_value(json_object_get(rc, "state")), "deferred");
	assert_int_equal(json_integer_value(json_object_get(rc, "next_at")), T0 + 240000);
	assert_int_equal(json_integer_value(json_object_get(rc, "last_code")), 451);
	assert_string_equal(json_string_value(json_object_get(rc, "last_category")),
	    "greylisting");
	assert_string_equal(json_string_value(json_object_get(rc, "sticky_ip")),
	    "127.0.0.11");
	assert_int_equal(json_array_size(json_object_get(j, "attempts")), 1);
	json_decref(j);
	assert_null(store_recipient_json(f->st, id, "nobody@x.org"));
	store_recipients_free(r, n);
}

static void
test_readonly(void **state)
{
	struct fx *f = *state;
	struct store *ro;
	char err[256];
	json_t *j;

	ro = store_open(f->path, true, err, sizeof(err));
	assert_non_null(ro);
	assert_null(store_list_json(ro, "l"));
	assert_int_equal(store_list_create(f->st, "l", "l@x.org", NULL, NULL), 0);
	j = store_list_json(ro, "l");
	assert_non_null(j);
	json_decref(j);
	/* uncommitted writes are invisible */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_list_create(f->st, "l2", "l@x.org", NULL, NULL), 0);
	assert_null(store_list_json(ro, "l2"));
	assert_int_equal(store_commit(f->st), 0);
	j = store_list_json(ro, "l2");
	assert_non_null(j);
	json_decref(j);
	/* and it cannot write */
	assert_true(store_list_create(ro, "l3", "l@x.org", NULL, NULL) < 0);
	assert_null(store_list_json(f->st, "l3"));
	store_free(ro);
}

/* ---- scale ------------------------------------------------------------ */

#define BIG_N 200000
#define BIG_BATCH 5000

static void
test_big_mailing(void **state)
{
	struct fx *f = *state;
	struct store_member_in *m = xcalloc(BIG_N, sizeof(*m));
	char (*emails)[40] = xcalloc(BIG_N, sizeof(*emails));
	struct store_recipient *r;
	struct store_outcome o;
	struct store_counts c;
	msec_t t0, t1, t2, t3;
	size_t i, n, claimed = 0;
	int64_t id, rounds = 0;

	assert_int_equal(store_list_create(f->st, "big", "b@x.org", NULL, NULL), 0);
	for (i = 0; i < BIG_N; i++) {
		snprintf(emails[i], sizeof(emails[i]), "user%zu@d%zu.example", i, i % 97);
		m[i].email = emails[i];
	}
	t0 = time_mono_ms();
	assert_int_equal(store_members_import(f->st, "big", m, BIG_N, NULL, NULL), 0);
	t1 = time_mono_ms();
	free(m);
	free(emails);
	assert_int_equal(store_mailing_create(f->st, "big", NULL, NULL, msg,
	    strlen(msg), T0, &id), 0);
	t2 = time_mono_ms();
	for (;;) {
		assert_int_equal(store_begin(f->st), 0);
		assert_int_equal(store_recipients_claim(f->st, id, T0, BIG_BATCH, NULL, 0,
		    &r, &n), 0);
		for (i = 0; i < n; i++) {
			memset(&o, 0, sizeof(o));
			o.recipient_id = r[i].id;
			o.state = "sent";
			o.attempts = 1;
			o.code = 250;
			o.now = T0;
			assert_int_equal(store_recipient_finish(f->st, &o), 0);
		}
		assert_int_equal(store_commit(f->st), 0);
		store_recipients_free(r, n);
		assert_int_equal(store_mailing_counts(f->st, id, &c), 0);
		if (n == 0)
			break;
		claimed += n;
		rounds++;
	}
	t3 = time_mono_ms();
	assert_int_equal(claimed, BIG_N);
	assert_int_equal(c.sent, BIG_N);
	assert_int_equal(store_mailing_finish_if_done(f->st, id, T0), 1);
	printf("big: import %d members %lld ms, mailing create %lld ms, "
	    "claim+finish in %lld batches %lld ms\n", BIG_N, (long long)(t1 - t0),
	    (long long)(t2 - t1), (long long)rounds, (long long)(t3 - t2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_put_replace_rm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_selection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_suppressed_and_tx, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_finish_counts_recover_done, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mailings_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attempts_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_mailing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
