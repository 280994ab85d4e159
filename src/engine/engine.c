/* Placeholder until the engine lands in this file. */
#include "engine/engine.h"

#include <stdlib.h>

#include "util/xalloc.h"

struct engine {
	const struct settings *cfg;
	struct store *st;
	struct event_base *base;
};

struct engine *
engine_new(const struct settings *cfg, struct store *st, struct event_base *base)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->cfg = cfg;
	e->st = st;
	e->base = base;
	return e;
}

void
engine_free(struct engine *e)
{
	free(e);
}

int
engine_start(struct engine *e)
{
	return 0;
}

void
engine_shutdown(struct engine *e)
{
	event_base_loopbreak(e->base);
}

int
engine_call(struct engine *e, engine_call_fn fn, void *arg)
{
	return fn(e, e->st, arg);
}

json_t *
engine_status_json(struct engine *e)
{
	return json_object();
}
