/* Unit tests for src/sim/sim_grey: the greylist table and its expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_grey.h"

static void
test_pass_and_expire(void **state)
{
	/* delay 100 ms: entries are dropped once more than 1000 ms old */
	static const struct {
		const char *key;
		msec_t now;
		bool passed;
		size_t count; /* after the call */
	} steps[] = {
		{ "a", 0, false, 1 },
		{ "a", 50, false, 1 },
		{ "a", 100, true, 1 },
		{ "b", 500, false, 2 },
		{ "a", 700, true, 2 },      /* a lookup drops nothing */
		{ "c", 1000, false, 3 },    /* a is exactly 1000 ms old: kept */
		{ "d", 1001, false, 3 },    /* a dropped */
		{ "a", 1002, false, 4 },    /* so greylisted anew */
		{ "a", 1102, true, 4 },
		{ "e", 3000, false, 1 },    /* b c d a dropped */
	};
	struct sim_grey *g = sim_grey_new(100);

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		bool passed = sim_grey_is_passed(g, steps[i].key, steps[i].now);

		if (passed != steps[i].passed ||
		    sim_grey_count(g) != steps[i].count)
			fail_msg("step %zu: passed %d count %zu, want %d %zu", i,
			    passed, sim_grey_count(g), steps[i].passed,
			    steps[i].count);
	}
	sim_grey_free(g);
	sim_grey_free(NULL);
}

static void
test_bounded(void **state)
{
	struct sim_grey *g = sim_grey_new(100);
	char key[32];
	size_t most = 0;

	(void)state;
	/* one new triple a millisecond for 20 s: the table holds about the
	 * last 1000 ms, not everything */
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_false(sim_grey_is_passed(g, key, i));
		if (sim_grey_count(g) > most)
			most = sim_grey_count(g);
	}
	assert_true(most <= 1002);
	assert_true(sim_grey_count(g) >= 1000);
	sim_grey_free(g);

	/* a burst, then silence: one insert drops at most the step */
	g = sim_grey_new(100);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "b%d", i);
		sim_grey_is_passed(g, key, 0);
	}
	sim_grey_is_passed(g, "late", 5000);
	assert_int_equal(sim_grey_count(g), 100 - SIM_GREY_EXPIRE_STEP + 1);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "l%d", i);
		sim_grey_is_passed(g, key, 5000);
	}
	assert_int_equal(sim_grey_count(g), 21); /* "late" and the l%d */
	sim_grey_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_and_expire),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
