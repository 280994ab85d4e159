/*
 * test_api: the admin HTTP API end to end on loopback: a temporary
 * database, the engine on its own thread, the API on a free port, and a
 * small HTTP/1.1 client written here (raw sockets, Connection: close).
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
	str_copy(F->dir, "/tmp/sluice-test-api-XXXXXX", sizeof(F->dir));
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

/* A bound but not listening TCP socket: connecting to it is refused. */
static int
refusing_port(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
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

/*
 * The command line against this API: runs $SLUICE_BINARY (set by CTest)
 * with a config file naming the test daemon. Skipped without the binary.
 */
static int
run_cli(const char *args, char *out, size_t outlen, char *err, size_t errlen)
{
	char cmd[2048], errfile[128];
	const char *bin = getenv("SLUICE_BINARY");
	FILE *p, *f;
	size_t n;
	int status;

	snprintf(errfile, sizeof(errfile), "%s/cli.err", F->dir);
	snprintf(cmd, sizeof(cmd), "SLUICE_CONFIG=%s/cli.conf %s %s 2>%s </dev/null",
	    F->dir, bin, args, errfile);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	status = pclose(p);
	f = fopen(errfile, "r");
	assert_non_null(f);
	n = fread(err, 1, errlen - 1, f);
	err[n] = '\0';
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_cli(void **state)
{
	const char *bin = getenv("SLUICE_BINARY");
	char path[256], out[16384], err[4096];
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
			    str_has_prefix(at, "@BAD") ? "bad.csv" : "msg.eml";
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
		cmocka_unit_test_setup_teardown(test_mailing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_unknown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
	};

	log_set_level(LOG_WARN);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
