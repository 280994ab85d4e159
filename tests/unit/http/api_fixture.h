/*
 * api_fixture: the fixture shared by the admin API tests (test_api.c,
 * test_api_blocks.c, test_api_limits.c): a temporary database, the engine
 * on its own thread, the API on a free port, and a small HTTP/1.1 client
 * written here (raw sockets, Connection: close). Each test is its own
 * executable, so the helpers are static. Define API_FIXTURE_DIR (a
 * mkdtemp template) before including to name the temporary directory.
 */
#ifndef SLUICE_TESTS_API_FIXTURE_H
#define SLUICE_TESTS_API_FIXTURE_H

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

#ifndef API_FIXTURE_DIR
#define API_FIXTURE_DIR "/tmp/sluice-test-api-XXXXXX"
#endif

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
	str_copy(F->dir, API_FIXTURE_DIR, sizeof(F->dir));
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

/* ---- helpers some of the tests use (unused in others) ----------------- */

/* A bound but not listening TCP socket: connecting to it is refused. */
static int __attribute__((unused))
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

/*
 * The command line against this API: runs $SLUICE_BINARY (set by CTest)
 * with a config file naming the test daemon. Skipped without the binary.
 */
static int __attribute__((unused))
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

#endif /* SLUICE_TESTS_API_FIXTURE_H */
