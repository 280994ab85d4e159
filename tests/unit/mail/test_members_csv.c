/* Unit tests for src/mail/members_csv: rows, kinds, every bad line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/members_csv.h"
#include "util/xalloc.h"

struct want_row {
	const char *email, *name;
	int kind, line;
};

static void
check_rows(const char *csv, const struct want_row *want, size_t n)
{
	struct members_csv *m = members_csv_parse(csv, strlen(csv));

	for (size_t i = 0; i < members_csv_error_count(m); i++)
		print_error("line %d: %s\n", members_csv_error(m, i)->line,
		    members_csv_error(m, i)->message);
	assert_false(members_csv_has_errors(m));
	assert_int_equal(members_csv_count(m), n);
	for (size_t i = 0; i < n; i++) {
		const struct members_csv_row *r = members_csv_row(m, i);

		assert_string_equal(r->email, want[i].email);
		assert_string_equal(r->name, want[i].name);
		assert_int_equal(r->kind, want[i].kind);
		assert_int_equal(r->line, want[i].line);
	}
	assert_null(members_csv_row(m, n));
	members_csv_free(m);
}

static void
test_header_and_not(void **state)
{
	static const struct want_row two[] = {
		{ "a@example.com", "Alice", MEMBERS_KIND_NORMAL, 2 },
		{ "b@example.com", "", MEMBERS_KIND_DIGEST, 3 },
	};
	static const struct want_row two_nohdr[] = {
		{ "a@example.com", "Alice", MEMBERS_KIND_NORMAL, 1 },
		{ "b@example.com", "", MEMBERS_KIND_DIGEST, 2 },
	};

	(void)state;
	check_rows("email,name,kind\na@example.com,Alice,\nb@example.com,,digest\n",
	    two, 2);
	check_rows("\xef\xbb\xbf" "EMAIL,Name\r\na@example.com,Alice\r\n"
	    "b@example.com,,Digest", two, 2);
	check_rows("a@example.com,Alice\nb@example.com,,digest\n", two_nohdr, 2);
	check_rows("email\n", NULL, 0);
	check_rows("", NULL, 0);
}

static void
test_quotes_kinds(void **state)
{
	static const struct want_row rows[] = {
		{ "x@example.com", "Smith, John", MEMBERS_KIND_NORMAL, 1 },
		{ "y@example.com", "say \"hi\"", MEMBERS_KIND_MODERATOR, 3 },
		{ "Z@example.com", "Zo\xc3\xab", MEMBERS_KIND_DIGEST, 4 },
		{ "w@example.com", "", MEMBERS_KIND_NORMAL, 6 },
		{ "\"q r\"@example.com", "Q", MEMBERS_KIND_NORMAL, 7 },
	};

	(void)state;
	check_rows("x@example.com,\"Smith, John\",normal\n"
	    "\n"
	    "  \"y@example.com\" , \"say \"\"hi\"\"\" , MODERATOR\n"
	    "Z@EXAMPLE.COM,Zo\xc3\xab,digest\r\n"
	    "   \r\n"
	    "w@example.com,,,,\n"
	    "\"\"\"q r\"\"@example.com\",Q\n", rows, 5);
}

static void
test_bad_lines(void **state)
{
	static const struct {
		int line;
		const char *msg;
	} want[] = {
		{ 1, "header column 2 is \"kind\", expected \"name\"" },
		{ 3, "invalid email \"not-an-address\": missing @" },
		{ 4, "unknown kind \"weekly\" (normal, digest or moderator)" },
		{ 5, "too many columns (4; the columns are email,name,kind)" },
		{ 6, "unterminated quote" },
		{ 7, "duplicate email OK@example.com (first on line 2)" },
		{ 8, "line too long (5000 bytes, at most 4096)" },
		{ 9, "invalid email \"a@b\": domain has no dot" },
		{ 10, "missing email" },
		{ 11, "text after a closing quote" },
		{ 12, "name is not valid UTF-8" },
		{ 13, "invalid email \"x@exa mple.com\": invalid character ' ' "
		    "in domain" },
	};
	char longline[5001];
	char *csv;
	struct members_csv *m;

	(void)state;
	memset(longline, 'x', 5000);
	longline[5000] = '\0';
	csv = xasprintf(
	    "email,kind\n"                       /* 1 */
	    "ok@example.com,Ok\n"                /* 2 */
	    "not-an-address,Bad\n"               /* 3 */
	    "k@example.com,K,weekly\n"           /* 4 */
	    "c@example.com,C,normal,extra\n"     /* 5 */
	    "q@example.com,\"unterminated\n"     /* 6 */
	    "OK@Example.com,Again\n"             /* 7 */
	    "%s\n"                               /* 8 */
	    "a@b\n"                              /* 9 */
	    ",nobody\n"                          /* 10 */
	    "t@example.com,\"T\" x\n"            /* 11 */
	    "u@example.com,\xff\xfe\n"           /* 12 */
	    "x@exa mple.com\n",                  /* 13 */
	    longline);
	m = members_csv_parse(csv, strlen(csv));
	assert_true(members_csv_has_errors(m));
	assert_int_equal(members_csv_count(m), 0);
	assert_null(members_csv_row(m, 0));
	for (size_t i = 0; i < members_csv_error_count(m); i++)
		print_message("line %d: %s\n", members_csv_error(m, i)->line,
		    members_csv_error(m, i)->message);
	assert_int_equal(members_csv_error_count(m),
	    sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct members_csv_error *e = members_csv_error(m, i);

		assert_int_equal(e->line, want[i].line);
		assert_string_equal(e->message, want[i].msg);
	}
	members_csv_free(m);
	free(csv);
}

