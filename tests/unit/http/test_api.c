/*
 * test_api: the admin HTTP API end to end on loopback: a temporary
 * database, the engine on its own thread, the API on a free port, and a
 * small HTTP/1.1 client (api_fixture.h).
 */
#include "api_fixture.h"

/* ---- tests ------------------------------------------------------------ */

static void
test_auth(void **state)
{
	char good[API_TOKEN_MAX + 16], wrong[API_TOKEN_MAX + 16];
	char shorter[API_TOKEN_MAX + 16];
	struct {
		const char *auth;
		const char *path;
		int status;
	} cases[] = {
		{ NULL, "/api/v1/streams", 401 },
		{ wrong, "/api/v1/streams", 401 },
		{ shorter, "/api/v1/streams", 401 },
		{ "Bearer", "/api/v1/status", 401 },
		{ "Basic Zm9vOmJhcg==", "/api/v1/status", 401 },
		{ NULL, "/api/v1/nonexistent", 401 },
		{ good, "/api/v1/streams", 200 },
		{ good, "/api/v1/status", 200 },
		{ NULL, "/healthz", 200 },
	};
	struct reply r;

	snprintf(good, sizeof(good), "Bearer %s", F->token);
	snprintf(wrong, sizeof(wrong), "Bearer %s", F->token);
	wrong[strlen(wrong) - 1] ^= 1;
	snprintf(shorter, sizeof(shorter), "Bearer %.*s",
	    (int)strlen(F->token) - 1, F->token);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_raw("GET", cases[i].path, cases[i].auth, NULL, NULL, 0,
		    (size_t)-1, false, 0, &r);
		if (r.status != cases[i].status)
			fail_msg("case %zu: status %d, expected %d", i, r.status,
			    cases[i].status);
		if (r.status == 401)
			assert_non_null(json_string_value(json_object_get(r.json,
			    "error")));
		reply_fini(&r);
	}
	/* a change without the token changes nothing */
	{
		static const char body[] = "{\"name\":\"sneaky\",\"ips\":[\"127.0.0.5\"]}";
		http_raw("POST", "/api/v1/streams", wrong, "application/json", body,
		    strlen(body), (size_t)-1, false, 0, &r);
		assert_int_equal(r.status, 401);
		reply_fini(&r);
		expect("GET", "/api/v1/streams", NULL, NULL, 200, &r);
		assert_null(strstr(r.raw, "sneaky"));
		reply_fini(&r);
	}
	/* the status carries the version */
	expect("GET", "/api/v1/status", NULL, NULL, 200, &r);
	assert_string_equal(json_string_value(json_object_get(r.json, "version")),
	    SLUICE_VERSION);
	reply_fini(&r);
}

static json_t *
find_named(json_t *arr, const char *key, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (strcmp(json_string_value(json_object_get(v, key)) ?
		    json_string_value(json_object_get(v, key)) : "", name) == 0)
			return v;
	}
	return NULL;
}

