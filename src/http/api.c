/*
 * api.c: the admin HTTP server: listening, authentication, request bodies,
 * the read-only store pool, JSON responses and the request log. The routes
 * themselves are in api_routes.c.
 */
#include "http/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/api_internal.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define API_THREADS 4 /* MHD worker threads, and read-only store handles */
#define API_CONN_MAX 256
#define API_CONN_TIMEOUT_S 120

struct api {
	const struct settings *cfg;
	struct engine *engine;
	struct MHD_Daemon *daemon;
	char token[API_TOKEN_MAX + 1];
	int port;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct store *readers[API_THREADS];
	bool reader_busy[API_THREADS];
};

/* ---- token ------------------------------------------------------------ */

static bool
api_is_token_char(char c)
{
	return c > ' ' && c < 127;
}

int
api_token_read(const char *path, char *token, size_t n, char *err, size_t errlen)
{
	char raw[API_TOKEN_MAX + 2], *t;
	ssize_t got;
	size_t len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the admin token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	got = read(fd, raw, sizeof(raw) - 1);
	close(fd);
	if (got < 0) {
		snprintf(err, errlen, "cannot read the admin token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	raw[got] = '\0';
	t = str_trim(raw);
	len = strlen(t);
	if (len == 0 || len > API_TOKEN_MAX || len >= n) {
		snprintf(err, errlen, "%s: the admin token must be 1 to %d characters",
		    path, API_TOKEN_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (!api_is_token_char(t[i])) {
			snprintf(err, errlen, "%s: the admin token has a space or "
			    "control character", path);
			return -1;
		}
	}
	str_copy(token, t, n);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

static int
api_token_create(const char *path, char *token, size_t n, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[32];
	char text[sizeof(rnd) * 2 + 2];
	size_t off = 0;
	ssize_t w;
	int fd;

	if (n < sizeof(rnd) * 2 + 1) {
		snprintf(err, errlen, "token buffer too small");
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		text[2 * i] = hex[rnd[i] >> 4];
		text[2 * i + 1] = hex[rnd[i] & 15];
	}
	text[sizeof(rnd) * 2] = '\n';
	text[sizeof(rnd) * 2 + 1] = '\0';

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) /* another process won the race: use theirs */
			return api_token_read(path, token, n, err, errlen);
		snprintf(err, errlen, "cannot create the admin token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (off < sizeof(rnd) * 2 + 1) {
		w = write(fd, text + off, sizeof(rnd) * 2 + 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write the admin token %s: %s", path,
			    strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		snprintf(err, errlen, "cannot write the admin token %s: %s", path,
		    strerror(errno));
		unlink(path);
		return -1;
	}
	text[sizeof(rnd) * 2] = '\0';
	str_copy(token, text, n);
	log_info("http", "event=token_created file=%s", path);
	return 0;
}

int
api_token_load_or_create(const char *path, char *token, size_t n, char *err,
    size_t errlen)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return api_token_create(path, token, n, err, errlen);
	return api_token_read(path, token, n, err, errlen);
}

/* Compare in time that depends only on the length of want. */
static bool
api_is_token_equal(const char *want, const char *got)
{
	size_t wl = strlen(want), gl = strlen(got);
	unsigned char d = (unsigned char)(wl != gl);

	for (size_t i = 0; i < wl; i++)
		d |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
	return d == 0;
}

static bool
api_is_authorized(const struct api *api, struct MHD_Connection *conn)
{
	const char *h;

	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return api_is_token_equal(api->token, h);
}

/* ---- listen address --------------------------------------------------- */

int
api_parse_listen(const char *listen, char *host, size_t n, int *port)
{
	const char *colon, *end;
	int64_t p = 0;
	size_t hl;

	if (listen == NULL || *listen == '\0')
		return -1;
	if (listen[0] == '[') {
		end = strchr(listen, ']');
		if (end == NULL)
			return -1;
		hl = (size_t)(end - listen - 1);
		if (hl == 0 || hl >= n)
			return -1;
		memcpy(host, listen + 1, hl);
		host[hl] = '\0';
		if (end[1] == '\0') {
			*port = 0;
			return 0;
		}
		if (end[1] != ':')
			return -1;
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon != NULL && strchr(listen, ':') != colon) {
			/* bare IPv6 address, no port */
			if (str_copy(host, listen, n) >= n)
				return -1;
			*port = 0;
			return 0;
		}
		hl = colon ? (size_t)(colon - listen) : strlen(listen);
		if (hl == 0 || hl >= n)
			return -1;
		memcpy(host, listen, hl);
		host[hl] = '\0';
		if (colon == NULL) {
			*port = 0;
			return 0;
		}
	}
	if (str_to_i64(colon + 1, 0, 65535, &p) < 0)
		return -1;
	*port = (int)p;
	return 0;
}

/* ---- store pool ------------------------------------------------------- */

static struct store *
api_reader_take(struct api *api)
{
	struct store *st = NULL;

	pthread_mutex_lock(&api->pool_lock);
	for (;;) {
		for (size_t i = 0; i < API_THREADS; i++) {
			if (!api->reader_busy[i]) {
				api->reader_busy[i] = true;
				st = api->readers[i];
				break;
			}
		}
		if (st != NULL)
			break;
		pthread_cond_wait(&api->pool_cond, &api->pool_lock);
	}
	pthread_mutex_unlock(&api->pool_lock);
	return st;
}

static void
api_reader_give(struct api *api, struct store *st)
{
	pthread_mutex_lock(&api->pool_lock);
	for (size_t i = 0; i < API_THREADS; i++) {
		if (api->readers[i] == st)
			api->reader_busy[i] = false;
	}
	pthread_cond_signal(&api->pool_cond);
	pthread_mutex_unlock(&api->pool_lock);
}

/* ---- responses -------------------------------------------------------- */

void
api_reply(struct api_req *r, int status, json_t *obj)
{
	json_decref(r->resp);
	r->status = status;
	r->resp = obj ? obj : json_object();
}

void
api_fail(struct api_req *r, int status, const char *fmt, ...)
{
	char msg[API_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_reply(r, status, json_pack("{s:s}", "error", msg));
}

int
api_store_status(int rc)
{
	switch (rc) {
	case STORE_ENOTFOUND: return MHD_HTTP_NOT_FOUND;
	case STORE_EEXISTS: return MHD_HTTP_CONFLICT;
	case STORE_EBUSY: return MHD_HTTP_CONFLICT;
	case STORE_EINVAL: return MHD_HTTP_BAD_REQUEST;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

void
api_fail_store(struct api_req *r, int rc, const char *msg)
{
	api_fail(r, api_store_status(rc), "%s",
	    msg && *msg ? msg : "database error");
}

const char *
api_query(const struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result
api_send(struct api_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text;
	size_t len;

	if (r->resp == NULL)
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "no response");
	text = json_dumps(r->resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		api_fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot encode JSON");
		text = json_dumps(r->resp, 0);
		if (text == NULL)
			return MHD_NO;
	}
	len = strlen(text);
	/* one trailing newline so `curl` output ends cleanly */
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (r->status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    "Bearer realm=\"sluice\"");
	ret = MHD_queue_response(r->conn, (unsigned int)r->status, resp);
	MHD_destroy_response(resp);
	r->responded = true;
	return ret;
}

/* ---- requests --------------------------------------------------------- */

/* Split the part of the path after /api/v1/ into r->seg. -1 if too many. */
static int
api_split_path(struct api_req *r, const char *rest)
{
	char *p;

	str_copy(r->segbuf, rest, sizeof(r->segbuf));
	r->nseg = 0;
	p = r->segbuf;
	while (*p) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (*p != '\0') {
			if (r->nseg == API_SEG_MAX)
				return -1;
			r->seg[r->nseg++] = p;
		}
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 0;
}

static void
api_handle(struct api_req *r)
{
	if (strcmp(r->path, "/healthz") == 0) {
		if (strcmp(r->method, "GET") != 0)
			api_fail(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
		else
			api_reply(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (!str_has_prefix(r->path, "/api/v1/") &&
	    strcmp(r->path, "/api/v1") != 0) {
		api_fail(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", r->path);
		return;
	}
	if (api_split_path(r, r->path + strlen("/api/v1")) < 0) {
		api_fail(r, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", r->path);
		return;
	}
	r->rd = api_reader_take(r->api);
	api_route(r);
	api_reader_give(r->api, r->rd);
	r->rd = NULL;
}

static bool
api_is_body_too_big(struct MHD_Connection *conn)
{
	const char *cl;
	int64_t n;

	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl == NULL)
		return false;
	if (str_to_i64(cl, 0, INT64_MAX, &n) < 0)
		return false; /* MHD itself rejects a malformed length */
	return (uint64_t)n > API_BODY_MAX;
}

static enum MHD_Result
api_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct api *api = cls;
	struct api_req *r = *con_cls;

	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->api = api;
		r->engine = api->engine;
		r->conn = conn;
		r->started = time_mono_ms();
		str_copy(r->method, method, sizeof(r->method));
		buf_init(&r->body, API_BODY_MAX);
		*con_cls = r;
		if (strlen(url) >= sizeof(r->path)) {
			str_copy(r->path, "(too long)", sizeof(r->path));
			api_fail(r, MHD_HTTP_URI_TOO_LONG, "path longer than %d bytes",
			    API_PATH_MAX - 1);
			return api_send(r);
		}
		str_copy(r->path, url, sizeof(r->path));
		if (strcmp(url, "/healthz") != 0 && !api_is_authorized(api, conn)) {
			api_fail(r, MHD_HTTP_UNAUTHORIZED,
			    "missing or wrong bearer token (see the admin token file)");
			return api_send(r);
		}
		if (api_is_body_too_big(conn)) {
			api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE,
			    "request body larger than %zu bytes", API_BODY_MAX);
			return api_send(r);
		}
		return MHD_YES;
	}
	if (r->responded) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!r->body_too_big &&
		    buf_append(&r->body, upload_data, *upload_data_size) < 0) {
			r->body_too_big = true;
			buf_fini(&r->body);
			buf_init(&r->body, 0);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->body_too_big)
		api_fail(r, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body larger than %zu bytes", API_BODY_MAX);
	else
		api_handle(r);
	return api_send(r);
}

static void
api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct api_req *r = *con_cls;
	char qpath[API_PATH_MAX + 8];

	if (r == NULL)
		return;
	log_info("http", "method=%s path=%s status=%d ms=%lld%s", r->method,
	    log_quote(qpath, sizeof(qpath), r->path), r->status,
	    (long long)(time_mono_ms() - r->started),
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=yes");
	buf_fini(&r->body);
	json_decref(r->resp);
	free(r);
	*con_cls = NULL;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void
api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512], q[540];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	log_warn("http", "event=mhd msg=%s", log_quote(q, sizeof(q), msg));
}
#pragma GCC diagnostic pop

/* ---- life cycle ------------------------------------------------------- */

struct api *
api_new(const struct settings *cfg, struct engine *e, char *err, size_t errlen)
{
	struct api *api;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	char host[128];
	unsigned int flags;
	int port;

	if (api_parse_listen(cfg->admin_listen, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "admin listen address \"%s\" is not IP:PORT",
		    cfg->admin_listen ? cfg->admin_listen : "");
		return NULL;
	}
	memset(&ss, 0, sizeof(ss));
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (strchr(host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			goto bad_host;
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad_host;
	}

	api = xcalloc(1, sizeof(*api));
	api->cfg = cfg;
	api->engine = e;
	pthread_mutex_init(&api->pool_lock, NULL);
	pthread_cond_init(&api->pool_cond, NULL);
	if (api_token_load_or_create(cfg->admin_token_file, api->token,
	    sizeof(api->token), err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < API_THREADS; i++) {
		char serr[256];
		api->readers[i] = store_open(cfg->database, true, serr, sizeof(serr));
		if (api->readers[i] == NULL) {
			snprintf(err, errlen, "admin API: %s", serr);
			goto fail;
		}
	}
	api->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
	    api_access, api,
	    MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, api,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)API_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_CONN_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONN_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, api_completed, api,
	    MHD_OPTION_END);
	if (api->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s for the admin API "
		    "(address in use or not local?)", cfg->admin_listen);
		goto fail;
	}
	info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = info ? (int)info->port : port;
	log_info("http", "event=listening addr=%s port=%d", host, api->port);
	return api;

fail:
	api_free(api);
	return NULL;
bad_host:
	snprintf(err, errlen, "admin listen address \"%s\": \"%s\" is not an IP "
	    "address", cfg->admin_listen, host);
	return NULL;
}

void
api_free(struct api *api)
{
	if (api == NULL)
		return;
	if (api->daemon != NULL)
		MHD_stop_daemon(api->daemon);
	for (size_t i = 0; i < API_THREADS; i++)
		store_free(api->readers[i]);
	pthread_mutex_destroy(&api->pool_lock);
	pthread_cond_destroy(&api->pool_cond);
	explicit_bzero(api->token, sizeof(api->token));
	free(api);
}

int
api_port(const struct api *api)
{
	return api->port;
}

const struct settings *
api_settings(const struct api *api)
{
	return api->cfg;
}
