/* Unit tests for src/policy/block: hit counting, the table, coverage
 * (the fully-blocked computation) and probe scheduling, with chosen `now`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/block.h"
#include "util/str.h"

static struct block_entry
entry(int64_t id, const char *src, const char *mx, msec_t next, bool permanent)
{
	struct block_entry b;

	memset(&b, 0, sizeof(b));
	b.id = id;
	str_copy(b.src, src, sizeof(b.src));
	str_copy(b.mx, mx, sizeof(b.mx));
	b.next_probe = next;
	b.permanent = permanent;
	return b;
}

static void
test_hit_threshold(void **state)
{
	struct block_table *one = block_table_new(1, 60000);
	struct block_table *three = block_table_new(3, 60000);

	(void)state;
	assert_true(block_table_hit(one, "10.0.0.1", "192.0.2.1", 1000));
	/* three hits within the window create a block */
	assert_false(block_table_hit(three, "a", "m", 0));
	assert_false(block_table_hit(three, "a", "m", 10000));
	assert_true(block_table_hit(three, "a", "m", 20000));
	/* counting starts again afterwards */
	assert_false(block_table_hit(three, "a", "m", 21000));
	/* hits older than the window are forgotten */
	assert_false(block_table_hit(three, "b", "m", 0));
	assert_false(block_table_hit(three, "b", "m", 50000));
	assert_false(block_table_hit(three, "b", "m", 70000)); /* the one at 0 expired */
	assert_true(block_table_hit(three, "b", "m", 80000));
	/* pairs are counted apart */
	assert_false(block_table_hit(three, "c", "m", 0));
	assert_false(block_table_hit(three, "c", "n", 0));
	block_table_free(one);
	block_table_free(three);
}

static void
test_table(void **state)
{
	struct block_table *bt = block_table_new(1, 0);
	struct block_entry b = entry(7, "10.0.0.2", "192.0.2.1", 5000, false);

	(void)state;
	assert_false(block_table_is_blocked(bt, "10.0.0.2", "192.0.2.1"));
	block_table_put(bt, &b);
	assert_true(block_table_is_blocked(bt, "10.0.0.2", "192.0.2.1"));
	assert_false(block_table_is_blocked(bt, "10.0.0.1", "192.0.2.1"));
	assert_false(block_table_is_blocked(bt, "10.0.0.2", "192.0.2.2"));
	assert_int_equal(block_table_get(bt, 7)->next_probe, 5000);
	b.next_probe = 9000;
	block_table_put(bt, &b); /* replace */
	assert_int_equal(block_table_count(bt), 1);
	assert_int_equal(block_table_find(bt, "10.0.0.2", "192.0.2.1")->next_probe, 9000);
	assert_true(block_table_remove(bt, 7));
	assert_false(block_table_remove(bt, 7));
	assert_false(block_table_is_blocked(bt, "10.0.0.2", "192.0.2.1"));
	block_table_free(bt);
}

static void
test_coverage(void **state)
{
	static const char *const ips[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3" };
	static const char *const mxs[] = { "192.0.2.1", "192.0.2.2" };
	struct block_table *bt = block_table_new(1, 0);
	struct block_coverage c;
	int64_t id = 1;

	(void)state;
	block_table_coverage(bt, ips, 3, mxs, 2, &c);
	assert_int_equal(c.pairs, 6);
	assert_int_equal(c.blocked, 0);
	assert_false(block_coverage_is_full(&c));
	/* block every pair but the last: partly blocked */
	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct block_entry b;
			if (i == 2 && j == 1)
				continue;
			b = entry(id, ips[i], mxs[j], 1000 * id, false);
			id++;
			block_table_put(bt, &b);
		}
	}
	block_table_coverage(bt, ips, 3, mxs, 2, &c);
	assert_int_equal(c.blocked, 5);
	assert_false(block_coverage_is_full(&c));
	assert_int_equal(c.next_probe, 1000);
	{
		struct block_entry b = entry(99, ips[2], mxs[1], 500, false);
		block_table_put(bt, &b);
	}
	block_table_coverage(bt, ips, 3, mxs, 2, &c);
	assert_true(block_coverage_is_full(&c));
	assert_int_equal(c.next_probe, 500);
	/* a stream with one more IP is no longer fully blocked */
	{
		static const char *const four[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4" };
		block_table_coverage(bt, four, 4, mxs, 2, &c);
		assert_int_equal(c.pairs, 8);
		assert_false(block_coverage_is_full(&c));
	}
	/* a release makes it partly blocked again */
	assert_true(block_table_remove(bt, 99));
	block_table_coverage(bt, ips, 3, mxs, 2, &c);
	assert_false(block_coverage_is_full(&c));
	/* no pairs at all is never "fully blocked" */
	block_table_coverage(bt, ips, 0, mxs, 2, &c);
	assert_false(block_coverage_is_full(&c));
	block_table_free(bt);
}

static void
test_due(void **state)
{
	struct block_table *bt = block_table_new(1, 0);
	struct block_entry out[8];
	struct block_entry a = entry(1, "s1", "m", 3000, false);
	struct block_entry b = entry(2, "s2", "m", 1000, false);
	struct block_entry p = entry(3, "s3", "m", 0, true);

	(void)state;
	block_table_put(bt, &a);
	block_table_put(bt, &b);
	block_table_put(bt, &p);
	assert_int_equal(block_table_due(bt, 500, out, 8), 0);
	assert_int_equal(block_table_next_due(bt), 1000);
	assert_int_equal(block_table_due(bt, 1000, out, 8), 1);
	assert_int_equal(out[0].id, 2);
	assert_int_equal(block_table_due(bt, 5000, out, 8), 2);
	assert_int_equal(out[0].id, 2); /* earliest first */
	assert_int_equal(out[1].id, 1);
	/* a probe under way is not due again; permanent never is */
	block_table_set_probing(bt, 2, true);
	assert_int_equal(block_table_due(bt, 5000, out, 8), 1);
	assert_int_equal(out[0].id, 1);
	block_table_set_probing(bt, 2, false);
	block_table_set_next_probe(bt, 2, 3600000);
	assert_int_equal(block_table_due(bt, 5000, out, 8), 1);
	assert_int_equal(block_table_due(bt, 1u << 30, out, 1), 1); /* max */
	assert_int_equal(block_table_next_due(bt), 3000);
	block_table_free(bt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_threshold),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_coverage),
		cmocka_unit_test(test_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