static void
test_streams(void **state)
{
	struct reply r;
	json_t *s;

	expect("POST", "/api/v1/streams", "application/json",
	    "{\"name\":\"bulk\",\"ips\":[{\"ip\":\"127.0.0.21\",\"helo\":"
	    "\"a.example\"},{\"ip\":\"127.0.0.22\"}]}", 201, NULL);
	expect("GET", "/api/v1/streams", NULL, NULL, 200, &r);
	s = find_named(json_object_get(r.json, "streams"), "name", "bulk");
	assert_non_null(s);
	assert_int_equal(json_array_size(json_object_get(s, "ips")), 2);
	assert_non_null(find_named(json_object_get(r.json, "streams"), "name",
	    "default"));
	reply_fini(&r);

	/* bad input changes nothing */
	static const char *bad[] = {
		"{\"name\":\"x\",\"ips\":[{\"ip\":\"300.1.1.1\"}]}",
		"{\"name\":\"x\",\"ips\":[]}",
		"{\"name\":\"bad name\",\"ips\":[{\"ip\":\"127.0.0.1\"}]}",
		"{\"ips\":[{\"ip\":\"127.0.0.1\"}]}",
		"not json",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect("POST", "/api/v1/streams", "application/json", bad[i], 400,
		    NULL);
	expect("GET", "/api/v1/streams", NULL, NULL, 200, &r);
	assert_null(find_named(json_object_get(r.json, "streams"), "name", "x"));
	reply_fini(&r);

	expect("DELETE", "/api/v1/streams/bulk", NULL, NULL, 200, NULL);
	expect("DELETE", "/api/v1/streams/bulk", NULL, NULL, 404, NULL);
	expect("GET", "/api/v1/streams", NULL, NULL, 200, &r);
	assert_null(find_named(json_object_get(r.json, "streams"), "name", "bulk"));
	reply_fini(&r);
}

static void
test_routes(void **state)
{
	struct reply r;
	json_t *rt;

	expect("PUT", "/api/v1/routes/Example.COM", "application/json",
	    "{\"hosts\":[\"127.0.0.31:2525\",\"mx.example.net\"]}", 200, NULL);
	expect("GET", "/api/v1/routes", NULL, NULL, 200, &r);
	rt = find_named(json_object_get(r.json, "routes"), "domain", "example.com");
	assert_non_null(rt);
	assert_int_equal(json_array_size(json_object_get(rt, "hosts")), 2);
	reply_fini(&r);

	expect("PUT", "/api/v1/routes/example.org", "application/json",
	    "{\"hosts\":[\"bad host:99999\"]}", 400, NULL);
	expect("PUT", "/api/v1/routes/example.org", "application/json",
	    "{\"hosts\":[]}", 400, NULL);
	expect("PUT", "/api/v1/routes/bad..domain", "application/json",
	    "{\"hosts\":[\"127.0.0.1\"]}", 400, NULL);

	{
		/* DELETE validates the name as PUT does (no silent truncation) */
		char path[512];

		snprintf(path, sizeof(path), "/api/v1/routes/%0300d", 0);
		expect("DELETE", path, NULL, NULL, 400, NULL);
		expect("DELETE", "/api/v1/routes/bad..domain", NULL, NULL, 400,
		    NULL);
	}
	expect("DELETE", "/api/v1/routes/example.com", NULL, NULL, 200, NULL);
	expect("DELETE", "/api/v1/routes/example.com", NULL, NULL, 404, NULL);
	expect("GET", "/api/v1/routes", NULL, NULL, 200, &r);
	assert_null(find_named(json_object_get(r.json, "routes"), "domain",
	    "example.com"));
	reply_fini(&r);
}

/* Active members of a list, from GET /lists/NAME. */
static json_int_t
active_members(const char *list)
{
	char path[128];
	struct reply r;
	json_t *m;
	json_int_t n;

	snprintf(path, sizeof(path), "/api/v1/lists/%s", list);
	expect("GET", path, NULL, NULL, 200, &r);
	m = json_object_get(r.json, "members");
	n = json_is_object(m) ? json_integer_value(json_object_get(m, "active")) :
	    json_integer_value(m);
	reply_fini(&r);
	return n;
}

static const char good_csv[] =
    "email,name,kind\n"
    "ann@example.com,Ann\n"
    "\"bob@example.org\",\"Bob, Jr.\",digest\r\n"
    "cy@example.net\n";

static const char good_msg[] =
    "From: News <news@example.com>\r\n"
    "To: {{email}}\r\n"
    "Subject: Hello {{name}}\r\n"
    "\r\n"
    "Hi {{name}}.\r\n";

static void
create_list_with_members(void)
{
	struct reply r;

	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"news\",\"from\":\"news@example.com\"}", 201, NULL);
	expect("POST", "/api/v1/lists/news/members", "text/csv", good_csv, 200, &r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 3);
	assert_int_equal(json_integer_value(json_object_get(r.json, "existing")), 0);
	reply_fini(&r);
}

/* CSV of the lines "<pre><i><post>\n" for i in [from, to); caller frees. */
static char *
csv_lines(const char *pre, const char *post, int from, int to)
{
	struct buf b;
	char line[128];

	buf_init(&b, (size_t)64 << 20);
	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof(line), "%s%d%s\n", pre, i, post);
		assert_int_equal(buf_append(&b, line, (size_t)n), 0);
	}
	assert_int_equal(buf_append(&b, "", 1), 0);
	return b.data;
}

