/*
 * test_api_blocks: the block routes of the admin API end to end on
 * loopback (list and filters, one block with its history, release by id,
 * domain, ip and all, permanent on and off, 404s and 400s), GET
 * /reports/domains, and the engine members of GET /mailings/ID and GET
 * /explain. The fixture (temporary database, engine thread, API on a free
 * port, raw HTTP client) is api_fixture.h.
 */
#define API_FIXTURE_DIR "/tmp/sluice-test-apib-XXXXXX"
#include "api_fixture.h"

/* ---- blocks ----------------------------------------------------------- */

struct blk {
	const char *stream, *source_ip, *mx_ip, *mx_host, *domain;
};

/* Source IPs from TEST-NET: the engine never probes them here (next probe
 * a day away). */
static const struct blk blks[] = {
	{ "bulk", "192.0.2.1", "198.51.100.1", "mx1.example.com", "example.com" },
	{ "bulk", "192.0.2.2", "198.51.100.1", "mx1.example.com", "example.com" },
	{ "bulk", "192.0.2.2", "198.51.100.9", "mx.other.org", "other.org" },
	{ "news", "192.0.2.7", "198.51.100.9", "mx.other.org", "other.org" },
};
#define NBLKS (sizeof(blks) / sizeof(blks[0]))

struct add_arg {
	int64_t ids[NBLKS];
};

static int
add_blocks_fn(struct engine *e, struct store *st, void *arg)
{
	struct add_arg *a = arg;
	msec_t now = time_now_ms();

	for (size_t i = 0; i < NBLKS; i++) {
		struct store_block b;
		int rc;

		memset(&b, 0, sizeof(b));
		str_copy(b.stream, blks[i].stream, sizeof(b.stream));
		str_copy(b.source_ip, blks[i].source_ip, sizeof(b.source_ip));
		str_copy(b.mx_ip, blks[i].mx_ip, sizeof(b.mx_ip));
		str_copy(b.mx_host, blks[i].mx_host, sizeof(b.mx_host));
		str_copy(b.domain, blks[i].domain, sizeof(b.domain));
		str_copy(b.reason, "554 5.7.1 Service unavailable; client host "
		    "blocked using zen.spamhaus.org", sizeof(b.reason));
		b.code = 554;
		b.next_probe = now + 24 * 3600 * 1000LL;
		if ((rc = store_block_add(st, &b, now)) < 0)
			return rc;
		a->ids[i] = b.id;
	}
	return 0;
}

static void
setup_blocks(struct add_arg *a)
{
	expect("POST", "/api/v1/streams", "application/json",
	    "{\"name\":\"bulk\",\"ips\":[\"192.0.2.1\",\"192.0.2.2\"]}", 201, NULL);
	expect("POST", "/api/v1/streams", "application/json",
	    "{\"name\":\"news\",\"ips\":[\"192.0.2.7\"]}", 201, NULL);
	assert_int_equal(engine_call(F->engine, add_blocks_fn, a), 0);
}

static size_t
nblocks(const char *query)
{
	struct reply r;
	char path[256];
	size_t n;

	snprintf(path, sizeof(path), "/api/v1/blocks%s", query);
	expect("GET", path, NULL, NULL, 200, &r);
	n = json_array_size(json_object_get(r.json, "blocks"));
	reply_fini(&r);
	return n;
}

