/*
 * test_api_limits: the /api/v1/limits and /api/v1/macros routes end to
 * end on loopback: a temporary database, the engine on its own thread, the
 * API on a free port, and a small HTTP/1.1 client (api_fixture.h).
 */
#define API_FIXTURE_DIR "/tmp/sluice-test-lim-XXXXXX"
#include "api_fixture.h"

/* ---- tests ------------------------------------------------------------ */

#define JSON "application/json"

/* A request that must fail with status and exactly this error message. */
static void
expect_error(const char *method, const char *path, const char *body, int status,
    const char *msg)
{
	struct reply r;
	const char *got;

	expect(method, path, body ? JSON : NULL, body, status, &r);
	got = json_string_value(json_object_get(r.json, "error"));
	if (got == NULL || strcmp(got, msg) != 0)
		fail_msg("%s %s %s: error \"%s\", expected \"%s\"", method, path,
		    body ? body : "", got ? got : "(none)", msg);
	reply_fini(&r);
}

static json_int_t
jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("\"%s\" is not an integer", key);
	return json_integer_value(v);
}

static size_t
count_limits(void)
{
	struct reply r;
	size_t n;

	expect("GET", "/api/v1/limits", NULL, NULL, 200, &r);
	n = json_array_size(json_object_get(r.json, "limits"));
	reply_fini(&r);
	return n;
}

static void
test_limits_crud(void **state)
{
	struct reply r;
	json_t *o;
	json_int_t id, id2;
	char path[64];

	expect("POST", "/api/v1/limits", JSON,
	    "{\"target\":\"Gmail.com\",\"simultaneous\":20,"
	    "\"messages_per_hour\":3600,\"greylist_interval\":300,"
	    "\"greylist_function\":\"double\",\"greylist_max\":3600}", 201, &r);
	id = jint(r.json, "id");
	assert_true(id > 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "target")),
	    "gmail.com");
	assert_int_equal(jint(r.json, "simultaneous"), 20);
	assert_true(json_is_null(json_object_get(r.json, "source")));
	assert_true(json_is_null(json_object_get(r.json, "connections_per_hour")));
	reply_fini(&r);

	expect("POST", "/api/v1/limits", JSON,
	    "{\"source\":\"stream:default\",\"target\":\"mx:*.yahoodns.net\","
	    "\"connections_per_hour\":12,\"messages_per_connection\":5}", 201, &r);
	id2 = jint(r.json, "id");
	assert_true(id2 > id);
	reply_fini(&r);

	/* visible at once in the listing and by id */
	expect("GET", "/api/v1/limits", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "limits")), 2);
	o = json_array_get(json_object_get(r.json, "limits"), 1);
	assert_int_equal(jint(o, "id"), id2);
	assert_string_equal(json_string_value(json_object_get(o, "source")),
	    "stream:default");
	assert_int_equal(jint(o, "connections_per_hour"), 12);
	reply_fini(&r);
	snprintf(path, sizeof(path), "/api/v1/limits/%lld", (long long)id);
	expect("GET", path, NULL, NULL, 200, &r);
	assert_string_equal(json_string_value(json_object_get(r.json,
	    "greylist_function")), "double");
	reply_fini(&r);

	/* PUT replaces: fields left out become blank; a GET body round-trips */
	expect("PUT", path, JSON, "{\"target\":\"gmail.com\",\"simultaneous\":5,"
	    "\"source\":\"192.0.2.11\"}", 200, &r);
	assert_int_equal(jint(r.json, "simultaneous"), 5);
	assert_true(json_is_null(json_object_get(r.json, "messages_per_hour")));
	assert_true(json_is_null(json_object_get(r.json, "greylist_function")));
	{
		char *again = json_dumps(r.json, JSON_COMPACT);
		reply_fini(&r);
		expect("PUT", path, JSON, again, 200, &r);
		free(again);
	}
	reply_fini(&r);
	expect("GET", "/api/v1/limits", NULL, NULL, 200, &r);
	o = json_array_get(json_object_get(r.json, "limits"), 0);
	assert_int_equal(jint(o, "id"), id);
	assert_int_equal(jint(o, "simultaneous"), 5);
	assert_string_equal(json_string_value(json_object_get(o, "source")),
	    "192.0.2.11");
	assert_true(json_is_null(json_object_get(o, "greylist_interval")));
	reply_fini(&r);

	/* delete */
	expect("DELETE", path, NULL, NULL, 200, &r);
	assert_int_equal(jint(r.json, "removed"), id);
	reply_fini(&r);
	assert_int_equal(count_limits(), 1);
	expect_error("GET", path, NULL, 404, "no limit 1");
	expect_error("DELETE", path, NULL, 404, "no limit 1");
	expect_error("PUT", path, "{\"target\":\"gmail.com\"}", 404, "no limit 1");
	expect_error("GET", "/api/v1/limits/abc", NULL, 400,
	    "\"abc\" is not a limit id");
	expect_error("PATCH", "/api/v1/limits", NULL, 405,
	    "method PATCH is not allowed on /api/v1/limits");
}