static void
test_too_large(void **state)
{
	size_t n = MEMBERS_CSV_MAX_SIZE + 1;
	char *big = xmalloc(n);
	struct members_csv *m;

	(void)state;
	memset(big, '\n', n);
	m = members_csv_parse(big, n);
	assert_true(members_csv_has_errors(m));
	assert_int_equal(members_csv_error(m, 0)->line, 0);
	assert_non_null(strstr(members_csv_error(m, 0)->message, "too large"));
	members_csv_free(m);
	free(big);
	members_csv_free(NULL);
}

/* n lines "bad" (no @) then one good line. */
static char *
bad_file(size_t n, size_t *len)
{
	static const char good[] = "good@example.com\n";
	char *s = xmalloc(n * 4 + sizeof(good));

	for (size_t i = 0; i < n; i++)
		memcpy(s + i * 4, "bad\n", 4);
	memcpy(s + n * 4, good, sizeof(good));
	*len = n * 4 + sizeof(good) - 1;
	return s;
}

static void
test_error_cap(void **state)
{
	static const struct {
		size_t nbad;      /* bad lines in the file */
		size_t kept;      /* members_csv_error_count */
		size_t total;     /* members_csv_error_total */
		bool stopped;
		const char *last; /* the last kept message */
		int last_line;
	} cases[] = {
		{ 1, 1, 1, false, "invalid email \"bad\": missing @", 1 },
		{ 100, 100, 100, false, "invalid email \"bad\": missing @", 100 },
		{ 101, 100, 101, false, "invalid email \"bad\": missing @", 100 },
		{ 9999, 100, 9999, false, "invalid email \"bad\": missing @",
		    100 },
		/* the 10,000th error is followed by the good line: stop */
		{ 10000, 101, 10001, true,
		    "too many errors; stopped at line 10000", 10000 },
		{ 300000, 101, 10001, true,
		    "too many errors; stopped at line 10000", 10000 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len, kept;
		char *csv = bad_file(cases[i].nbad, &len);
		struct members_csv *m = members_csv_parse(csv, len);
		const struct members_csv_error *e;

		print_message("%zu bad lines\n", cases[i].nbad);
		assert_true(members_csv_has_errors(m));
		assert_int_equal(members_csv_count(m), 0);
		kept = members_csv_error_count(m);
		assert_int_equal(kept, cases[i].kept);
		assert_int_equal(members_csv_error_total(m), cases[i].total);
		assert_int_equal(members_csv_is_stopped(m), cases[i].stopped);
		for (size_t j = 0; j < kept && j < MEMBERS_CSV_ERRORS_KEPT; j++)
			assert_int_equal(members_csv_error(m, j)->line, (int)j + 1);
		e = members_csv_error(m, kept - 1);
		assert_string_equal(e->message, cases[i].last);
		assert_int_equal(e->line, cases[i].last_line);
		assert_null(members_csv_error(m, kept));
		members_csv_free(m);
		free(csv);
	}
}

static void
test_kind_names(void **state)
{
	(void)state;
	for (int k = 0; k < 3; k++)
		assert_int_equal(members_kind_parse(members_kind_name(k)), k);
	assert_null(members_kind_name(3));
	assert_int_equal(members_kind_parse(""), MEMBERS_KIND_NORMAL);
	assert_int_equal(members_kind_parse("bogus"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_and_not),
		cmocka_unit_test(test_quotes_kinds),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
