#include "util/dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct dict_entry {
	struct dict_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct dict {
	struct dict_entry **buckets;
	size_t nbuckets;
	size_t count;
};

static uint64_t
dict_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct dict *
dict_new(void)
{
	struct dict *d = xcalloc(1, sizeof(*d));

	d->nbuckets = 16;
	d->buckets = xcalloc(d->nbuckets, sizeof(*d->buckets));
	return d;
}

void
dict_free(struct dict *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dict_entry *e = d->buckets[i], *n;
		for (; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(d->buckets);
	free(d);
}

static struct dict_entry **
dict_find(const struct dict *d, const char *key, uint64_t h)
{
	struct dict_entry **pp = &d->buckets[h & (d->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *
dict_get(const struct dict *d, const char *key)
{
	struct dict_entry **pp = dict_find(d, key, dict_hash(key));

	return *pp ? (*pp)->value : NULL;
}

static void
dict_grow(struct dict *d)
{
	size_t n = d->nbuckets * 2;
	struct dict_entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < d->nbuckets; i++) {
		struct dict_entry *e = d->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
}

void
dict_set(struct dict *d, const char *key, void *value)
{
	uint64_t h = dict_hash(key);
	struct dict_entry **pp = dict_find(d, key, h), *e;
	size_t len;

	if (*pp) {
		(*pp)->value = value;
		return;
	}
	len = strlen(key);
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++d->count > d->nbuckets)
		dict_grow(d);
}

void *
dict_del(struct dict *d, const char *key)
{
	struct dict_entry **pp = dict_find(d, key, dict_hash(key)), *e;
	void *v;

	if (*pp == NULL)
		return NULL;
	e = *pp;
	*pp = e->next;
	v = e->value;
	free(e);
	d->count--;
	return v;
}

size_t
dict_count(const struct dict *d)
{
	return d->count;
}

void
dict_iter_init(struct dict_iter *it)
{
	it->bucket = 0;
	it->next = NULL;
}

bool
dict_next(const struct dict *d, struct dict_iter *it, const char **key, void **value)
{
	struct dict_entry *e = it->next;

	while (e == NULL) {
		if (it->bucket >= d->nbuckets)
			return false;
		e = d->buckets[it->bucket++];
	}
	it->next = e->next;
	*key = e->key;
	*value = e->value;
	return true;
}