static void
test_blocks_list(void **state)
{
	static const struct {
		const char *query;
		size_t n;
	} cases[] = {
		{ "", 4 },
		{ "?stream=bulk", 3 },
		{ "?stream=news", 1 },
		{ "?stream=nosuch", 0 },
		{ "?domain=example.com", 2 },
		{ "?domain=OTHER.org", 2 },
		{ "?ip=192.0.2.2", 2 },
		{ "?stream=bulk&domain=other.org", 1 },
		{ "?stream=&domain=&ip=", 4 },
	};
	struct add_arg a;
	struct reply r;
	json_t *b;

	setup_blocks(&a);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = nblocks(cases[i].query);
		if (n != cases[i].n)
			fail_msg("%s: %zu blocks, expected %zu", cases[i].query, n,
			    cases[i].n);
	}
	expect("GET", "/api/v1/blocks?released=maybe", NULL, NULL, 400, NULL);

	expect("GET", "/api/v1/blocks", NULL, NULL, 200, &r);
	b = json_array_get(json_object_get(r.json, "blocks"), 0);
	assert_int_equal(json_integer_value(json_object_get(b, "id")), a.ids[0]);
	assert_string_equal(json_string_value(json_object_get(b, "source_ip")),
	    "192.0.2.1");
	assert_string_equal(json_string_value(json_object_get(b, "mx_host")),
	    "mx1.example.com");
	assert_int_equal(json_integer_value(json_object_get(b, "code")), 554);
	assert_non_null(strstr(json_string_value(json_object_get(b, "reason")),
	    "spamhaus"));
	assert_true(json_is_false(json_object_get(b, "permanent")));
	reply_fini(&r);
}

static void
test_block_show_and_release(void **state)
{
	struct add_arg a;
	struct reply r;
	char path[128];

	setup_blocks(&a);
	snprintf(path, sizeof(path), "/api/v1/blocks/%lld", (long long)a.ids[2]);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    r.json, "block"), "domain")), "other.org");
	assert_int_equal(json_array_size(json_object_get(r.json, "history")), 1);
	reply_fini(&r);
	expect("GET", "/api/v1/blocks/99999", NULL, NULL, 404, NULL);
	expect("GET", "/api/v1/blocks/abc", NULL, NULL, 400, NULL);

	/* one by id; again: 404 */
	snprintf(path, sizeof(path), "/api/v1/blocks/%lld/release",
	    (long long)a.ids[2]);
	expect("POST", path, NULL, NULL, 200, &r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "released")), 1);
	reply_fini(&r);
	expect("POST", path, NULL, NULL, 404, NULL);
	expect("POST", "/api/v1/blocks/99999/release", NULL, NULL, 404, NULL);
	assert_int_equal(nblocks(""), 3);
	assert_int_equal(nblocks("?released=1"), 4);

	/* the history says who released it */
	snprintf(path, sizeof(path), "/api/v1/blocks/%lld", (long long)a.ids[2]);
	expect("GET", path, NULL, NULL, 200, &r);
	{
		json_t *h = json_object_get(r.json, "history");
		json_t *last = json_array_get(h, json_array_size(h) - 1);
		assert_string_equal(json_string_value(json_object_get(last, "kind")),
		    "released");
		assert_string_equal(json_string_value(json_object_get(last, "by")),
		    "operator");
	}
	reply_fini(&r);
}

static void
test_blocks_release_bulk(void **state)
{
	static const struct {
		const char *body;
		int status;
		long long released;
		size_t left;
	} cases[] = {
		{ "", 400, 0, 4 },
		{ "{}", 400, 0, 4 },
		{ "[]", 400, 0, 4 },
		{ "{\"domain\":\"example.com\",\"ip\":\"192.0.2.7\"}", 400, 0, 4 },
		{ "{\"all\":true,\"ip\":\"192.0.2.7\"}", 400, 0, 4 },
		{ "{\"all\":false}", 400, 0, 4 },
		{ "{\"ip\":\"not-an-ip\"}", 400, 0, 4 },
		{ "{\"domain\":\"bad domain\"}", 400, 0, 4 },
		{ "{\"domain\":42}", 400, 0, 4 },
		{ "{\"domain\":\"nowhere.test\"}", 200, 0, 4 },
		{ "{\"domain\":\"Example.COM\"}", 200, 2, 2 },
		{ "{\"ip\":\"192.0.2.7\"}", 200, 1, 1 },
		{ "{\"all\":true}", 200, 1, 0 },
		{ "{\"all\":true}", 200, 0, 0 },
	};
	struct add_arg a;
	struct reply r;

	setup_blocks(&a);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http("POST", "/api/v1/blocks/release", "application/json",
		    cases[i].body, &r);
		if (r.status != cases[i].status)
			fail_msg("%s: status %d, expected %d: %s", cases[i].body,
			    r.status, cases[i].status, r.raw);
		if (r.status == 200 && json_integer_value(json_object_get(r.json,
		    "released")) != cases[i].released)
			fail_msg("%s: %s", cases[i].body, r.raw);
		reply_fini(&r);
		if (nblocks("") != cases[i].left)
			fail_msg("%s: %zu left, expected %zu", cases[i].body,
			    nblocks(""), cases[i].left);
	}
	expect("GET", "/api/v1/blocks/release", NULL, NULL, 400, NULL);
}

