/*
 * Tests of the store's domain macros and connection limits (migration 3)
 * on temporary database files under /tmp, each removed after its test.
 */
#define STORE_FIXTURE_DIR "/tmp/sluice-store-limit-XXXXXX"
#include "store_fixture.h"

static struct store_limit
lim(const char *source, const char *target)
{
	struct store_limit l;

	memset(&l, 0, sizeof(l));
	str_copy(l.source, source, sizeof(l.source));
	str_copy(l.target, target, sizeof(l.target));
	return l;
}

static void
set_macro(struct store *st, const char *name, const char *a, const char *b)
{
	const char *d[] = { a, b };

	assert_int_equal(store_macro_set(st, name, d, b ? 2 : 1), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_schema_version(void **state)
{
	struct fx *f = *state;

	assert_true(store_schema_version(f->st) >= 3);
}

static void
test_limit_add_list_update_rm(void **state)
{
	struct fx *f = *state;
	struct store_limit l = lim("", "Gmail.COM"), *all;
	json_t *j, *o;
	size_t n;

	l.simultaneous = 20;
	l.messages_per_hour = 3600;
	l.greylist_interval = 300;
	str_copy(l.greylist_function, "double", sizeof(l.greylist_function));
	l.greylist_max = 7200;
	assert_int_equal(store_limit_add(f->st, &l, T0), 0);
	assert_true(l.id > 0);
	assert_string_equal(l.target, "gmail.com"); /* lower-cased */

	struct store_limit m = lim("stream:default", "mx:*.YahooDNS.net");
	m.connections_per_hour = 12;
	m.messages_per_connection = 5;
	assert_int_equal(store_limit_add(f->st, &m, T0 + 1), 0);
	assert_true(m.id > l.id);

	assert_int_equal(store_limits_all(f->st, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].id, l.id);
	assert_string_equal(all[0].source, "");
	assert_string_equal(all[0].target, "gmail.com");
	assert_int_equal(all[0].simultaneous, 20);
	assert_int_equal(all[0].messages_per_hour, 3600);
	assert_int_equal(all[0].connections_per_hour, 0);
	assert_int_equal(all[0].greylist_interval, 300);
	assert_string_equal(all[0].greylist_function, "double");
	assert_int_equal(all[0].greylist_max, 7200);
	assert_int_equal(all[0].created, T0);
	assert_string_equal(all[1].source, "stream:default");
	assert_string_equal(all[1].target, "mx:*.yahoodns.net");
	assert_int_equal(all[1].connections_per_hour, 12);
	assert_int_equal(all[1].messages_per_connection, 5);
	free(all);

	/* JSON: blank fields are null */
	j = store_limits_json(f->st);
	assert_non_null(j);
	o = json_array_get(json_object_get(j, "limits"), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "id")), l.id);
	assert_true(json_is_null(json_object_get(o, "source")));
	assert_true(json_is_null(json_object_get(o, "connections_per_hour")));
	assert_int_equal(json_integer_value(json_object_get(o, "simultaneous")), 20);
	assert_string_equal(json_string_value(json_object_get(o, "greylist_function")),
	    "double");
	json_decref(j);

	/* update replaces every field */
	struct store_limit u = lim("192.0.2.11", "$nope");
	u.id = l.id;
	assert_int_equal(store_limit_update(f->st, &u), STORE_EINVAL);
	assert_string_equal(store_errmsg(f->st), "unknown macro $nope");
	u = lim("192.0.2.11", "example.org");
	u.id = l.id;
	u.simultaneous = 2;
	assert_int_equal(store_limit_update(f->st, &u), 0);
	assert_int_equal(store_limits_all(f->st, &all, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].source, "192.0.2.11");
	assert_string_equal(all[0].target, "example.org");
	assert_int_equal(all[0].simultaneous, 2);
	assert_int_equal(all[0].messages_per_hour, 0);
	assert_string_equal(all[0].greylist_function, "");
	assert_int_equal(all[0].created, T0); /* kept */
	free(all);

	u.id = 999;
	assert_int_equal(store_limit_update(f->st, &u), STORE_ENOTFOUND);
	assert_string_equal(store_errmsg(f->st), "no limit 999");

	assert_int_equal(store_limit_rm(f->st, l.id), 0);
	assert_int_equal(store_limit_rm(f->st, l.id), STORE_ENOTFOUND);
	assert_int_equal(store_limits_all(f->st, &all, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].id, m.id);
	free(all);
}

