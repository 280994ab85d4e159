/*
 * api_internal: what the admin API's files share (api.c runs the server,
 * api_routes.c answers the routes, api_input.c checks messages). Not for
 * use outside src/http/.
 *
 * A request (struct api_req) lives from the first call of the access
 * handler to MHD's completion callback. A route handler reads r->seg,
 * r->body and query arguments, and leaves its answer in r->status and
 * r->resp (owned by the request), using api_reply() or api_fail().
 */
#ifndef SLUICE_HTTP_API_INTERNAL_H
#define SLUICE_HTTP_API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/api.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define API_SEG_MAX 6     /* path segments after /api/v1/ */
#define API_PATH_MAX 1024 /* longest path accepted */
#define API_ERR_MAX 512   /* longest error message */

struct api_req {
	struct api *api;
	struct engine *engine;
	struct MHD_Connection *conn;
	char method[16];
	char path[API_PATH_MAX];
	char *seg[API_SEG_MAX]; /* point into segbuf */
	size_t nseg;
	char segbuf[API_PATH_MAX];
	struct buf body;
	bool body_too_big;
	bool responded;
	struct store *rd;       /* a read-only handle, held while handling */
	msec_t started;         /* monotonic */
	int status;
	json_t *resp;
};

typedef void (*api_handler)(struct api_req *r);

/* Route the request (r->seg already split) and run its handler. */
void api_route(struct api_req *r);

/* Set the answer: status and a JSON object (reference stolen). */
void api_reply(struct api_req *r, int status, json_t *obj);
/* Set an error answer {"error": message}. */
void api_fail(struct api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map a STORE_E* code to a status and answer with msg. */
void api_fail_store(struct api_req *r, int rc, const char *msg);
/* The HTTP status for a STORE_E* code. */
int api_store_status(int rc);
/* A query-string argument, or NULL. */
const char *api_query(const struct api_req *r, const char *name);

/* Check that a message can be used as a mailing's template: 0 or -1 + err. */
int api_message_check(const char *msg, size_t len, char *err, size_t errlen);

/* The settings the server was started with. */
const struct settings *api_settings(const struct api *api);

/* api_routes.c: input checks and engine-call helpers the route files share. */
/* Parse the body as a JSON object; answers 400 and returns NULL if not. */
json_t *api_body_object(struct api_req *r);
/* A positive id in s into *id: 0, or -1 with a 400 answer naming what
 * ("mailing", "block", "limit") the id was for. */
int api_id_arg(struct api_req *r, const char *s, const char *what,
    int64_t *id);
/* An IPv4 or IPv6 address literal. */
bool api_is_ip(const char *s);
/* A domain name (lower or upper case), or "*". */
bool api_is_domain(const char *s);

/* What every change carries back from the engine thread. */
struct api_change {
	char err[API_ERR_MAX];
};

/* For an engine_call function: if rc < 0, keep the store's error text in
 * c->err. Returns rc. */
int api_change_result(struct api_change *c, struct store *st, int rc);

/* api_blocks.c: blocks and the engine's live views (docs/api.md). */
void api_get_blocks(struct api_req *r);
void api_get_block(struct api_req *r);
void api_post_block_release(struct api_req *r);
void api_post_blocks_release(struct api_req *r);
void api_post_block_permanent(struct api_req *r);
void api_get_report_domains(struct api_req *r);
/* engine_mailing_json / engine_explain_json through engine_call (new
 * references), NULL if the engine could not answer. */
json_t *api_engine_mailing(struct api_req *r, int64_t mailing_id);
json_t *api_engine_explain(struct api_req *r, int64_t mailing_id,
    const char *email, const char *domain);

/* api_limits.c: domain connection limits and domain macros (docs/api.md). */
void api_get_limits(struct api_req *r);
void api_get_limit(struct api_req *r);
void api_post_limit(struct api_req *r);
void api_put_limit(struct api_req *r);
void api_delete_limit(struct api_req *r);
void api_get_macros(struct api_req *r);
void api_put_macro(struct api_req *r);
void api_delete_macro(struct api_req *r);

#endif