static void
test_import_limits(void **state)
{
	static const struct {
		int nbad;
		const char *error;
		size_t lines;
		json_int_t more;
	} bad[] = {
		{ 3, "3 invalid lines", 3, 0 },
		{ 250, "250 invalid lines", 100, 150 },
		/* stopped after 10,000: the 101st line says so */
		{ 30000, "10000 invalid lines", 101, 9900 },
	};
	struct reply r;
	char *csv;

	(void)state;
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"big\",\"from\":\"big@example.com\"}", 201, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *lines, *last;

		csv = csv_lines("bad", "", 0, bad[i].nbad);
		expect("POST", "/api/v1/lists/big/members", "text/csv", csv, 400,
		    &r);
		assert_string_equal(json_string_value(json_object_get(r.json,
		    "error")), bad[i].error);
		lines = json_object_get(r.json, "lines");
		assert_int_equal(json_array_size(lines), bad[i].lines);
		assert_int_equal(json_integer_value(json_object_get(r.json,
		    "more")), bad[i].more);
		last = json_array_get(lines, json_array_size(lines) - 1);
		if (bad[i].more > 0 && bad[i].lines > 100)
			assert_string_equal(json_string_value(json_object_get(last,
			    "error")), "too many errors; stopped at line 10000");
		reply_fini(&r);
		free(csv);
	}
	assert_int_equal(active_members("big"), 0);

	/* more rows than one engine call takes: the counts add up */
	csv = csv_lines("m", "@example.com", 0, 6000);
	expect("POST", "/api/v1/lists/big/members", "text/csv", csv, 200, &r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "added")),
	    6000);
	reply_fini(&r);
	free(csv);
	csv = csv_lines("m", "@example.com", 0, 12001);
	expect("POST", "/api/v1/lists/big/members", "text/csv", csv, 200, &r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "added")),
	    6001);
	assert_int_equal(json_integer_value(json_object_get(r.json,
	    "existing")), 6000);
	reply_fini(&r);
	free(csv);
	assert_int_equal(active_members("big"), 12001);
}

static void
test_lists_and_import(void **state)
{
	struct reply r;
	json_t *lines;

	expect("POST", "/api/v1/streams", "application/json",
	    "{\"name\":\"s1\",\"ips\":[\"127.0.0.21\"]}", 201, NULL);
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"other\",\"from\":\"o@example.com\",\"stream\":\"s1\"}",
	    201, NULL);
	create_list_with_members();
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"news\",\"from\":\"news@example.com\"}", 409, NULL);
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"x\",\"from\":\"no-at-sign\"}", 400, NULL);
	expect("GET", "/api/v1/lists/nosuch", NULL, NULL, 404, NULL);
	expect("POST", "/api/v1/lists", "application/json",
	    "{\"name\":\"y\",\"from\":\"y@example.com\",\"stream\":\"nosuch\"}",
	    404, NULL);
	expect("GET", "/api/v1/lists", NULL, NULL, 200, &r);
	assert_non_null(find_named(json_object_get(r.json, "lists"), "name", "news"));
	assert_non_null(find_named(json_object_get(r.json, "lists"), "name",
	    "other"));
	reply_fini(&r);
	assert_int_equal(active_members("news"), 3);

	/* importing again: all exist */
	expect("POST", "/api/v1/lists/news/members", "text/csv", good_csv, 200, &r);
	assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 0);
	assert_int_equal(json_integer_value(json_object_get(r.json, "existing")), 3);
	reply_fini(&r);

	/* two bad lines: 400 naming them, and nothing imported */
	expect("POST", "/api/v1/lists/news/members", "text/csv",
	    "dee@example.com\n"
	    "eve@example.com,Eve\n"
	    "not-an-address\n"
	    "fay@example.com\n"
	    "gus@example.com,Gus,emperor\n", 400, &r);
	assert_string_equal(json_string_value(json_object_get(r.json, "error")),
	    "2 invalid lines");
	lines = json_object_get(r.json, "lines");
	assert_int_equal(json_array_size(lines), 2);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(lines, 0), "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(lines, 1), "line")), 5);
	reply_fini(&r);
	assert_int_equal(active_members("news"), 3);

	expect("POST", "/api/v1/lists/nosuch/members", "text/csv", good_csv, 404,
	    NULL);

	/* segments */
	expect("POST", "/api/v1/lists/news/segments", "application/json",
	    "{\"name\":\"orgs\",\"domains\":[\"example.org\"],\"fields\":{}}", 201,
	    NULL);
	expect("POST", "/api/v1/lists/news/segments", "application/json",
	    "{\"name\":\"everyone\"}", 201, NULL);
	expect("POST", "/api/v1/lists/nosuch/segments", "application/json",
	    "{\"name\":\"everyone\"}", 404, NULL);
	expect("GET", "/api/v1/lists/news", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "segments")), 2);
	reply_fini(&r);
	expect("POST", "/api/v1/lists/news/segments", "application/json",
	    "{\"name\":\"bad\",\"domains\":[\"not a domain\"]}", 400, NULL);
}

