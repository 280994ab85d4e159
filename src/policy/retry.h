/*
 * retry: when to try a deferred recipient again. Pure functions: no I/O,
 * `now` is passed in, times are msec_t. The schedule array is owned by the
 * caller (usually struct settings) and must outlive the policy.
 *
 * Normal retries (DESIGN 4, settings delivery.retry_schedule): the n-th
 * retry, after the n-th failed attempt, waits schedule[n-1]; past the end
 * of the schedule the last interval repeats. A recipient whose next attempt
 * would fall after created + max_age has expired instead.
 *
 * Greylist retries (DESIGN 5.3): the n-th greylist retry waits
 *   same    interval
 *   double  interval * 2^(n-1)
 *   square  interval * n^2
 * and never more than max (max <= 0: no cap).
 */
#ifndef SLUICE_POLICY_RETRY_H
#define SLUICE_POLICY_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/timeutil.h"

#define RETRY_GREYLIST_DEFAULT_S 240

struct retry_policy {
	const int64_t *schedule_s; /* n >= 1 intervals, seconds */
	size_t n;
	int64_t max_age_s;         /* <= 0: never expires */
};

enum retry_greylist_fn { RETRY_GREY_SAME, RETRY_GREY_DOUBLE, RETRY_GREY_SQUARE };

struct retry_greylist {
	int64_t interval_s;        /* <= 0 means RETRY_GREYLIST_DEFAULT_S */
	enum retry_greylist_fn fn;
	int64_t max_s;             /* <= 0: no cap */
};

/*
 * The wait before retry number `attempts_done` (>= 1), in seconds. With
 * attempts_done < 1 or an empty schedule the first interval (or 60 s).
 */
int64_t retry_interval(const struct retry_policy *p, int attempts_done);
/*
 * The time of the next attempt: now + retry_interval(). If that is after
 * created + max_age, *expired is set to true and created + max_age is
 * returned; otherwise *expired is false. expired may be NULL.
 */
msec_t retry_next(const struct retry_policy *p, int attempts_done, msec_t created,
    msec_t now, bool *expired);

/* The wait before greylist retry number n (n >= 1), seconds. */
int64_t retry_greylist_interval(const struct retry_greylist *g, int n);
/* now + retry_greylist_interval(g, n), in ms. */
msec_t retry_greylist(const struct retry_greylist *g, int n, msec_t now);

const char *retry_greylist_fn_name(enum retry_greylist_fn fn);
/* "same" | "double" | "square" (case-insensitive); -1 if unknown. */
int retry_greylist_fn_parse(const char *s);

#endif