static void
test_block_permanent(void **state)
{
	struct add_arg a;
	struct reply r;
	char path[128];
	msec_t before = time_now_ms();
	json_t *b;

	setup_blocks(&a);
	snprintf(path, sizeof(path), "/api/v1/blocks/%lld/permanent",
	    (long long)a.ids[0]);
	expect("POST", path, "application/json", "{\"permanent\":true}", 200, &r);
	b = json_object_get(r.json, "block");
	assert_true(json_is_true(json_object_get(b, "permanent")));
	assert_int_equal(json_integer_value(json_object_get(b, "next_probe")), 0);
	reply_fini(&r);

	expect("POST", path, "application/json", "{\"permanent\":false}", 200, &r);
	b = json_object_get(r.json, "block");
	assert_true(json_is_false(json_object_get(b, "permanent")));
	/* the default probe interval is an hour */
	assert_true(json_integer_value(json_object_get(b, "next_probe")) >=
	    before + 3600 * 1000LL);
	assert_true(json_integer_value(json_object_get(b, "next_probe")) <=
	    time_now_ms() + 3600 * 1000LL);
	assert_int_equal(json_array_size(json_object_get(r.json, "history")), 3);
	reply_fini(&r);

	expect("POST", path, "application/json", "{\"permanent\":\"yes\"}", 400,
	    NULL);
	expect("POST", path, "application/json", "{}", 400, NULL);
	expect("POST", path, NULL, NULL, 400, NULL);
	expect("POST", "/api/v1/blocks/99999/permanent", "application/json",
	    "{\"permanent\":true}", 404, NULL);
	expect("GET", path, NULL, NULL, 405, NULL);
}

/* ---- engine views ----------------------------------------------------- */

