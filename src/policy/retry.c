/*
 * retry: normal and greylist retry schedules. See retry.h.
 */
#include "policy/retry.h"

#include "util/str.h"

/* Long enough that nobody waits for it; keeps the arithmetic in range. */
#define RETRY_WAIT_CAP_S (INT64_C(10) * 365 * 86400)

int64_t
retry_interval(const struct retry_policy *p, int attempts_done)
{
	size_t i;

	if (p == NULL || p->n == 0 || p->schedule_s == NULL)
		return 60;
	if (attempts_done < 1)
		i = 0;
	else if ((size_t)attempts_done > p->n)
		i = p->n - 1;
	else
		i = (size_t)attempts_done - 1;
	if (p->schedule_s[i] < 1)
		return 1;
	return p->schedule_s[i] > RETRY_WAIT_CAP_S ? RETRY_WAIT_CAP_S : p->schedule_s[i];
}

msec_t
retry_next(const struct retry_policy *p, int attempts_done, msec_t created,
    msec_t now, bool *expired)
{
	msec_t next = now + retry_interval(p, attempts_done) * 1000;

	if (expired)
		*expired = false;
	if (p != NULL && p->max_age_s > 0) {
		msec_t deadline = created + p->max_age_s * 1000;
		if (next > deadline) {
			if (expired)
				*expired = true;
			return deadline;
		}
	}
	return next;
}

int64_t
retry_greylist_interval(const struct retry_greylist *g, int n)
{
	int64_t i = RETRY_GREYLIST_DEFAULT_S, max = RETRY_WAIT_CAP_S, v;
	enum retry_greylist_fn fn = RETRY_GREY_SAME;

	if (g != NULL) {
		if (g->interval_s > 0)
			i = g->interval_s;
		if (g->max_s > 0 && g->max_s < max)
			max = g->max_s;
		fn = g->fn;
	}
	if (i > max)
		return max;
	if (n < 1)
		n = 1;
	switch (fn) {
	case RETRY_GREY_DOUBLE:
		v = i;
		for (int k = 1; k < n && v < max; k++)
			v *= 2;
		break;
	case RETRY_GREY_SQUARE:
		/* n is at most ~2^31, i*n*n may overflow: compare first. */
		if ((int64_t)n > max / i / n)
			v = max;
		else
			v = i * n * n;
		break;
	case RETRY_GREY_SAME:
	default:
		v = i;
		break;
	}
	return v > max ? max : v;
}

msec_t
retry_greylist(const struct retry_greylist *g, int n, msec_t now)
{
	return now + retry_greylist_interval(g, n) * 1000;
}

const char *
retry_greylist_fn_name(enum retry_greylist_fn fn)
{
	switch (fn) {
	case RETRY_GREY_SAME: return "same";
	case RETRY_GREY_DOUBLE: return "double";
	case RETRY_GREY_SQUARE: return "square";
	}
	return "same";
}

int
retry_greylist_fn_parse(const char *s)
{
	if (s == NULL)
		return -1;
	if (str_iequal(s, "same"))
		return RETRY_GREY_SAME;
	if (str_iequal(s, "double"))
		return RETRY_GREY_DOUBLE;
	if (str_iequal(s, "square"))
		return RETRY_GREY_SQUARE;
	return -1;
}
