/*
 * block: the table of standing blocks of (source IP, destination MX IP)
 * pairs (DESIGN 5.2), and the counting of block replies that creates them.
 * Pure: no I/O, `now` passed in.
 *
 * A block reply on a pair counts a hit; `threshold` hits within `window`
 * create a block (threshold 1: the first reply does). The table answers
 * whether a pair is blocked, how many of the pairs between a set of source
 * IPs and a set of MX IPs are blocked (a domain is fully blocked for a
 * stream when all are), and which blocks are due for a probe.
 *
 * The table owns copies of every string; entries are value types.
 */
#ifndef SLUICE_POLICY_BLOCK_H
#define SLUICE_POLICY_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/timeutil.h"

#define BLOCK_THRESHOLD_MAX 100

struct block_entry {
	int64_t id;
	char src[64];
	char mx[64];
	msec_t next_probe;  /* 0 when permanent */
	bool permanent;
	bool probing;       /* a probe is under way */
};

struct block_coverage {
	size_t pairs;       /* pairs between the sources and the MX addresses */
	size_t blocked;     /* of them, blocked */
	msec_t next_probe;  /* earliest probe among those blocks (0: none due) */
};

struct block_table;

struct block_table *block_table_new(int threshold, int64_t window_ms);
void block_table_free(struct block_table *bt);
void block_table_configure(struct block_table *bt, int threshold, int64_t window_ms);

/* A block reply on (src, mx) at now: true when it reaches the threshold
 * within the window (the caller then records a block); the hits of that
 * pair are then forgotten. */
bool block_table_hit(struct block_table *bt, const char *src, const char *mx, msec_t now);

/* Add or replace the block of (src, mx). */
void block_table_put(struct block_table *bt, const struct block_entry *b);
/* Remove by id; false if there was none. */
bool block_table_remove(struct block_table *bt, int64_t id);
void block_table_clear(struct block_table *bt);
size_t block_table_count(const struct block_table *bt);

const struct block_entry *block_table_find(const struct block_table *bt, const char *src,
    const char *mx);
const struct block_entry *block_table_get(const struct block_table *bt, int64_t id);
bool block_table_is_blocked(const struct block_table *bt, const char *src, const char *mx);

/* Pairs between srcs (nsrc) and mxs (nmx): how many are blocked. */
void block_table_coverage(const struct block_table *bt, const char *const *srcs,
    size_t nsrc, const char *const *mxs, size_t nmx, struct block_coverage *c);
static inline bool
block_coverage_is_full(const struct block_coverage *c)
{
	return c->pairs > 0 && c->blocked == c->pairs;
}

/* Up to max blocks due for a probe at now (not permanent, not probing,
 * next_probe <= now), earliest first. */
size_t block_table_due(const struct block_table *bt, msec_t now,
    struct block_entry *out, size_t max);
/* The earliest next_probe of a block that is not permanent (0: none). */
msec_t block_table_next_due(const struct block_table *bt);
void block_table_set_probing(struct block_table *bt, int64_t id, bool probing);
void block_table_set_next_probe(struct block_table *bt, int64_t id, msec_t next_probe);

#endif