static void
test_limit_validation(void **state)
{
	struct fx *f = *state;
	struct {
		const char *source, *target;
		int64_t mph, cph, simul, mpc, gi, gmax;
		const char *gfunc;
		int rc;
		const char *msg;
	} cases[] = {
		{ "", "gmail.com", 0, 0, 101, 0, 0, 0, "", STORE_EINVAL,
		    "simultaneous connections must be 1 to 100" },
		{ "", "gmail.com", 0, 0, -1, 0, 0, 0, "", STORE_EINVAL,
		    "simultaneous connections must be 1 to 100" },
		{ "", "gmail.com", -5, 0, 0, 0, 0, 0, "", STORE_EINVAL,
		    "messages per hour must not be negative" },
		{ "", "gmail.com", 0, -1, 0, 0, 0, 0, "", STORE_EINVAL,
		    "connections per hour must not be negative" },
		{ "", "gmail.com", 0, 0, 0, -2, 0, 0, "", STORE_EINVAL,
		    "messages per connection must not be negative" },
		{ "", "gmail.com", 0, 0, 0, 0, -240, 0, "", STORE_EINVAL,
		    "greylist interval must not be negative" },
		{ "", "gmail.com", 0, 0, 0, 0, 0, -1, "", STORE_EINVAL,
		    "greylist maximum must not be negative" },
		{ "", "gmail.com", 0, 0, 0, 0, 600, 300, "", STORE_EINVAL,
		    "greylist maximum (300 s) is below the interval (600 s)" },
		{ "", "gmail.com", 0, 0, 0, 0, 0, 0, "cube", STORE_EINVAL,
		    "unknown greylist function 'cube' (same, double or square)" },
		{ "", "", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "target is required" },
		{ "", "192.0.2.25", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "bad target '192.0.2.25' (use mx:192.0.2.25 for an MX IP)" },
		{ "", "$foo", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "unknown macro $foo" },
		{ "$bar", "gmail.com", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "unknown macro $bar" },
		{ "stream:x", "gmail.com", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "no such stream 'x'" },
		{ "", "mx:", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "invalid target 'mx:': mx: needs a host name pattern or an IP address" },
		{ "", "gmail com", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "invalid target 'gmail com': a domain, $macro or mx:HOST" },
		{ "a b", "gmail.com", 0, 0, 5, 0, 0, 0, "", STORE_EINVAL,
		    "invalid source 'a b': a sender domain, $macro, stream:NAME or an IP"
		    " address" },
		/* accepted: blank is unlimited, 1 and 100 are the bounds */
		{ "", "gmail.com", 0, 0, 0, 0, 0, 0, "", 0, NULL },
		{ "", "gmail.com", 0, 0, 1, 0, 0, 0, "same", 0, NULL },
		{ "", "mx:192.0.2.25", 0, 0, 100, 0, 240, 240, "square", 0, NULL },
		{ "stream:default", "$big", 10, 12, 3, 4, 0, 0, "", 0, NULL },
		{ "$big", "mx:2001:db8::25", 0, 0, 3, 0, 0, 0, "", 0, NULL },
		{ "lists.example.com", "example.org", 0, 0, 3, 0, 0, 0, "", 0, NULL },
	};
	struct store_limit *all;
	size_t n, added = 0;

	set_macro(f->st, "big", "gmail.com", "googlemail.com");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_limit l = lim(cases[i].source, cases[i].target);
		int rc;

		l.messages_per_hour = cases[i].mph;
		l.connections_per_hour = cases[i].cph;
		l.simultaneous = cases[i].simul;
		l.messages_per_connection = cases[i].mpc;
		l.greylist_interval = cases[i].gi;
		l.greylist_max = cases[i].gmax;
		str_copy(l.greylist_function, cases[i].gfunc,
		    sizeof(l.greylist_function));
		rc = store_limit_add(f->st, &l, T0);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc,
			    store_errmsg(f->st));
		if (cases[i].msg != NULL &&
		    strcmp(store_errmsg(f->st), cases[i].msg) != 0)
			fail_msg("case %zu: message \"%s\", expected \"%s\"", i,
			    store_errmsg(f->st), cases[i].msg);
		if (rc == 0)
			added++;
	}
	/* refused limits changed nothing */
	assert_int_equal(store_limits_all(f->st, &all, &n), 0);
	assert_int_equal(n, added);
	free(all);
}

