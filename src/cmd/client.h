/*
 * client: the CLI's HTTP client of the admin API (libcurl). It reads the
 * daemon's address from settings->admin_listen and the bearer token from
 * settings->admin_token_file, sends one request and parses the JSON reply.
 * Nothing is kept between calls.
 */
#ifndef SLUICE_CMD_CLIENT_H
#define SLUICE_CMD_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "engine/settings.h"

#define CLIENT_RESPONSE_MAX ((size_t)256 << 20) /* bytes of a reply */

enum {
	CLIENT_ECONNECT = -1, /* the daemon cannot be reached (or no token) */
	CLIENT_EHTTP = -2,    /* the daemon answered with an error status */
	CLIENT_EPROTO = -3,   /* the reply is not JSON, or too large */
};

/*
 * Send method path (e.g. "/api/v1/streams") with body (len bytes, may be
 * NULL) of content_type. On a 2xx reply returns 0 and *out holds the
 * reply object (caller decrefs). Otherwise returns a CLIENT_E* code with
 * the message in err: the server's {"error"} text for CLIENT_EHTTP (and
 * *out still holds the whole error object, or NULL), or what went wrong,
 * e.g. "cannot reach the daemon at 127.0.0.1:8025: Connection refused (is
 * `sluice serve` running?)". out may be NULL.
 */
int client_call(const struct settings *cfg, const char *method, const char *path,
    const char *body, size_t len, const char *content_type, json_t **out,
    char *err, size_t errlen);

/* URL-escape s for a path segment or query value (caller frees). */
char *client_escape(const char *s);

#endif
