#include "policy/block.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dict.h"
#include "util/str.h"
#include "util/xalloc.h"

struct block_hits {
	msec_t times[BLOCK_THRESHOLD_MAX];
	int n;
};

struct block_table {
	int threshold;
	int64_t window_ms;
	struct dict *blocks; /* "src|mx" -> struct block_entry */
	struct dict *hits;   /* "src|mx" -> struct block_hits */
};

static void
block_key(char *out, size_t n, const char *src, const char *mx)
{
	snprintf(out, n, "%s|%s", src, mx);
}

struct block_table *
block_table_new(int threshold, int64_t window_ms)
{
	struct block_table *bt = xcalloc(1, sizeof(*bt));

	bt->blocks = dict_new();
	bt->hits = dict_new();
	block_table_configure(bt, threshold, window_ms);
	return bt;
}

static void
block_dict_free_values(struct dict *d)
{
	struct dict_iter it;
	const char *k;
	void *v;

	dict_iter_init(&it);
	while (dict_next(d, &it, &k, &v)) {
		dict_del(d, k);
		free(v);
	}
}

void
block_table_free(struct block_table *bt)
{
	if (bt == NULL)
		return;
	block_dict_free_values(bt->blocks);
	block_dict_free_values(bt->hits);
	dict_free(bt->blocks);
	dict_free(bt->hits);
	free(bt);
}

void
block_table_configure(struct block_table *bt, int threshold, int64_t window_ms)
{
	if (threshold < 1)
		threshold = 1;
	if (threshold > BLOCK_THRESHOLD_MAX)
		threshold = BLOCK_THRESHOLD_MAX;
	bt->threshold = threshold;
	bt->window_ms = window_ms;
}

bool
block_table_hit(struct block_table *bt, const char *src, const char *mx, msec_t now)
{
	char key[160];
	struct block_hits *h;
	int keep = 0;

	if (bt->threshold <= 1)
		return true;
	block_key(key, sizeof(key), src, mx);
	h = dict_get(bt->hits, key);
	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		dict_set(bt->hits, key, h);
	}
	/* forget hits older than the window */
	for (int i = 0; i < h->n; i++)
		if (now - h->times[i] < bt->window_ms)
			h->times[keep++] = h->times[i];
	h->n = keep;
	if (h->n < BLOCK_THRESHOLD_MAX)
		h->times[h->n++] = now;
	if (h->n >= bt->threshold) {
		free(dict_del(bt->hits, key));
		return true;
	}
	return false;
}

void
block_table_put(struct block_table *bt, const struct block_entry *b)
{
	char key[160];
	struct block_entry *e;

	block_key(key, sizeof(key), b->src, b->mx);
	e = dict_get(bt->blocks, key);
	if (e == NULL) {
		e = xmalloc(sizeof(*e));
		dict_set(bt->blocks, key, e);
	}
	*e = *b;
}

bool
block_table_remove(struct block_table *bt, int64_t id)
{
	struct dict_iter it;
	const char *k;
	void *v;

	dict_iter_init(&it);
	while (dict_next(bt->blocks, &it, &k, &v)) {
		if (((struct block_entry *)v)->id == id) {
			dict_del(bt->blocks, k);
			free(v);
			return true;
		}
	}
	return false;
}

void
block_table_clear(struct block_table *bt)
{
	block_dict_free_values(bt->blocks);
}

size_t
block_table_count(const struct block_table *bt)
{
	return dict_count(bt->blocks);
}

const struct block_entry *
block_table_find(const struct block_table *bt, const char *src, const char *mx)
{
	char key[160];

	block_key(key, sizeof(key), src, mx);
	return dict_get(bt->blocks, key);
}

const struct block_entry *
block_table_get(const struct block_table *bt, int64_t id)
{
	struct dict_iter it;
	const char *k;
	void *v;

	dict_iter_init(&it);
	while (dict_next(bt->blocks, &it, &k, &v))
		if (((struct block_entry *)v)->id == id)
			return v;
	return NULL;
}

bool
block_table_is_blocked(const struct block_table *bt, const char *src, const char *mx)
{
	return block_table_find(bt, src, mx) != NULL;
}

void
block_table_coverage(const struct block_table *bt, const char *const *srcs,
    size_t nsrc, const char *const *mxs, size_t nmx, struct block_coverage *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < nsrc; i++) {
		for (size_t j = 0; j < nmx; j++) {
			const struct block_entry *b = block_table_find(bt, srcs[i], mxs[j]);
			c->pairs++;
			if (b == NULL)
				continue;
			c->blocked++;
			if (!b->permanent && b->next_probe &&
			    (c->next_probe == 0 || b->next_probe < c->next_probe))
				c->next_probe = b->next_probe;
		}
	}
}

static int
block_entry_cmp(const void *a, const void *b)
{
	const struct block_entry *x = a, *y = b;

	if (x->next_probe != y->next_probe)
		return x->next_probe < y->next_probe ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

size_t
block_table_due(const struct block_table *bt, msec_t now, struct block_entry *out,
    size_t max)
{
	struct dict_iter it;
	const char *k;
	void *v;
	size_t n = 0;
	struct block_entry *all = NULL;
	size_t cap = 0;

	dict_iter_init(&it);
	while (dict_next(bt->blocks, &it, &k, &v)) {
		const struct block_entry *b = v;
		if (b->permanent || b->probing || b->next_probe > now)
			continue;
		all = xgrow(all, &cap, n + 1, sizeof(*all));
		all[n++] = *b;
	}
	if (n > 1)
		qsort(all, n, sizeof(*all), block_entry_cmp);
	if (n > max)
		n = max;
	if (n)
		memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

msec_t
block_table_next_due(const struct block_table *bt)
{
	struct dict_iter it;
	const char *k;
	void *v;
	msec_t next = 0;

	dict_iter_init(&it);
	while (dict_next(bt->blocks, &it, &k, &v)) {
		const struct block_entry *b = v;
		if (b->permanent || b->probing)
			continue;
		if (next == 0 || b->next_probe < next)
			next = b->next_probe;
	}
	return next;
}

static struct block_entry *
block_table_get_mut(struct block_table *bt, int64_t id)
{
	return (struct block_entry *)(uintptr_t)block_table_get(bt, id);
}

void
block_table_set_probing(struct block_table *bt, int64_t id, bool probing)
{
	struct block_entry *b = block_table_get_mut(bt, id);

	if (b)
		b->probing = probing;
}

void
block_table_set_next_probe(struct block_table *bt, int64_t id, msec_t next_probe)
{
	struct block_entry *b = block_table_get_mut(bt, id);

	if (b)
		b->next_probe = next_probe;
}