static json_int_t
count(json_t *m, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(m, "counts"), key));
}

static void
test_mailing(void **state)
{
	static const char *const states[] = { "pending", "inflight", "sent",
		"deferred", "failed", "expired", "skipped", "suppressed" };
	struct reply r;
	char path[128];
	json_int_t id, sum = 0;
	int refuse, refuse_port;

	/*
	 * Every domain goes to a loopback port that refuses connections, so
	 * the engine defers the recipients and the mailing stays "sending"
	 * while the state changes below are tried.
	 */
	refuse = refusing_port(&refuse_port);
	snprintf(path, sizeof(path), "{\"hosts\":[\"127.0.0.1:%d\"]}",
	    refuse_port);
	expect("PUT", "/api/v1/routes/*", "application/json", path, 200, NULL);
	create_list_with_members();
	expect("POST", "/api/v1/mailings?list=news", "message/rfc822", good_msg,
	    201, &r);
	id = json_integer_value(json_object_get(r.json, "id"));
	assert_true(id > 0);
	reply_fini(&r);

	snprintf(path, sizeof(path), "/api/v1/mailings/%lld", (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_int_equal(count(r.json, "total"), 3);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		sum += count(r.json, states[i]);
	assert_int_equal(sum, 3);
	reply_fini(&r);

	expect("GET", "/api/v1/mailings", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "mailings")), 1);
	reply_fini(&r);

	/* invalid message, unknown list, unknown segment, no list */
	expect("POST", "/api/v1/mailings?list=news", "message/rfc822",
	    "no header block at all", 400, NULL);
	expect("POST", "/api/v1/mailings?list=news", "message/rfc822",
	    "Subject: {{nosuchfield}}\r\n\r\nbody\r\n", 400, NULL);
	expect("POST", "/api/v1/mailings?list=nosuch", "message/rfc822", good_msg,
	    404, NULL);
	expect("POST", "/api/v1/mailings?list=news&segment=nosuch",
	    "message/rfc822", good_msg, 404, NULL);
	expect("POST", "/api/v1/mailings", "message/rfc822", good_msg, 400, NULL);
	expect("POST", "/api/v1/mailings?list=news&stream=nosuch",
	    "message/rfc822", good_msg, 404, NULL);
	expect("GET", "/api/v1/mailings/999", NULL, NULL, 404, NULL);
	expect("GET", "/api/v1/mailings/abc", NULL, NULL, 400, NULL);

	/* state changes */
	struct {
		const char *verb;
		int status;
		const char *state;
	} steps[] = {
		{ "pause", 200, "paused" },
		{ "pause", 409, NULL },
		{ "resume", 200, "sending" },
		{ "cancel", 200, "cancelled" },
		{ "resume", 409, NULL },
		{ "cancel", 409, NULL },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		snprintf(path, sizeof(path), "/api/v1/mailings/%lld/%s",
		    (long long)id, steps[i].verb);
		expect("POST", path, NULL, NULL, steps[i].status, &r);
		if (steps[i].state)
			assert_string_equal(json_string_value(json_object_get(r.json,
			    "state")), steps[i].state);
		reply_fini(&r);
	}

	/* explain and attempts */
	snprintf(path, sizeof(path), "/api/v1/explain?email=ann@example.com&"
	    "mailing=%lld", (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_non_null(json_string_value(json_object_get(r.json, "reason")));
	reply_fini(&r);
	snprintf(path, sizeof(path), "/api/v1/explain?email=zed@example.com&"
	    "mailing=%lld", (long long)id);
	expect("GET", path, NULL, NULL, 404, NULL);
	expect("GET", "/api/v1/explain?email=ann@example.com", NULL, NULL, 400,
	    NULL);
	snprintf(path, sizeof(path), "/api/v1/attempts?mailing=%lld&limit=5",
	    (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_true(json_is_array(json_object_get(r.json, "attempts")));
	reply_fini(&r);
	expect("GET", "/api/v1/attempts?limit=0", NULL, NULL, 400, NULL);
	expect("GET", "/api/v1/reports/streams", NULL, NULL, 200, NULL);
	close(refuse);
}

static void
test_limits_and_unknown(void **state)
{
	char auth[API_TOKEN_MAX + 16];
	struct reply r;

	snprintf(auth, sizeof(auth), "Bearer %s", F->token);
	/* announced too large: refused before the body is read */
	http_raw("POST", "/api/v1/lists/news/members", auth, "text/csv", NULL, 0,
	    API_BODY_MAX + 1, false, 0, &r);
	assert_int_equal(r.status, 413);
	reply_fini(&r);
	/* streamed (chunked) past the maximum */
	http_raw("POST", "/api/v1/lists/news/members", auth, "text/csv", NULL, 0,
	    (size_t)-1, true, API_BODY_MAX + 65536, &r);
	assert_int_equal(r.status, 413);
	reply_fini(&r);

	expect("GET", "/api/v1/nosuch", NULL, NULL, 404, NULL);
	expect("GET", "/api/v2/streams", NULL, NULL, 404, NULL);
	expect("GET", "/", NULL, NULL, 404, NULL);
	expect("PATCH", "/api/v1/streams", NULL, NULL, 405, NULL);
	expect("GET", "/api/v1/lists/a/b/c/d/e/f/g", NULL, NULL, 404, NULL);
}

static void
test_token_file(void **state)
{
	char dir[] = "/tmp/sluice-test-token-XXXXXX";
	char path[128], t1[API_TOKEN_MAX + 1], t2[API_TOKEN_MAX + 1], err[256];
	struct stat sb;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	assert_int_equal(api_token_read(path, t1, sizeof(t1), err, sizeof(err)), -1);
	assert_int_equal(api_token_load_or_create(path, t1, sizeof(t1), err,
	    sizeof(err)), 0);
	assert_int_equal(strlen(t1), 64);
	assert_int_equal(strspn(t1, "0123456789abcdef"), 64);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(api_token_load_or_create(path, t2, sizeof(t2), err,
	    sizeof(err)), 0);
	assert_string_equal(t1, t2);
	/* an operator's own token, with a trailing newline */
	f = fopen(path, "w");
	fputs("  my-secret\n", f);
	fclose(f);
	assert_int_equal(api_token_read(path, t2, sizeof(t2), err, sizeof(err)), 0);
	assert_string_equal(t2, "my-secret");
	f = fopen(path, "w");
	fputs("\n", f);
	fclose(f);
	assert_int_equal(api_token_read(path, t2, sizeof(t2), err, sizeof(err)), -1);
	unlink(path);
	rmdir(dir);
}

static void
test_parse_listen(void **state)
{
	struct {
		const char *in;
		int rc;
		const char *host;
		int port;
	} cases[] = {
		{ "127.0.0.1:8025", 0, "127.0.0.1", 8025 },
		{ "[::1]:8025", 0, "::1", 8025 },
		{ "[::1]", 0, "::1", 0 },
		{ "::1", 0, "::1", 0 },
		{ "127.0.0.1", 0, "127.0.0.1", 0 },
		{ "127.0.0.1:99999", -1, NULL, 0 },
		{ "127.0.0.1:", -1, NULL, 0 },
		{ ":8025", -1, NULL, 0 },
		{ "[::1", -1, NULL, 0 },
		{ "", -1, NULL, 0 },
	};
	char host[64];
	int port;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		port = -1;
		assert_int_equal(api_parse_listen(cases[i].in, host, sizeof(host),
		    &port), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
}

static void
test_cli(void **state)
{
	const char *bin = getenv("SLUICE_BINARY");
	char path[256], out[16384], err[16384];
	FILE *f;
	struct {
		const char *args;
		int status;
		const char *in_out; /* expected in stdout (or NULL) */
		const char *in_err; /* expected in stderr (or NULL) */
	} cases[] = {
		{ "--version", 0, "sluice " SLUICE_VERSION, NULL },
		{ "stream add s9 --ip 127.0.0.9=h.example.net", 0,
		    "stream s9: 1 source IP", NULL },
		{ "stream list", 0, "h.example.net", NULL },
		{ "stream add x", 1, NULL, "sluice: stream add: at least one --ip" },
		{ "stream add x --ip 999.1.1.1", 1, NULL, "is not an IP address" },
		{ "stream add x --bogus", 1, NULL, "unknown option --bogus" },
		{ "stream list --help", 0, "usage: sluice stream list", NULL },
		{ "list create cl --from cl@example.com", 0, "list cl created", NULL },
		{ "list create cl --from cl@example.com", 1, NULL,
		    "sluice: list 'cl' already exists" },
		{ "member import cl @GOOD", 0, "3 added, 0 already members", NULL },
		{ "member import cl @BAD", 1, NULL, "bad.csv:2: " },
		{ "member import cl @MANY", 1, NULL, "many.csv:100: " },
		{ "member import cl @MANY", 1, NULL,
		    "many.csv: ... and 50 more\nsluice: " },
		{ "list show cl", 0, "3 active", NULL },
		{ "segment add cl none --domain nowhere.example", 0,
		    "segment none of list cl saved", NULL },
		{ "mailing send cl @MSG --segment none --wait", 0, "done", NULL },
		{ "mailing show 999", 1, NULL, "sluice: no mailing 999" },
		{ "--json route list", 0, "\"routes\"", NULL },
		{ "route set example.com 127.0.0.1:2525", 0,
		    "route example.com -> 127.0.0.1:2525", NULL },
		{ "route list", 0, "example.com", NULL },
		{ "frobnicate", 1, NULL, "unknown command" },
	};

	if (bin == NULL || access(bin, X_OK) != 0) {
		skip(); /* SLUICE_BINARY not set or not built: run under CTest */
		return;
	}
	snprintf(path, sizeof(path), "%s/cli.conf", F->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[server]\ndata_dir = %s\n[admin]\nlisten = 127.0.0.1:%d\n",
	    F->dir, F->port);
	fclose(f);
	snprintf(path, sizeof(path), "%s/good.csv", F->dir);
	f = fopen(path, "w");
	fputs(good_csv, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/bad.csv", F->dir);
	f = fopen(path, "w");
	fputs("ok@example.com\nnot-an-address\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/many.csv", F->dir);
	f = fopen(path, "w");
	for (int i = 1; i <= 150; i++)
		fprintf(f, "bad%d\n", i);
	fclose(f);
	snprintf(path, sizeof(path), "%s/msg.eml", F->dir);
	f = fopen(path, "w");
	fputs(good_msg, f);
	fclose(f);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char args[1024], *at;
		int rc;

		str_copy(args, cases[i].args, sizeof(args));
		/* @GOOD @BAD @MSG stand for the files written above */
		if ((at = strchr(args, '@')) != NULL && at[-1] == ' ') {
			const char *name = str_has_prefix(at, "@GOOD") ? "good.csv" :
			    str_has_prefix(at, "@BAD") ? "bad.csv" :
			    str_has_prefix(at, "@MANY") ? "many.csv" : "msg.eml";
			char rest[512];
			str_copy(rest, strchr(at, ' ') ? strchr(at, ' ') : "",
			    sizeof(rest));
			snprintf(at, sizeof(args) - (size_t)(at - args), "%s/%s%s",
			    F->dir, name, rest);
		}
		rc = run_cli(args, out, sizeof(out), err, sizeof(err));
		if (rc != cases[i].status ||
		    (cases[i].in_out && strstr(out, cases[i].in_out) == NULL) ||
		    (cases[i].in_err && strstr(err, cases[i].in_err) == NULL))
			fail_msg("sluice %s: exit %d (expected %d)\nstdout: %s\n"
			    "stderr: %s", args, rc, cases[i].status, out, err);
		/* an error is one line on stderr (member import lists lines first) */
		if (rc != 0 && strstr(args, "import") == NULL)
			assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err));
	}
	/* nothing of the bad file was imported */
	assert_int_equal(active_members("cl"), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists_and_import, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_import_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mailing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_unknown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
	};

	log_set_level(LOG_WARN);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
