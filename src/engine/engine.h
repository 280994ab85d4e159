/*
 * engine: the delivery engine. One libevent loop, on one thread, owns the
 * read-write store handle and every SMTP session; pump, route, sched,
 * verdict and the outcome batcher are its parts (DESIGN 1).
 *
 * Other threads (the HTTP API) never touch engine state directly: they run
 * a function on the engine thread through engine_call(), which waits for it.
 */
#ifndef SLUICE_ENGINE_ENGINE_H
#define SLUICE_ENGINE_ENGINE_H

#include <event2/event.h>

#include "engine/settings.h"
#include "store/store.h"

struct engine;

struct engine *engine_new(const struct settings *cfg, struct store *st,
    struct event_base *base);
void engine_free(struct engine *e);
/* Start pulling work; the caller then runs the event base. */
int engine_start(struct engine *e);
/* Begin a clean shutdown: stop pulling, let sessions finish within a bound,
 * commit, then break the loop. Engine thread only. */
void engine_shutdown(struct engine *e);
/* Did the engine stop because the store failed (serve then exits 1)? */
bool engine_failed(const struct engine *e);

/*
 * Run fn(e, st, arg) on the engine thread, with the engine's read-write
 * store handle, and wait for it to return; returns what fn returned.
 * Callable from any thread except the engine thread. After fn, the engine
 * reloads what a change may have touched (mailings, streams, routes,
 * blocks, limits and macros). Once the loop has ended it fails with
 * -ESHUTDOWN without calling fn.
 */
typedef int (*engine_call_fn)(struct engine *e, struct store *st, void *arg);
int engine_call(struct engine *e, engine_call_fn fn, void *arg);
/* The same for a function that only reads (the engine's live views): no
 * reload follows. */
int engine_read(struct engine *e, engine_call_fn fn, void *arg);

/* Live figures for the API (engine thread or under engine_call). */
json_t *engine_status_json(struct engine *e);

/*
 * The engine's live view, for the API (call under engine_call):
 *
 * engine_domains_json: domains with recipients waiting, per stream:
 *   {"domains":[{"domain","stream","waiting":n,"status":"sending"|
 *   "deferred"|"partly_blocked"|"fully_blocked","pairs":n,
 *   "pairs_blocked":k,"mx":[ip..],"next_probe":ms|0,"limit":"..."|null}]}
 *
 * engine_mailing_json: what the engine knows of a mailing beyond the store:
 *   {"waiting_on_blocks":bool,"blocked_domains":[..],"in_memory":n}
 *
 * engine_explain_json: why a recipient waits, in words and facts:
 *   {"reason":"domain example.com fully blocked for stream bulk: 6 of 6
 *   pairs blocked, next probe in 41 min","blocked_pairs":k,"pairs":n,
 *   "limit":{..}|null} — or {} when the engine has nothing to add.
 */
json_t *engine_domains_json(struct engine *e);
json_t *engine_mailing_json(struct engine *e, int64_t mailing_id);
json_t *engine_explain_json(struct engine *e, int64_t mailing_id, const char *email,
    const char *domain);

#endif
