#include "sim/sim_grey.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define SIM_GREY_BUCKETS 1024

struct sim_grey_entry {
	char *key;
	msec_t first;
	struct sim_grey_entry *next;  /* in the bucket */
	struct sim_grey_entry *newer; /* in the order of insertion */
};

struct sim_grey {
	msec_t delay;
	struct sim_grey_entry *b[SIM_GREY_BUCKETS];
	struct sim_grey_entry *oldest, *newest;
	size_t n;
};

static size_t
sim_grey_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % SIM_GREY_BUCKETS);
}

struct sim_grey *
sim_grey_new(msec_t delay_ms)
{
	struct sim_grey *g = xcalloc(1, sizeof(*g));

	g->delay = delay_ms;
	return g;
}

void
sim_grey_free(struct sim_grey *g)
{
	struct sim_grey_entry *e, *next;

	if (g == NULL)
		return;
	for (e = g->oldest; e != NULL; e = next) {
		next = e->newer;
		free(e->key);
		free(e);
	}
	free(g);
}

/* Drop the oldest entry (insertion order is first-seen order). */
static void
sim_grey_drop_oldest(struct sim_grey *g)
{
	struct sim_grey_entry *e = g->oldest, **pp;

	for (pp = &g->b[sim_grey_hash(e->key)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	g->oldest = e->newer;
	if (g->oldest == NULL)
		g->newest = NULL;
	g->n--;
	free(e->key);
	free(e);
}

bool
sim_grey_is_passed(struct sim_grey *g, const char *key, msec_t now)
{
	size_t h = sim_grey_hash(key);
	struct sim_grey_entry *e;

	for (e = g->b[h]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return now - e->first >= g->delay;
	for (int i = 0; i < SIM_GREY_EXPIRE_STEP && g->oldest != NULL &&
	    now - g->oldest->first > SIM_GREY_EXPIRE_FACTOR * g->delay; i++)
		sim_grey_drop_oldest(g);
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->first = now;
	e->next = g->b[h];
	g->b[h] = e;
	if (g->newest != NULL)
		g->newest->newer = e;
	else
		g->oldest = e;
	g->newest = e;
	g->n++;
	return false;
}

size_t
sim_grey_count(const struct sim_grey *g)
{
	return g->n;
}
