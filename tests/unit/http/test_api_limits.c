/*
 * test_api_limits: the /api/v1/limits and /api/v1/macros routes end to
 * end on loopback: a temporary database, the engine on its own thread, the
 * API on a free port, and a small HTTP/1.1 client (the helpers are those
 * of test_api.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "http/api.h"
#include "http/api_internal.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

struct fixture {
	char dir[64];
	struct settings cfg;
	struct store *st;
	struct event_base *base;
	struct engine *engine;
	pthread_t loop;
	struct api *api;
	char token[API_TOKEN_MAX + 1];
	int port;
};

static struct fixture *F;

struct reply {
	int status;
	json_t *json;
	char *raw;
};

static void
reply_fini(struct reply *r)
{
	json_decref(r->json);
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * One request. auth: NULL for no Authorization header, else the whole
 * header value. body_len_claim (if not (size_t)-1) is sent as
 * Content-Length instead of len, with no body (the over-size test).
 */
static void
http_raw(const char *method, const char *path, const char *auth,
    const char *ctype, const char *body, size_t len, size_t len_claim,
    bool chunked, size_t chunked_total, struct reply *out)
{
	struct sockaddr_in sin;
	struct buf req, resp;
	char chunk[65536];
	ssize_t got;
	const char *sep;
	int fd;

	memset(out, 0, sizeof(*out));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)F->port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);

	buf_init(&req, 1 << 20);
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Connection: close\r\n", method, path);
	if (auth)
		buf_printf(&req, "Authorization: %s\r\n", auth);
	if (ctype)
		buf_printf(&req, "Content-Type: %s\r\n", ctype);
	if (chunked)
		buf_puts(&req, "Transfer-Encoding: chunked\r\n");
	else if (len_claim != (size_t)-1)
		buf_printf(&req, "Content-Length: %zu\r\n", len_claim);
	else if (body != NULL)
		buf_printf(&req, "Content-Length: %zu\r\n", len);
	buf_puts(&req, "\r\n");
	send_all(fd, req.data, req.len);
	if (chunked) {
		/* chunked_total bytes of 'x' in 64 KiB chunks */
		memset(chunk, 'x', sizeof(chunk));
		for (size_t sent = 0; sent < chunked_total; sent += sizeof(chunk)) {
			char hdr[32];
			snprintf(hdr, sizeof(hdr), "%zx\r\n", sizeof(chunk));
			if (send_all(fd, hdr, strlen(hdr)) < 0 ||
			    send_all(fd, chunk, sizeof(chunk)) < 0 ||
			    send_all(fd, "\r\n", 2) < 0)
				break;
		}
		send_all(fd, "0\r\n\r\n", 5);
	} else if (body != NULL && len_claim == (size_t)-1) {
		send_all(fd, body, len);
	}
	buf_fini(&req);

	buf_init(&resp, 64 << 20);
	while ((got = recv(fd, chunk, sizeof(chunk), 0)) > 0)
		assert_int_equal(buf_append(&resp, chunk, (size_t)got), 0);
	close(fd);
	assert_true(resp.len > 12);
	assert_true(str_has_prefix(resp.data, "HTTP/1.1 "));
	out->status = (int)strtol(resp.data + 9, NULL, 10);
	sep = strstr(resp.data, "\r\n\r\n");
	assert_non_null(sep);
	out->json = json_loads(sep + 4, 0, NULL);
	out->raw = buf_steal(&resp);
	buf_fini(&resp);
	if (out->json == NULL)
		fail_msg("response is not JSON: %s", out->raw);
}

static void
http(const char *method, const char *path, const char *ctype, const char *body,
    struct reply *out)
{
	char auth[API_TOKEN_MAX + 16];

	snprintf(auth, sizeof(auth), "Bearer %s", F->token);
	http_raw(method, path, auth, ctype, body, body ? strlen(body) : 0,
	    (size_t)-1, false, 0, out);
}

static void
expect(const char *method, const char *path, const char *ctype,
    const char *body, int status, struct reply *out)
{
	struct reply local;
	struct reply *r = out ? out : &local;

	http(method, path, ctype, body, r);
	if (r->status != status)
		fail_msg("%s %s: status %d, expected %d: %s", method, path,
		    r->status, status, r->raw);
	if (out == NULL)
		reply_fini(r);
}

/* ---- fixture ---------------------------------------------------------- */

static void *
loop_main(void *arg)
{
	event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int
shutdown_fn(struct engine *e, struct store *st, void *arg)
{
	engine_shutdown(e);
	return 0;
}

static int
setup(void **state)
{
	char err[512], *text;

	F = xcalloc(1, sizeof(*F));
	str_copy(F->dir, "/tmp/sluice-test-lim-XXXXXX", sizeof(F->dir));
	assert_non_null(mkdtemp(F->dir));
	settings_defaults(&F->cfg);
	text = xasprintf("[server]\ndata_dir = %s\n[admin]\nlisten = 127.0.0.1:0\n",
	    F->dir);
	if (settings_load_string(&F->cfg, text, "test.conf", err, sizeof(err)) < 0)
		fail_msg("settings: %s", err);
	free(text);

	F->st = store_open(F->cfg.database, false, err, sizeof(err));
	if (F->st == NULL)
		fail_msg("store_open: %s", err);
	F->base = event_base_new();
	assert_non_null(F->base);
	F->engine = engine_new(&F->cfg, F->st, F->base);
	assert_non_null(F->engine);
	assert_int_equal(engine_start(F->engine), 0);
	assert_int_equal(pthread_create(&F->loop, NULL, loop_main, F->base), 0);

	F->api = api_new(&F->cfg, F->engine, err, sizeof(err));
	if (F->api == NULL)
		fail_msg("api_new: %s", err);
	F->port = api_port(F->api);
	assert_true(F->port > 0);
	assert_int_equal(api_token_read(F->cfg.admin_token_file, F->token,
	    sizeof(F->token), err, sizeof(err)), 0);
	*state = F;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	api_free(F->api);
	engine_call(F->engine, shutdown_fn, NULL);
	pthread_join(F->loop, NULL);
	engine_free(F->engine);
	store_free(F->st);
	event_base_free(F->base);
	settings_fini(&F->cfg);
	nftw(F->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(F);
	F = NULL;
	return 0;
}

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