static void
test_engine_views(void **state)
{
	struct reply r;
	char path[256];
	json_int_t id;
	int refuse, refuse_port;

	expect("GET", "/api/v1/reports/domains", NULL, NULL, 200, &r);
	assert_true(json_is_array(json_object_get(r.json, "domains")));
	reply_fini(&r);

	/* a mailing whose only domain goes to a port that refuses */
	refuse = refusing_port(&refuse_port);
	snprintf(path, sizeof(path), "{\"hosts\":[\"127.0.0.1:%d\"]}",
	    refuse_port);
	expect("PUT", "/api/v1/routes/*", "application/json", path, 200, NULL);
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"news\",\"from\":\"news@example.com\"}", 201, NULL);
	expect("POST", "/api/v1/lists/news/members", "text/csv",
	    "ann@example.com,Ann\n", 200, NULL);
	expect("POST", "/api/v1/mailings?list=news", "message/rfc822",
	    "From: news@example.com\r\nSubject: hi\r\n\r\nhello\r\n", 201, &r);
	id = json_integer_value(json_object_get(r.json, "id"));
	reply_fini(&r);

	snprintf(path, sizeof(path), "/api/v1/mailings/%lld", (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_true(json_is_object(json_object_get(r.json, "engine")));
	assert_true(json_is_boolean(json_object_get(json_object_get(r.json,
	    "engine"), "waiting_on_blocks")));
	reply_fini(&r);

	snprintf(path, sizeof(path), "/api/v1/explain?email=ann@example.com"
	    "&mailing=%lld", (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_non_null(json_string_value(json_object_get(r.json, "state_reason")));
	assert_true(strlen(json_string_value(json_object_get(r.json, "reason"))) >
	    0);
	assert_true(json_is_object(json_object_get(r.json, "recipient")));
	reply_fini(&r);
	close(refuse);
}

/* ---- the command line ------------------------------------------------ */

static void
test_cli_blocks(void **state)
{
	const char *bin = getenv("SLUICE_BINARY");
	char path[256], out[16384], err[4096], args[256];
	struct add_arg a;
	FILE *f;
	/* @1 .. @4 stand for the ids of blks[0..3] */
	static const struct {
		const char *args;
		int status;
		const char *in_out; /* expected in stdout (or NULL) */
		const char *in_err; /* expected in stderr (or NULL) */
	} cases[] = {
		{ "blocks", 0, "mx1.example.com", NULL },
		{ "blocks --stream news", 0, "192.0.2.7", NULL },
		{ "blocks --domain nowhere.test", 0, "no blocks", NULL },
		{ "--json blocks --ip 192.0.2.2", 0, "\"198.51.100.9\"", NULL },
		{ "blocks --help", 0, "usage: sluice blocks", NULL },
		{ "block show @3", 0, "created", NULL },
		{ "block show 99999", 1, NULL, "sluice: no block 99999" },
		{ "block show abc", 1, NULL, "is not a block id" },
		{ "block permanent @1", 0, "is permanent", NULL },
		{ "blocks --domain example.com", 0, "permanent", NULL },
		{ "block permanent @1 --off", 0, "no longer permanent", NULL },
		{ "block release", 1, NULL, "exactly one of" },
		{ "block release @1 --all", 1, NULL, "exactly one of" },
		{ "block release @1", 0, "released 1 block", NULL },
		{ "block release @1", 1, NULL, "no standing block" },
		{ "block release --domain example.com", 0, "released 1 block", NULL },
		{ "block release --ip 192.0.2.7", 0, "released 1 block", NULL },
		{ "blocks --released", 0, "released (operator)", NULL },
		{ "report streams", 0, "BLOCKED", NULL },
		{ "block release --all", 0, "released 1 block", NULL },
		{ "blocks", 0, "no blocks", NULL },
		{ "report domains", 0, NULL, NULL },
		{ "--json report domains", 0, "\"domains\"", NULL },
	};

	if (bin == NULL || access(bin, X_OK) != 0) {
		skip(); /* SLUICE_BINARY not set or not built: run under CTest */
		return;
	}
	setup_blocks(&a);
	snprintf(path, sizeof(path), "%s/cli.conf", F->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[server]\ndata_dir = %s\n[admin]\nlisten = 127.0.0.1:%d\n",
	    F->dir, F->port);
	fclose(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strchr(cases[i].args, '@');
		int rc;

		if (at != NULL)
			snprintf(args, sizeof(args), "%.*s%lld%s",
			    (int)(at - cases[i].args), cases[i].args,
			    (long long)a.ids[at[1] - '1'], at + 2);
		else
			str_copy(args, cases[i].args, sizeof(args));
		rc = run_cli(args, out, sizeof(out), err, sizeof(err));
		if (rc != cases[i].status)
			fail_msg("sluice %s: exit %d, expected %d\nstdout: %s\n"
			    "stderr: %s", args, rc, cases[i].status, out, err);
		if (cases[i].in_out && strstr(out, cases[i].in_out) == NULL)
			fail_msg("sluice %s: \"%s\" not in stdout: %s", args,
			    cases[i].in_out, out);
		if (cases[i].in_err && strstr(err, cases[i].in_err) == NULL)
			fail_msg("sluice %s: \"%s\" not in stderr: %s", args,
			    cases[i].in_err, err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocks_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_show_and_release, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blocks_release_bulk, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_block_permanent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_engine_views, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_blocks, setup, teardown),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
