/* Unit tests for src/util: buffers with maxima, dict, conf reader, str. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/conf.h"
#include "util/dict.h"
#include "util/log.h"
#include "util/str.h"

static void
test_buf_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "12345678"), 0);
	assert_int_equal(buf_putc(&b, '9'), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(b.data, "42-x");
	assert_int_equal(buf_printf(&b, "%s", "too long"), -1);
	assert_string_equal(b.data, "42-x");
	buf_fini(&b);
}

static void
test_dict(void **state)
{
	struct dict *d = dict_new();
	char key[32];
	struct dict_iter it;
	const char *k;
	void *v;
	size_t seen = 0;

	(void)state;
	for (intptr_t i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%ld", (long)i);
		dict_set(d, key, (void *)(i + 1));
	}
	assert_int_equal(dict_count(d), 1000);
	assert_ptr_equal(dict_get(d, "k500"), (void *)501);
	assert_null(dict_get(d, "nope"));
	assert_ptr_equal(dict_del(d, "k500"), (void *)501);
	assert_null(dict_get(d, "k500"));
	dict_iter_init(&it);
	while (dict_next(d, &it, &k, &v)) {
		seen++;
		if (strcmp(k, "k7") == 0)
			dict_del(d, k);
	}
	assert_int_equal(seen, 999);
	assert_int_equal(dict_count(d), 998);
	dict_free(d);
}

struct conf_seen {
	int n;
	char last[256];
};

static int
conf_cb_collect(const struct conf_item *it, void *arg, char *err, size_t errlen)
{
	struct conf_seen *s = arg;

	if (it->key == NULL)
		return 0;
	if (strcmp(it->key, "bad") == 0) {
		snprintf(err, errlen, "unknown key '%s'", it->key);
		return -1;
	}
	s->n++;
	snprintf(s->last, sizeof(s->last), "%s/%s/%s=%s@%d", it->section, it->name,
	    it->key, it->value, it->line);
	return 0;
}

static void
test_conf(void **state)
{
	struct conf_seen s = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(conf_read_string("# c\n[a]\nx = 1\n\n[provider big]\ny = \"q \\\"z\\\"\"\n",
	    "t.conf", conf_cb_collect, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.last, "provider/big/y=q \"z\"@6");
	assert_int_equal(conf_read_string("[a]\nx = 1\nbad = 2\n", "t.conf",
	    conf_cb_collect, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "t.conf:3: unknown key 'bad'");
	assert_int_equal(conf_read_string("[a\n", "t.conf", conf_cb_collect, &s, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "t.conf:1: malformed section header");
	assert_int_equal(conf_read_string("novalue\n", "f", conf_cb_collect, &s, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "f:1: expected key = value");
}

static void
test_conf_values(void **state)
{
	static const struct {
		const char *in;
		int kind;
		int rc;
		int64_t out;
	} cases[] = {
		{ "10", 0, 0, 10 }, { "5m", 'd', 0, 300 }, { "2h", 'd', 0, 7200 },
		{ "3d", 'd', 0, 259200 }, { "4k", 's', 0, 4096 }, { "50M", 's', 0, 52428800 },
		{ "5x", 'd', -1, 0 }, { "", 0, -1, 0 }, { "1.5", 0, -1, 0 }, { "5m", 0, -1, 0 },
		{ "-3", 0, 0, -3 },
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		v = 0;
		assert_int_equal(conf_parse_int(cases[i].in, cases[i].kind, &v), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(v, cases[i].out);
	}
	assert_int_equal(conf_parse_bool("Yes", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(conf_parse_bool("maybe", &v), -1);
}

static void
test_str(void **state)
{
	char small[4];
	int64_t v;
	char q[64];
	char t[] = "  a b \t";

	(void)state;
	assert_int_equal(str_copy(small, "abcdef", sizeof(small)), 6);
	assert_string_equal(small, "abc");
	assert_int_equal(str_to_i64("12", 0, 100, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(str_to_i64("101", 0, 100, &v), -1);
	assert_int_equal(str_to_i64(" 1", 0, 100, &v), -1);
	assert_int_equal(str_to_i64("1x", 0, 100, &v), -1);
	assert_string_equal(str_trim(t), "a b");
	assert_string_equal(log_quote(q, sizeof(q), "plain"), "plain");
	assert_string_equal(log_quote(q, sizeof(q), "550 \"no\""), "\"550 \\\"no\\\"\"");
	assert_string_equal(log_quote(q, sizeof(q), ""), "\"\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_dict),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_conf_values),
		cmocka_unit_test(test_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
