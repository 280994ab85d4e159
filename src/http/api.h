/*
 * api: the admin HTTP API (docs/api.md). A libmicrohttpd daemon, with its
 * own small thread pool, listens on settings->admin_listen and answers JSON
 * under /api/v1/. Every request carries "Authorization: Bearer TOKEN"; the
 * only route without it is GET /healthz, which says nothing but "ok".
 *
 * Reads are served from the API's own read-only store handles (one per
 * server thread, taken from a small pool). Every change runs on the engine
 * thread through engine_call(), with the engine's read-write handle, so the
 * daemon stays the only writer of live state.
 *
 * Ownership: api_new() borrows cfg and the engine, which must outlive the
 * api; api_free() stops the server (waiting for requests in progress) and
 * closes the API's store handles.
 */
#ifndef SLUICE_HTTP_API_H
#define SLUICE_HTTP_API_H

#include <stddef.h>

#include "engine/engine.h"
#include "engine/settings.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

/* The largest request body accepted; a larger one is refused with 413. */
#define API_BODY_MAX ((size_t)64 << 20)
/* A token is at most this many bytes (the generated ones are 64 hex digits). */
#define API_TOKEN_MAX 256

struct api;

/*
 * Load (or create) the bearer token from cfg->admin_token_file, open the
 * read-only store handles on cfg->database and start listening on
 * cfg->admin_listen ("IP:PORT" or "[IPv6]:PORT"). NULL with a message in
 * err on failure.
 */
struct api *api_new(const struct settings *cfg, struct engine *e, char *err,
    size_t errlen);
void api_free(struct api *api);
/* The TCP port the server is bound to (useful when admin_listen says :0). */
int api_port(const struct api *api);

/*
 * Read the token from path into token (size n). If the file does not exist,
 * create it (mode 0600) holding 32 random bytes as 64 hex digits. Returns 0,
 * or -1 with a message in err.
 */
int api_token_load_or_create(const char *path, char *token, size_t n, char *err,
    size_t errlen);
/* The same without creating: a missing file is an error. */
int api_token_read(const char *path, char *token, size_t n, char *err,
    size_t errlen);

/*
 * Parse "IP:PORT", "[IPv6]:PORT" or "IP" (port 0) into host (size n) and
 * port. Returns 0 or -1.
 */
int api_parse_listen(const char *listen, char *host, size_t n, int *port);

#endif
