/*
 * dict: a string-keyed hash table of void pointers (chained, power-of-two
 * buckets, grows at load factor 1). Keys are copied; values are owned by the
 * caller. Iteration order is unspecified; removing the current entry during
 * dict_next iteration is allowed.
 */
#ifndef SLUICE_UTIL_DICT_H
#define SLUICE_UTIL_DICT_H

#include <stdbool.h>
#include <stddef.h>

struct dict;

struct dict_iter {
	size_t bucket;
	void *next;
};

struct dict *dict_new(void);
void dict_free(struct dict *d);
void *dict_get(const struct dict *d, const char *key);
/* Set key to value, replacing any value (returned through *old if non-NULL). */
void dict_set(struct dict *d, const char *key, void *value);
/* Remove key; returns its value or NULL. */
void *dict_del(struct dict *d, const char *key);
size_t dict_count(const struct dict *d);
void dict_iter_init(struct dict_iter *it);
/* Next entry; false at the end. */
bool dict_next(const struct dict *d, struct dict_iter *it, const char **key, void **value);

#endif
