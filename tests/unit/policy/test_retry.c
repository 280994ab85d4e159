/* Tests for retry: normal schedule, expiry, greylist strategies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/retry.h"

static const int64_t sched[] = { 300, 600, 1200, 2400, 3600, 7200, 14400 };

struct next_case {
	int attempts;
	msec_t created, now;
	msec_t want;
	bool expired;
};

#define H (3600 * 1000LL)
#define T0 (1700000000000LL)

static const struct next_case next_cases[] = {
	{ 1, T0, T0, T0 + 300000, false },           /* first failure: 5m */
	{ 2, T0, T0 + 1000, T0 + 1000 + 600000, false },
	{ 7, T0, T0 + 10 * H, T0 + 14 * H, false },  /* last interval */
	{ 8, T0, T0 + 20 * H, T0 + 24 * H, false },  /* last repeats */
	{ 50, T0, T0 + 40 * H, T0 + 44 * H, false },
	{ 0, T0, T0, T0 + 300000, false },           /* clamp low */
	{ -3, T0, T0, T0 + 300000, false },
	/* max_age 5d = 120h: next at 118h + 4h = 122h > 120h: expired */
	{ 30, T0, T0 + 118 * H, T0 + 120 * H, true },
	{ 30, T0, T0 + 116 * H, T0 + 120 * H, false }, /* exactly at the edge */
	{ 30, T0, T0 + 200 * H, T0 + 120 * H, true },
};

static void
test_next(void **state)
{
	struct retry_policy p = { sched, 7, 5 * 86400 };

	(void)state;
	for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
		const struct next_case *c = &next_cases[i];
		bool expired = !c->expired;
		msec_t got = retry_next(&p, c->attempts, c->created, c->now, &expired);
		if (got != c->want || expired != c->expired)
			fail_msg("case %zu: got %lld/%d want %lld/%d", i,
			    (long long)(got - T0), expired, (long long)(c->want - T0),
			    c->expired);
	}
}

static void
test_interval_edges(void **state)
{
	struct retry_policy one = { sched, 1, 0 };
	struct retry_policy none = { NULL, 0, 0 };
	bool expired = true;

	(void)state;
	assert_int_equal(retry_interval(&one, 1), 300);
	assert_int_equal(retry_interval(&one, 99), 300);
	assert_int_equal(retry_interval(&none, 3), 60);
	assert_int_equal(retry_interval(NULL, 3), 60);
	/* max_age 0: never expires */
	assert_int_equal(retry_next(&one, 1000, 0, 1000 * H, &expired), 1000 * H + 300000);
	assert_false(expired);
	assert_int_equal(retry_next(&one, 1, 0, 0, NULL), 300000);
}

struct grey_case {
	int64_t interval, max;
	enum retry_greylist_fn fn;
	int n;
	int64_t want;
};

static const struct grey_case grey_cases[] = {
	{ 0, 0, RETRY_GREY_SAME, 1, 240 },       /* blank interval = 240 */
	{ 0, 0, RETRY_GREY_SAME, 9, 240 },
	{ 300, 0, RETRY_GREY_SAME, 3, 300 },
	{ 240, 0, RETRY_GREY_DOUBLE, 1, 240 },
	{ 240, 0, RETRY_GREY_DOUBLE, 2, 480 },
	{ 240, 0, RETRY_GREY_DOUBLE, 4, 1920 },
	{ 240, 1000, RETRY_GREY_DOUBLE, 4, 1000 }, /* capped */
	{ 240, 1000, RETRY_GREY_DOUBLE, 200, 1000 },
	{ 60, 0, RETRY_GREY_SQUARE, 1, 60 },
	{ 60, 0, RETRY_GREY_SQUARE, 3, 540 },
	{ 60, 3000, RETRY_GREY_SQUARE, 10, 3000 },
	{ 60, 3000, RETRY_GREY_SQUARE, 7, 2940 },
	{ 60, 0, RETRY_GREY_SQUARE, 2000000000, 10LL * 365 * 86400 },
	{ 500, 100, RETRY_GREY_SAME, 1, 100 },    /* max below interval */
	{ 240, 0, RETRY_GREY_DOUBLE, 0, 240 },    /* n clamps to 1 */
};

static void
test_greylist(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(grey_cases) / sizeof(grey_cases[0]); i++) {
		const struct grey_case *c = &grey_cases[i];
		struct retry_greylist g = { c->interval, c->fn, c->max };
		int64_t got = retry_greylist_interval(&g, c->n);
		if (got != c->want)
			fail_msg("case %zu: got %lld want %lld", i, (long long)got,
			    (long long)c->want);
		assert_int_equal(retry_greylist(&g, c->n, T0), T0 + c->want * 1000);
	}
	assert_int_equal(retry_greylist_interval(NULL, 5), 240);
}

static void
test_greylist_names(void **state)
{
	(void)state;
	assert_int_equal(retry_greylist_fn_parse("same"), RETRY_GREY_SAME);
	assert_int_equal(retry_greylist_fn_parse("DOUBLE"), RETRY_GREY_DOUBLE);
	assert_int_equal(retry_greylist_fn_parse("square"), RETRY_GREY_SQUARE);
	assert_int_equal(retry_greylist_fn_parse("cube"), -1);
	assert_int_equal(retry_greylist_fn_parse(NULL), -1);
	assert_string_equal(retry_greylist_fn_name(RETRY_GREY_SQUARE), "square");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_interval_edges),
		cmocka_unit_test(test_greylist),
		cmocka_unit_test(test_greylist_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