static void
test_limits_invalid(void **state)
{
	static const struct {
		const char *body;
		const char *msg;
	} cases[] = {
		{ "{\"target\":\"gmail.com\",\"simultaneous\":0}",
		    "simultaneous connections must be 1 to 100" },
		{ "{\"target\":\"gmail.com\",\"simultaneous\":101}",
		    "simultaneous connections must be 1 to 100" },
		{ "{\"target\":\"gmail.com\",\"simultaneous\":-3}",
		    "simultaneous connections must be 1 to 100" },
		{ "{\"target\":\"gmail.com\",\"messages_per_hour\":-5}",
		    "messages per hour must not be negative" },
		{ "{\"target\":\"gmail.com\",\"connections_per_hour\":-1}",
		    "connections per hour must not be negative" },
		{ "{\"target\":\"gmail.com\",\"messages_per_connection\":-1}",
		    "messages per connection must not be negative" },
		{ "{\"target\":\"gmail.com\",\"greylist_interval\":-240}",
		    "greylist interval must not be negative" },
		{ "{\"target\":\"gmail.com\",\"messages_per_hour\":0}",
		    "messages per hour must be at least 1 (null for no limit)" },
		{ "{\"target\":\"$foo\",\"simultaneous\":3}", "unknown macro $foo" },
		{ "{\"source\":\"$bar\",\"target\":\"gmail.com\"}",
		    "unknown macro $bar" },
		{ "{\"source\":\"stream:x\",\"target\":\"gmail.com\"}",
		    "no such stream 'x'" },
		{ "{\"target\":\"gmail.com\",\"greylist_function\":\"cube\"}",
		    "unknown greylist function 'cube' (same, double or square)" },
		{ "{\"target\":\"gmail.com\",\"greylist_interval\":600,"
		    "\"greylist_max\":300}",
		    "greylist maximum (300 s) is below the interval (600 s)" },
		{ "{\"simultaneous\":3}", "target is required" },
		{ "{\"target\":\"\"}", "target is required" },
		{ "{\"target\":\"mx:\"}",
		    "bad target 'mx:' (mx: needs a host pattern or IP)" },
		{ "{\"target\":\"gmail.com\",\"simultaneous\":\"5\"}",
		    "\"simultaneous\" must be an integer or null" },
		{ "{\"target\":\"gmail.com\",\"simultanous\":5}",
		    "unknown member \"simultanous\"" },
		{ "{\"target\":5}", "\"target\" must be a string or null" },
		{ "{\"id\":7,\"target\":\"gmail.com\"}",
		    "\"id\" is chosen by the server" },
		{ "[1]", "a JSON object is expected in the request body" },
	};
	struct reply r;
	json_int_t id;
	char path[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error("POST", "/api/v1/limits", cases[i].body, 400,
		    cases[i].msg);
	expect("POST", "/api/v1/limits", JSON, "{not json", 400, &r);
	assert_true(str_has_prefix(json_string_value(json_object_get(r.json,
	    "error")), "invalid JSON"));
	reply_fini(&r);
	/* nothing refused was stored */
	assert_int_equal(count_limits(), 0);

	/* a refused PUT leaves the limit as it was */
	expect("POST", "/api/v1/limits", JSON,
	    "{\"target\":\"gmail.com\",\"simultaneous\":7}", 201, &r);
	id = jint(r.json, "id");
	reply_fini(&r);
	snprintf(path, sizeof(path), "/api/v1/limits/%lld", (long long)id);
	for (size_t i = 0; i < 12; i++)
		expect_error("PUT", path, cases[i].body, 400, cases[i].msg);
	expect_error("PUT", path, "{\"id\":999,\"target\":\"gmail.com\"}", 400,
	    "\"id\" in the body does not match the path");
	expect("GET", path, NULL, NULL, 200, &r);
	assert_int_equal(jint(r.json, "simultaneous"), 7);
	assert_string_equal(json_string_value(json_object_get(r.json, "target")),
	    "gmail.com");
	reply_fini(&r);
}

static void
test_macros(void **state)
{
	struct reply r;
	json_t *m;
	json_int_t id;
	char path[64], want[96];

	expect("GET", "/api/v1/macros", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "macros")), 0);
	reply_fini(&r);

	expect("PUT", "/api/v1/macros/big", JSON,
	    "{\"domains\":[\"gmail.com\",\"GoogleMail.com\"]}", 200, &r);
	assert_string_equal(json_string_value(json_object_get(r.json, "name")), "big");
	assert_string_equal(json_string_value(json_array_get(json_object_get(r.json,
	    "domains"), 1)), "googlemail.com");
	reply_fini(&r);
	/* replace, named with its '$' */
	expect("PUT", "/api/v1/macros/$big", JSON,
	    "{\"domains\":[\"gmail.com\",\"googlemail.com\",\"google.com\"]}", 200,
	    NULL);
	expect("GET", "/api/v1/macros", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "macros")), 1);
	m = json_array_get(json_object_get(r.json, "macros"), 0);
	assert_int_equal(json_array_size(json_object_get(m, "domains")), 3);
	reply_fini(&r);

	/* invalid macros */
	expect_error("PUT", "/api/v1/macros/x", "{\"domains\":[]}", 400,
	    "\"domains\" must be an array of 1 to 10000 domain names");
	expect_error("PUT", "/api/v1/macros/x", "{\"domains\":[\"a b\"]}", 400,
	    "macro $x: 'a b' is not a domain name");
	expect_error("PUT", "/api/v1/macros/x", "{\"domains\":[3]}", 400,
	    "domains[0] is not a string");
	expect_error("PUT", "/api/v1/macros/a%20b", "{\"domains\":[\"a.com\"]}", 400,
	    "invalid macro name 'a b': 1 to 64 letters, digits, '.', '_' or '-'");

	/* a limit on the macro makes it busy */
	expect("POST", "/api/v1/limits", JSON,
	    "{\"target\":\"$big\",\"simultaneous\":10}", 201, &r);
	id = jint(r.json, "id");
	assert_string_equal(json_string_value(json_object_get(r.json, "target")),
	    "$big");
	reply_fini(&r);
	snprintf(want, sizeof(want), "macro $big is used by limit %lld", (long long)id);
	expect_error("DELETE", "/api/v1/macros/big", NULL, 409, want);
	snprintf(path, sizeof(path), "/api/v1/limits/%lld", (long long)id);
	expect("DELETE", path, NULL, NULL, 200, NULL);
	expect("DELETE", "/api/v1/macros/big", NULL, NULL, 200, &r);
	assert_string_equal(json_string_value(json_object_get(r.json, "removed")),
	    "big");
	reply_fini(&r);
	expect_error("DELETE", "/api/v1/macros/big", NULL, 404, "no macro $big");
	expect("GET", "/api/v1/macros", NULL, NULL, 200, &r);
	assert_int_equal(json_array_size(json_object_get(r.json, "macros")), 0);
	reply_fini(&r);
	/* and a limit on it is refused again */
	expect_error("POST", "/api/v1/limits", "{\"target\":\"$big\"}", 400,
	    "unknown macro $big");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_limits_crud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_macros, setup, teardown),
	};

	log_set_level(LOG_WARN);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
