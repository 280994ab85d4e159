/* Unit tests for src/mail/addr: validation table, split, normalise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mail/addr.h"

static const char local64[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char label63[] =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static void
test_valid(void **state)
{
	static const char *const ok[] = {
		"user@example.com",
		"first.last@sub.example.co.uk",
		"a+tag@example.com",
		"x!#$%&'*+-/=?^_`{|}~@example.com",
		"\"john doe\"@example.com",
		"\"a\\\"b\"@example.com",
		"\"a@b\"@example.com",
		"user@[192.0.2.1]",
		"user@[IPv6:2001:db8::1]",
		"user@xn--bcher-kva.example",
		"u@a-b.c1",
		"USER@EXAMPLE.COM",
	};
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why[0] = '\0';
		if (!addr_is_valid(ok[i], why, sizeof(why)))
			fail_msg("%s rejected: %s", ok[i], why);
	}
}

static void
test_invalid(void **state)
{
	char longlocal[128], longlabel[128], longaddr[400];
	struct {
		const char *addr;
		const char *why;
	} bad[] = {
		{ "", "empty address" },
		{ "userexample.com", "missing @" },
		{ "@example.com", "empty local part" },
		{ "user@", "empty domain" },
		{ "a@b@example.com", "more than one @" },
		{ ".user@example.com", "local part starts with a dot" },
		{ "user.@example.com", "local part ends with a dot" },
		{ "us..er@example.com", "consecutive dots in local part" },
		{ "us er@example.com", "invalid character ' ' in local part (quote it)" },
		{ "us\ter@example.com", "control character in local part" },
		{ "\"unterminated@example.com", "unterminated quoted local part" },
		{ "\"a\"b@example.com", "text after the quoted local part" },
		{ "\"\"@example.com", "empty local part" },
		{ "us\xc3\xa9r@example.com", "non-ASCII character in local part" },
		{ "user@example", "domain has no dot" },
		{ "user@example..com", "empty domain label" },
		{ "user@.example.com", "empty domain label" },
		{ "user@example.com.", "empty domain label" },
		{ "user@-example.com", "domain label starts or ends with a hyphen" },
		{ "user@example-.com", "domain label starts or ends with a hyphen" },
		{ "user@exa_mple.com", "invalid character '_' in domain" },
		{ "user@1.2.3.4", "numeric top-level domain (write an IP as [1.2.3.4])" },
		{ "user@[1.2.3]", "invalid IPv4 address literal" },
		{ "user@[1.2.3.4", "unterminated address literal" },
		{ "user@[IPv6:zz::1]", "invalid IPv6 address literal" },
		{ longlocal, "local part too long (max 64)" },
		{ longlabel, "domain label too long (max 63)" },
		{ longaddr, "address too long (max 254)" },
	};
	char why[128];

	(void)state;
	snprintf(longlocal, sizeof(longlocal), "%sa@example.com", local64);
	snprintf(longlabel, sizeof(longlabel), "u@%sb.example.com", label63);
	snprintf(longaddr, sizeof(longaddr), "%s@%s.%s.%s.%s.com", local64,
	    label63, label63, label63, "c");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (addr_is_valid(bad[i].addr, why, sizeof(why)))
			fail_msg("%s accepted", bad[i].addr);
		if (strcmp(why, bad[i].why) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].addr,
			    why, bad[i].why);
	}
	/* The limits themselves are fine. */
	snprintf(longlocal, sizeof(longlocal), "%s@example.com", local64);
	assert_true(addr_is_valid(longlocal, NULL, 0));
	snprintf(longlabel, sizeof(longlabel), "u@%s.example.com", label63);
	assert_true(addr_is_valid(longlabel, NULL, 0));
}

static void
test_split(void **state)
{
	char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1], tiny[4];

	(void)state;
	assert_int_equal(addr_split("Bob.Smith@Example.COM", local,
	    sizeof(local), domain, sizeof(domain)), 0);
	assert_string_equal(local, "Bob.Smith");
	assert_string_equal(domain, "Example.COM");
	assert_int_equal(addr_split("\"a@b\"@x.org", local, sizeof(local),
	    domain, sizeof(domain)), 0);
	assert_string_equal(local, "\"a@b\"");
	assert_string_equal(domain, "x.org");
	assert_int_equal(addr_split("nope", local, sizeof(local), domain,
	    sizeof(domain)), -1);
	assert_int_equal(addr_split("long@x.org", tiny, sizeof(tiny), domain,
	    sizeof(domain)), -1);
}

static void
test_normalise(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Bob@Example.COM", "Bob@example.com" },
		{ "\"bob\"@EXAMPLE.com", "bob@example.com" },
		{ "\"bob smith\"@X.Org", "\"bob smith\"@x.org" },
		{ "u@[192.0.2.1]", "u@[192.0.2.1]" },
	};
	char out[ADDR_MAX + 1], tiny[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(addr_normalise(cases[i].in, out, sizeof(out)),
		    0);
		assert_string_equal(out, cases[i].out);
	}
	assert_int_equal(addr_normalise("bad", out, sizeof(out)), -1);
	assert_int_equal(addr_normalise("user@example.com", tiny,
	    sizeof(tiny)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_normalise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