static void
test_macros(void **state)
{
	struct fx *f = *state;
	const char *bad[] = { "gmail.com", "not a domain" };
	char **names, ***doms;
	struct store_limit l = lim("", "$Yahoo");
	json_t *j, *m;

	/* set, with and without '$', duplicates folded, lower-cased */
	set_macro(f->st, "$Yahoo", "yahoo.com", "YMAIL.com");
	set_macro(f->st, "aol", "aol.com", "aol.com");
	j = store_macros_json(f->st);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "macros")), 2);
	m = json_array_get(json_object_get(j, "macros"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "name")), "Yahoo");
	assert_string_equal(json_string_value(json_array_get(json_object_get(m,
	    "domains"), 1)), "ymail.com");
	m = json_array_get(json_object_get(j, "macros"), 1);
	assert_int_equal(json_array_size(json_object_get(m, "domains")), 1);
	json_decref(j);

	/* replace */
	set_macro(f->st, "Yahoo", "yahoo.co.uk", NULL);
	assert_int_equal(store_macros_all(f->st, &names, &doms), 0);
	assert_string_equal(names[0], "Yahoo");
	assert_string_equal(names[1], "aol");
	assert_null(names[2]);
	assert_string_equal(doms[0][0], "yahoo.co.uk");
	assert_null(doms[0][1]);
	assert_string_equal(doms[1][0], "aol.com");
	store_macros_free(names, doms);

	/* invalid */
	assert_int_equal(store_macro_set(f->st, "x", bad, 2), STORE_EINVAL);
	assert_string_equal(store_errmsg(f->st),
	    "macro $x: 'not a domain' is not a domain name");
	assert_int_equal(store_macro_set(f->st, "x", bad, 0), STORE_EINVAL);
	assert_int_equal(store_macro_set(f->st, "a b", bad, 1), STORE_EINVAL);

	/* busy while a limit names it */
	l.simultaneous = 4;
	assert_int_equal(store_limit_add(f->st, &l, T0), 0);
	assert_int_equal(store_macro_rm(f->st, "Yahoo"), STORE_EBUSY);
	{
		char want[64];
		snprintf(want, sizeof(want), "macro $Yahoo is used by limit %lld",
		    (long long)l.id);
		assert_string_equal(store_errmsg(f->st), want);
	}
	assert_int_equal(store_limit_rm(f->st, l.id), 0);
	assert_int_equal(store_macro_rm(f->st, "$Yahoo"), 0);
	assert_int_equal(store_macro_rm(f->st, "Yahoo"), STORE_ENOTFOUND);
	assert_string_equal(store_errmsg(f->st), "no macro $Yahoo");
	assert_int_equal(store_macros_all(f->st, &names, &doms), 0);
	assert_string_equal(names[0], "aol");
	assert_null(names[1]);
	store_macros_free(names, doms);
	store_macros_free(NULL, NULL);
}

static void
test_persistence(void **state)
{
	struct fx *f = *state;
	struct store_limit l = lim("$senders", "$dest"), *all;
	char err[256], **names, ***doms;
	size_t n;

	set_macro(f->st, "senders", "lists.example.com", NULL);
	set_macro(f->st, "dest", "gmx.de", "web.de");
	l.simultaneous = 7;
	l.greylist_interval = 120;
	str_copy(l.greylist_function, "square", sizeof(l.greylist_function));
	assert_int_equal(store_limit_add(f->st, &l, T0), 0);
	store_free(f->st);

	f->st = store_open(f->path, false, err, sizeof(err));
	assert_non_null(f->st);
	assert_int_equal(store_limits_all(f->st, &all, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].id, l.id);
	assert_string_equal(all[0].source, "$senders");
	assert_string_equal(all[0].target, "$dest");
	assert_int_equal(all[0].simultaneous, 7);
	assert_int_equal(all[0].greylist_interval, 120);
	assert_string_equal(all[0].greylist_function, "square");
	free(all);
	assert_int_equal(store_macros_all(f->st, &names, &doms), 0);
	assert_string_equal(names[0], "dest");
	assert_string_equal(doms[0][1], "web.de");
	assert_string_equal(names[1], "senders");
	store_macros_free(names, doms);

	/* a read-only handle sees them too */
	{
		struct store *ro = store_open(f->path, true, err, sizeof(err));
		json_t *j;

		assert_non_null(ro);
		j = store_limits_json(ro);
		assert_non_null(j);
		assert_int_equal(json_array_size(json_object_get(j, "limits")), 1);
		json_decref(j);
		store_free(ro);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_add_list_update_rm, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limit_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_macros, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
