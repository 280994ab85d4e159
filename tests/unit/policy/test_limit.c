/*
 * Tests for limit: matching of every source and target kind, shared
 * budgets, the server default, GCRA rates, carry, greylist choice, the
 * adaptive window and every validation message. All with a chosen `now`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/limit.h"

#define T0 (INT64_C(1700000000000))
#define MIN (INT64_C(60000))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const yahoo[] = { "yahoo.com", "YMail.com", "rocketmail.com." };
static const char *const senders[] = { "news.example", "shop.example" };

static void
add_ok(struct limitset *ls, const struct limit_spec *s)
{
	char err[160] = "";

	if (limitset_add(ls, s, err, sizeof(err)) != 0)
		fail_msg("limit %lld: %s", (long long)s->id, err);
}

static void
ids_str(const int64_t *ids, size_t n, char *out, size_t len)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%lld", i ? "," : "",
		    (long long)ids[i]);
}

/* ---- matching ------------------------------------------------------------ */

static const struct limit_spec match_specs[] = {
	{ .id = 1, .source = "", .target = "gmail.com" },
	{ .id = 2, .source = "example.org", .target = "hotmail.com" },
	{ .id = 3, .source = "stream:bulk", .target = "gmail.com" },
	{ .id = 4, .source = "$senders", .target = "$yahoo" },
	{ .id = 5, .source = NULL, .target = "mx:*.yahoodns.net" },
	{ .id = 6, .source = "192.0.2.11", .target = "mx:192.0.2.25" },
	{ .id = 7, .source = "2001:db8::11", .target = "mx:2001:DB8::25" },
	{ .id = 8, .source = "", .target = "$yahoo" },
	{ .id = 9, .source = "", .target = "mx:MTA*.Outlook.com" },
};

struct match_case {
	struct limit_ctx ctx;
	const char *want;
};

static const struct match_case match_cases[] = {
	/* target domain, subdomains, case, trailing dot */
	{ { .rcpt_domain = "gmail.com" }, "1" },
	{ { .rcpt_domain = "GMail.COM" }, "1" },
	{ { .rcpt_domain = "mail.gmail.com" }, "1" },
	{ { .rcpt_domain = "gmail.com." }, "1" },
	{ { .rcpt_domain = "notgmail.com" }, "" },
	{ { .rcpt_domain = "gmail.co" }, "" },
	/* stream source */
	{ { .rcpt_domain = "gmail.com", .stream = "bulk" }, "1,3" },
	{ { .rcpt_domain = "gmail.com", .stream = "BULK" }, "1,3" },
	{ { .rcpt_domain = "gmail.com", .stream = "bulky" }, "1" },
	{ { .rcpt_domain = "gmail.com", .stream = "" }, "1" },
	/* sender domain source */
	{ { .rcpt_domain = "hotmail.com", .sender_domain = "example.org" }, "2" },
	{ { .rcpt_domain = "hotmail.com", .sender_domain = "Lists.Example.ORG" }, "2" },
	{ { .rcpt_domain = "hotmail.com", .sender_domain = NULL }, "" },
	{ { .rcpt_domain = "hotmail.com", .sender_domain = "" }, "" },
	{ { .rcpt_domain = "hotmail.com", .sender_domain = "example.org.uk" }, "" },
	{ { .rcpt_domain = "outlook.com", .sender_domain = "example.org" }, "" },
	/* $macro source and target */
	{ { .rcpt_domain = "yahoo.com", .sender_domain = "news.example" }, "4,8" },
	{ { .rcpt_domain = "ymail.com", .sender_domain = "SHOP.example" }, "4,8" },
	{ { .rcpt_domain = "rocketmail.com", .sender_domain = "a.news.example" }, "4,8" },
	{ { .rcpt_domain = "uk.yahoo.com", .sender_domain = "other.example" }, "8" },
	{ { .rcpt_domain = "yahoo.co.uk", .sender_domain = "news.example" }, "" },
	{ { .rcpt_domain = NULL, .sender_domain = "news.example" }, "" },
	/* mx: host pattern */
	{ { .mx_host = "mta5.am0.yahoodns.net" }, "5" },
	{ { .mx_host = "MTA5.AM0.YAHOODNS.NET." }, "5" },
	{ { .mx_host = "yahoodns.net" }, "" },
	{ { .mx_host = "mta5.yahoodns.net.evil.com" }, "" },
	{ { .mx_host = "mta7.mail.outlook.com" }, "9" },
	{ { .mx_host = "outlook.com" }, "" },
	{ { .rcpt_domain = "yahoo.com", .mx_host = NULL }, "8" },
	/* IP source, mx: IP target, v4 and v6 */
	{ { .source_ip = "192.0.2.11", .mx_ip = "192.0.2.25" }, "6" },
	{ { .source_ip = "::ffff:192.0.2.11", .mx_ip = "192.0.2.25" }, "6" },
	{ { .source_ip = "192.0.2.12", .mx_ip = "192.0.2.25" }, "" },
	{ { .source_ip = "192.0.2.11", .mx_ip = "192.0.2.26" }, "" },
	{ { .source_ip = NULL, .mx_ip = "192.0.2.25" }, "" },
	{ { .source_ip = "192.0.2.11", .mx_ip = NULL }, "" },
	{ { .source_ip = "not-an-ip", .mx_ip = "192.0.2.25" }, "" },
	{ { .source_ip = "2001:DB8:0:0::11", .mx_ip = "2001:db8::25" }, "7" },
	{ { .source_ip = "2001:db8::11", .mx_ip = "2001:db8::26" }, "" },
	{ { .source_ip = "2001:db8::11", .mx_ip = "192.0.2.25" }, "" },
	/* several at once */
	{ { .rcpt_domain = "gmail.com", .stream = "bulk", .mx_host = "a.yahoodns.net",
	    .source_ip = "192.0.2.11", .mx_ip = "192.0.2.25" }, "1,3,5,6" },
	{ { 0 }, "" },
};

static void
test_match(void **state)
{
	struct limitset *ls = limitset_new();
	int64_t ids[LIMIT_MATCH_MAX];
	char got[256];

	(void)state;
	assert_int_equal(limitset_macro(ls, "yahoo", yahoo, NELEM(yahoo)), 0);
	assert_int_equal(limitset_macro(ls, "senders", senders, NELEM(senders)), 0);
	/* added out of order: match still answers in ascending id order */
	for (size_t i = NELEM(match_specs); i-- > 0;)
		add_ok(ls, &match_specs[i]);
	assert_int_equal(limitset_count(ls), NELEM(match_specs));
	for (size_t i = 0; i < NELEM(match_cases); i++) {
		size_t n = limitset_match(ls, &match_cases[i].ctx, ids);

		ids_str(ids, n, got, sizeof(got));
		if (strcmp(got, match_cases[i].want) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, got,
			    match_cases[i].want);
	}
	assert_int_equal(limitset_match(ls, NULL, ids), 0);

	/* Redefining a macro applies to the limits that use it. */
	{
		static const char *const only[] = { "aol.com" };
		struct limit_ctx c = { .rcpt_domain = "aol.com" };

		assert_int_equal(limitset_macro(ls, "$yahoo", only, 1), 0);
		ids_str(ids, limitset_match(ls, &c, ids), got, sizeof(got));
		assert_string_equal(got, "8");
		c.rcpt_domain = "yahoo.com";
		assert_int_equal(limitset_match(ls, &c, ids), 0);
	}
	limitset_free(ls);
}

static void
test_match_max(void **state)
{
	struct limitset *ls = limitset_new();
	int64_t ids[LIMIT_MATCH_MAX];
	struct limit_ctx c = { .rcpt_domain = "gmail.com" };

	(void)state;
	for (int i = 1; i <= LIMIT_MATCH_MAX + 5; i++) {
		struct limit_spec s = { .id = i, .target = "gmail.com" };
		add_ok(ls, &s);
	}
	assert_int_equal(limitset_match(ls, &c, ids), LIMIT_MATCH_MAX);
	assert_int_equal(ids[LIMIT_MATCH_MAX - 1], LIMIT_MATCH_MAX);
	limitset_free(ls);
}

struct pair_case {
	const char *a, *b;
	bool want;
};

static const struct pair_case domain_cases[] = {
	{ "example.com", "example.com", true },
	{ "a.b.example.com", "example.com", true },
	{ "EXAMPLE.com", "example.COM", true },
	{ "example.com.", "example.com", true },
	{ "example.com", "example.com.", true },
	{ "badexample.com", "example.com", false },
	{ "example.com", "a.example.com", false },
	{ "com", "example.com", false },
	{ "", "example.com", false },
	{ NULL, "example.com", false },
	{ "example.com", "", false },
	{ "example.com", NULL, false },
};

static const struct pair_case glob_cases[] = {
	{ "*.yahoodns.net", "mta6.am0.yahoodns.net", true },
	{ "*.yahoodns.net", "yahoodns.net", false },
	{ "*", "", true },
	{ "*", "anything", true },
	{ "", "", true },
	{ "", "a", false },
	{ "mx*.Example.com", "MX12.example.COM", true },
	{ "mx*.example.com", "mail.example.com", false },
	{ "a*b*c", "aXXbYYc", true },
	{ "a*b*c", "aXXbYY", false },
	{ "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	{ "exact.host", "exact.host", true },
	{ "exact.host", "exact.hos", false },
	{ NULL, "x", false },
	{ "x", NULL, false },
};

static void
test_domain_and_glob(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(domain_cases); i++)
		if (limit_domain_matches(domain_cases[i].a, domain_cases[i].b) !=
		    domain_cases[i].want)
			fail_msg("domain case %zu", i);
	for (size_t i = 0; i < NELEM(glob_cases); i++)
		if (limit_glob_matches(glob_cases[i].a, glob_cases[i].b) !=
		    glob_cases[i].want)
			fail_msg("glob case %zu", i);
}

/* ---- budgets ------------------------------------------------------------- */

/* Match ctx and try to connect; on success count the session. */
static bool
try_connect(struct limitset *ls, const struct limit_ctx *c, int pair_open,
    msec_t now, struct limit_verdict *v)
{
	int64_t ids[LIMIT_MATCH_MAX];
	size_t n = limitset_match(ls, c, ids);

	limitset_may_connect(ls, ids, n, pair_open, 10, now, v);
	if (v->ok)
		limitset_connected(ls, ids, n, now);
	return v->ok;
}

static void
test_domainset_shares_budget(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec s = { .id = 10, .target = "$yahoo", .simultaneous = 2 };
	struct limit_ctx c1 = { .rcpt_domain = "yahoo.com" };
	struct limit_ctx c2 = { .rcpt_domain = "ymail.com" };
	struct limit_ctx c3 = { .rcpt_domain = "rocketmail.com" };
	struct limit_verdict v;
	int64_t id = 10;

	(void)state;
	assert_int_equal(limitset_macro(ls, "yahoo", yahoo, NELEM(yahoo)), 0);
	add_ok(ls, &s);
	assert_true(try_connect(ls, &c1, 0, T0, &v));
	assert_true(try_connect(ls, &c2, 0, T0, &v));
	assert_false(try_connect(ls, &c3, 0, T0, &v));
	assert_int_equal(v.limit_id, 10);
	assert_int_equal(v.retry_at, 0);
	assert_string_equal(v.why,
	    "limit 10 (-> $yahoo): 2 of 2 simultaneous connections");
	limitset_disconnected(ls, &id, 1);
	assert_true(try_connect(ls, &c3, 0, T0, &v));
	/* never below zero */
	for (int i = 0; i < 5; i++)
		limitset_disconnected(ls, &id, 1);
	assert_true(try_connect(ls, &c1, 0, T0, &v));
	assert_true(try_connect(ls, &c1, 0, T0, &v));
	assert_false(try_connect(ls, &c1, 0, T0, &v));
	limitset_free(ls);
}

static void
test_stream_shares_budget(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec s = { .id = 3, .source = "stream:bulk", .target = "gmail.com",
		.simultaneous = 3 };
	static const char *const ips[] = { "192.0.2.1", "192.0.2.2", "192.0.2.3" };
	struct limit_ctx c = { .stream = "bulk", .rcpt_domain = "gmail.com" };
	struct limit_verdict v;

	(void)state;
	add_ok(ls, &s);
	for (size_t i = 0; i < NELEM(ips); i++) {
		c.source_ip = ips[i];
		assert_true(try_connect(ls, &c, 0, T0, &v));
	}
	c.source_ip = ips[0];
	assert_false(try_connect(ls, &c, 0, T0, &v));
	assert_int_equal(v.limit_id, 3);
	assert_string_equal(v.why,
	    "limit 3 (stream:bulk -> gmail.com): 3 of 3 simultaneous connections");
	/* another stream is not counted against it (only the default applies) */
	c.stream = "transactional";
	assert_true(try_connect(ls, &c, 0, T0, &v));
	limitset_free(ls);
}

static void
test_most_restrictive(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec a = { .id = 1, .target = "gmail.com", .simultaneous = 20,
		.connections_per_hour = 60 };
	struct limit_spec b = { .id = 2, .source = "stream:bulk", .target = "gmail.com",
		.simultaneous = 5, .connections_per_hour = 12 };
	struct limit_ctx bulk = { .stream = "bulk", .rcpt_domain = "gmail.com" };
	struct limit_ctx other = { .stream = "tx", .rcpt_domain = "gmail.com" };
	struct limit_verdict v;
	int64_t ids[2] = { 1, 2 };

	(void)state;
	add_ok(ls, &a);
	add_ok(ls, &b);
	/* rates: 60/h admits after 1 min, 12/h only after 5 min */
	assert_true(try_connect(ls, &bulk, 0, T0, &v));
	assert_false(try_connect(ls, &bulk, 0, T0 + 50000, &v));
	assert_int_equal(v.limit_id, 2);
	assert_int_equal(v.retry_at, T0 + 5 * MIN);
	assert_string_equal(v.why,
	    "limit 2 (stream:bulk -> gmail.com): 12 connections per hour, next at +4m10s");
	/* the other stream is under limit 1 only: admitted after 1 min */
	assert_false(try_connect(ls, &other, 0, T0 + 59999, &v));
	assert_int_equal(v.limit_id, 1);
	assert_string_equal(v.why,
	    "limit 1 (-> gmail.com): 60 connections per hour, next at +1s");
	assert_true(try_connect(ls, &other, 0, T0 + MIN, &v));
	/* simultaneous: 5 of limit 2 holds before 20 of limit 1 */
	for (int i = 0; i < 3; i++)
		limitset_connected(ls, ids, 2, T0);
	limitset_connected(ls, ids, 1, T0);
	/* limit 2 open: 1 + 3 = 4; limit 1 open: 2 + 3 + 1 = 6 */
	limitset_may_connect(ls, ids, 2, 0, 10, T0 + 10 * 3600000, &v);
	assert_true(v.ok);
	limitset_connected(ls, ids, 2, T0 + 10 * 3600000);
	limitset_may_connect(ls, ids, 2, 0, 10, T0 + 20 * 3600000, &v);
	assert_false(v.ok);
	assert_int_equal(v.limit_id, 2);
	assert_int_equal(v.retry_at, 0);
	assert_string_equal(v.why,
	    "limit 2 (stream:bulk -> gmail.com): 5 of 5 simultaneous connections");
	/* simultaneous and rate holds at once: the latest retry_at is named */
	limitset_may_connect(ls, ids, 2, 0, 10, T0 + 10 * 3600000 + 1, &v);
	assert_false(v.ok);
	assert_int_equal(v.limit_id, 2);
	assert_int_equal(v.retry_at, T0 + 10 * 3600000 + 5 * MIN);
	assert_string_equal(v.why,
	    "limit 2 (stream:bulk -> gmail.com): 12 connections per hour, next at +5m");
	limitset_free(ls);
}

struct dflt_case {
	int64_t simultaneous;   /* of the one matching limit; -1: no limit */
	int64_t cph;
	int open_limit;         /* sessions counted on the limit */
	int pair_open;
	bool ok;
	int64_t limit_id;
	const char *why;
};

static const struct dflt_case dflt_cases[] = {
	{ -1, 0, 0, 9, true, 0, "" },
	{ -1, 0, 0, 10, false, 0,
	    "server default: 10 of 10 simultaneous connections on this pair" },
	{ -1, 0, 0, 12, false, 0,
	    "server default: 12 of 10 simultaneous connections on this pair" },
	/* explicit simultaneous replaces the default, up or down */
	{ 20, 0, 15, 15, true, 0, "" },
	{ 20, 0, 20, 20, false, 1,
	    "limit 1 (-> gmail.com): 20 of 20 simultaneous connections" },
	{ 3, 0, 3, 3, false, 1,
	    "limit 1 (-> gmail.com): 3 of 3 simultaneous connections" },
	{ 3, 0, 2, 2, true, 0, "" },
	/* a limit without simultaneous leaves the default in force */
	{ 0, 100, 10, 10, false, 0,
	    "server default: 10 of 10 simultaneous connections on this pair" },
	{ 0, 100, 9, 9, true, 0, "" },
};

static void
test_default(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(dflt_cases); i++) {
		const struct dflt_case *c = &dflt_cases[i];
		struct limitset *ls = limitset_new();
		struct limit_verdict v;
		int64_t id = 1;
		size_t n = 0;

		if (c->simultaneous >= 0) {
			struct limit_spec s = { .id = 1, .target = "gmail.com",
				.simultaneous = c->simultaneous,
				.connections_per_hour = c->cph };
			add_ok(ls, &s);
			n = 1;
			for (int k = 0; k < c->open_limit; k++)
				limitset_connected(ls, &id, 1, T0 - 3600000 * 10);
		}
		limitset_may_connect(ls, &id, n, c->pair_open, 10, T0, &v);
		if (v.ok != c->ok || v.limit_id != c->limit_id ||
		    strcmp(v.why, c->why) != 0)
			fail_msg("case %zu: ok %d id %lld why '%s'", i, v.ok,
			    (long long)v.limit_id, v.why);
		limitset_free(ls);
	}
}

struct gcra_step {
	msec_t at;         /* offset from T0 */
	bool ok;
	msec_t retry_at;   /* offset from T0 when !ok */
	const char *why;
};

static const struct gcra_step gcra_steps[] = {
	{ 0, true, 0, NULL },
	{ 1, false, 5 * MIN, "limit 5 (-> $yahoo): 12 connections per hour, next at +5m" },
	{ 50000, false, 5 * MIN,
	    "limit 5 (-> $yahoo): 12 connections per hour, next at +4m10s" },
	{ 5 * MIN - 1, false, 5 * MIN,
	    "limit 5 (-> $yahoo): 12 connections per hour, next at +1s" },
	{ 5 * MIN, true, 0, NULL },
	{ 9 * MIN, false, 10 * MIN, NULL },
	{ 10 * MIN, true, 0, NULL },
	/* idle for hours: no burst builds up */
	{ 300 * MIN, true, 0, NULL },
	{ 301 * MIN, false, 305 * MIN, NULL },
	{ 305 * MIN, true, 0, NULL },
};

static void
test_gcra_connections(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec s = { .id = 5, .target = "$yahoo", .connections_per_hour = 12 };
	struct limit_ctx c = { .rcpt_domain = "yahoo.com" };

	(void)state;
	assert_int_equal(limitset_macro(ls, "yahoo", yahoo, NELEM(yahoo)), 0);
	add_ok(ls, &s);
	for (size_t i = 0; i < NELEM(gcra_steps); i++) {
		const struct gcra_step *st = &gcra_steps[i];
		struct limit_verdict v;
		int64_t id = 5;

		if (try_connect(ls, &c, 0, T0 + st->at, &v) != st->ok)
			fail_msg("step %zu: ok %d (%s)", i, v.ok, v.why);
		if (!st->ok && (v.retry_at != T0 + st->retry_at || v.limit_id != 5))
			fail_msg("step %zu: retry_at %+lld", i,
			    (long long)(v.retry_at - T0));
		if (st->why != NULL && strcmp(v.why, st->why) != 0)
			fail_msg("step %zu: why '%s'", i, v.why);
		if (v.ok)
			limitset_disconnected(ls, &id, 1);
	}
	limitset_free(ls);
}

static void
test_messages_per_hour(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec a = { .id = 1, .target = "gmail.com", .messages_per_hour = 3600,
		.messages_per_connection = 50 };
	struct limit_spec b = { .id = 2, .target = "mx:*.google.com",
		.messages_per_hour = 1800, .messages_per_connection = 20 };
	struct limit_spec c = { .id = 3, .target = "example.net" };
	struct limit_verdict v;
	int64_t ids[3] = { 1, 2, 3 };

	(void)state;
	add_ok(ls, &a);
	add_ok(ls, &b);
	add_ok(ls, &c);
	limitset_may_send(ls, ids, 1, T0, &v);
	assert_true(v.ok);
	limitset_sent(ls, ids, 1, T0);
	limitset_may_send(ls, ids, 1, T0 + 500, &v);
	assert_false(v.ok);
	assert_int_equal(v.retry_at, T0 + 1000);
	assert_string_equal(v.why,
	    "limit 1 (-> gmail.com): 3600 messages per hour, next at +1s");
	limitset_may_send(ls, ids, 1, T0 + 1000, &v);
	assert_true(v.ok);
	/* limit 2 at 1800/h: every 2 s */
	limitset_sent(ls, ids, 2, T0 + 1000);
	limitset_may_send(ls, ids, 2, T0 + 2000, &v);
	assert_true(!v.ok && v.limit_id == 2 && v.retry_at == T0 + 3000);
	limitset_may_send(ls, ids, 2, T0 + 3000, &v);
	assert_true(v.ok);
	/* a limit without a rate never holds */
	limitset_sent(ls, &ids[2], 1, T0);
	limitset_may_send(ls, &ids[2], 1, T0, &v);
	assert_true(v.ok);
	/* messages per connection: the smallest set one */
	assert_int_equal(limitset_messages_per_connection(ls, ids, 3), 20);
	assert_int_equal(limitset_messages_per_connection(ls, ids, 1), 50);
	assert_int_equal(limitset_messages_per_connection(ls, &ids[2], 1), 0);
	assert_int_equal(limitset_messages_per_connection(ls, ids, 0), 0);
	limitset_free(ls);
}

static void
test_carry(void **state)
{
	struct limitset *old = limitset_new(), *cur = limitset_new();
	struct limit_spec o1 = { .id = 1, .target = "gmail.com", .simultaneous = 2 };
	struct limit_spec o2 = { .id = 2, .target = "yahoo.com", .simultaneous = 2,
		.connections_per_hour = 12 };
	struct limit_spec n2 = { .id = 2, .target = "yahoo.com", .simultaneous = 2,
		.connections_per_hour = 60 };
	struct limit_spec n3 = { .id = 3, .target = "gmail.com", .simultaneous = 2 };
	struct limit_verdict v;
	int64_t ids[3] = { 1, 2, 3 };

	(void)state;
	add_ok(old, &o1);
	add_ok(old, &o2);
	limitset_connected(old, ids, 2, T0);
	limitset_connected(old, ids, 1, T0);
	add_ok(cur, &n2);
	add_ok(cur, &n3);
	limitset_carry(cur, old);
	limitset_free(old);
	/* limit 2: one session open, rate rescaled 12/h -> 60/h: next at +1m */
	limitset_may_connect(cur, &ids[1], 1, 0, 10, T0 + MIN - 1, &v);
	assert_false(v.ok);
	assert_int_equal(v.retry_at, T0 + MIN);
	limitset_connected(cur, &ids[1], 1, T0 + MIN);
	limitset_may_connect(cur, &ids[1], 1, 0, 10, T0 + 100 * MIN, &v);
	assert_false(v.ok);
	assert_string_equal(v.why,
	    "limit 2 (-> yahoo.com): 2 of 2 simultaneous connections");
	/* limit 3 is new: fresh budget; limit 1 is gone and ignored */
	limitset_connected(cur, &ids[2], 1, T0);
	limitset_connected(cur, &ids[2], 1, T0);
	limitset_may_connect(cur, &ids[2], 1, 0, 10, T0, &v);
	assert_false(v.ok);
	limitset_disconnected(cur, ids, 1);
	limitset_disconnected(cur, &ids[1], 1);
	limitset_may_connect(cur, &ids[1], 1, 0, 10, T0 + 100 * MIN, &v);
	assert_true(v.ok);
	limitset_carry(cur, NULL);
	limitset_free(cur);
}

static void
test_carry_same_rate(void **state)
{
	struct limitset *old = limitset_new(), *cur = limitset_new();
	struct limit_spec s = { .id = 4, .target = "aol.com", .messages_per_hour = 12 };
	struct limit_verdict v;
	int64_t id = 4;

	(void)state;
	add_ok(old, &s);
	add_ok(cur, &s);
	limitset_sent(old, &id, 1, T0);
	limitset_carry(cur, old);
	limitset_free(old);
	limitset_may_send(cur, &id, 1, T0 + 5 * MIN - 1, &v);
	assert_false(v.ok);
	assert_int_equal(v.retry_at, T0 + 5 * MIN);
	limitset_free(cur);
}

/* ---- greylist -------------------------------------------------------------- */

static const struct limit_spec grey_specs[] = {
	{ .id = 1, .target = "a.example", .greylist_interval = 300 },
	{ .id = 2, .target = "a.example", .greylist_interval = 300,
	    .greylist_function = "double" },
	{ .id = 3, .target = "a.example", .simultaneous = 5 },
	{ .id = 4, .target = "a.example", .greylist_interval = 100,
	    .greylist_function = "square", .greylist_max = 1000 },
	{ .id = 5, .target = "a.example", .greylist_function = "Square" },
	{ .id = 6, .target = "a.example", .greylist_max = 60 },
	{ .id = 7, .target = "a.example", .greylist_interval = 300,
	    .greylist_function = "double", .greylist_max = 400 },
};

struct grey_case {
	int64_t ids[4];
	size_t n;
	int64_t want;
	int64_t wait1, wait3;   /* retry_greylist_interval of the result */
};

static const struct grey_case grey_cases[] = {
	{ { 1, 2, 3, 4 }, 4, 2, 300, 1200 },   /* tie at 300: double waits longer */
	{ { 1, 3 }, 2, 1, 300, 300 },
	{ { 3 }, 1, 0, 60, 60 },                /* the default */
	{ { 0 }, 0, 0, 60, 60 },
	{ { 4, 1 }, 2, 1, 300, 300 },           /* first retry decides */
	{ { 4, 5 }, 2, 5, 240, 2160 },          /* function only: 240 s square */
	{ { 5, 1 }, 2, 1, 300, 300 },
	{ { 6, 4 }, 2, 4, 100, 900 },           /* max only: 60 s */
	{ { 6 }, 1, 6, 60, 60 },
	{ { 2, 7 }, 2, 2, 300, 1200 },          /* the cap breaks the tie */
	{ { 7, 1 }, 2, 7, 300, 400 },
	{ { 1, 99 }, 2, 1, 300, 300 },          /* unknown id ignored */
};

static void
test_greylist(void **state)
{
	struct limitset *ls = limitset_new();
	struct retry_greylist dflt = { 60, RETRY_GREY_SAME, 0 };

	(void)state;
	for (size_t i = 0; i < NELEM(grey_specs); i++)
		add_ok(ls, &grey_specs[i]);
	for (size_t i = 0; i < NELEM(grey_cases); i++) {
		const struct grey_case *c = &grey_cases[i];
		struct retry_greylist g;
		int64_t id = limitset_greylist(ls, c->ids, c->n, &dflt, &g);

		if (id != c->want || retry_greylist_interval(&g, 1) != c->wait1 ||
		    retry_greylist_interval(&g, 3) != c->wait3)
			fail_msg("case %zu: id %lld waits %lld/%lld", i, (long long)id,
			    (long long)retry_greylist_interval(&g, 1),
			    (long long)retry_greylist_interval(&g, 3));
	}
	limitset_free(ls);
}

/* ---- adaptive window ------------------------------------------------------- */

enum win_op { WIN_BACKOFF, WIN_SUCCESS };

struct win_step {
	enum win_op op;
	int open;          /* for backoff */
	msec_t now;
	int cap, allowed;  /* after the step, ceiling 10 */
	msec_t since;
};

static const struct win_step win_steps[] = {
	{ WIN_BACKOFF, 10, 1000, 5, 5, 1000 },
	{ WIN_SUCCESS, 0, 0, 5, 5, 1000 },
	{ WIN_BACKOFF, 5, 2000, 2, 2, 1000 },    /* halves again; since kept */
	{ WIN_BACKOFF, 9, 3000, 1, 1, 1000 },    /* half the cap is lower */
	{ WIN_BACKOFF, 1, 4000, 1, 1, 1000 },    /* never below 1 */
	{ WIN_SUCCESS, 0, 0, 2, 2, 1000 },       /* 1 success at cap 1 */
	{ WIN_SUCCESS, 0, 0, 2, 2, 1000 },
	{ WIN_SUCCESS, 0, 0, 3, 3, 1000 },       /* 2 at cap 2 */
	{ WIN_SUCCESS, 0, 0, 3, 3, 1000 },
	{ WIN_SUCCESS, 0, 0, 3, 3, 1000 },
	{ WIN_SUCCESS, 0, 0, 4, 4, 1000 },       /* 3 at cap 3 */
	{ WIN_BACKOFF, 3, 5000, 1, 1, 1000 },    /* open 3: max(1, 1) */
};

static void
test_window(void **state)
{
	struct limit_window w;
	int successes = 0;

	memset(&w, 0, sizeof(w));

	(void)state;
	assert_int_equal(limit_window_allowed(&w, 10), 10);
	for (size_t i = 0; i < NELEM(win_steps); i++) {
		const struct win_step *s = &win_steps[i];

		if (s->op == WIN_BACKOFF)
			limit_window_backoff(&w, s->open, s->now);
		else
			limit_window_success(&w, 10);
		if (w.cap != s->cap || limit_window_allowed(&w, 10) != s->allowed ||
		    w.since != s->since)
			fail_msg("step %zu: cap %d allowed %d since %lld", i, w.cap,
			    limit_window_allowed(&w, 10), (long long)w.since);
	}
	/* recovery from 1 to the ceiling: 1 + 2 + ... + 9 successes */
	while (w.cap != 0 && successes < 1000) {
		limit_window_success(&w, 10);
		successes++;
	}
	assert_int_equal(successes, 45);
	assert_int_equal(w.cap, 0);
	assert_int_equal(w.since, 0);
	assert_int_equal(limit_window_allowed(&w, 10), 10);
	/* no reduction: success does nothing */
	limit_window_success(&w, 10);
	assert_int_equal(w.cap, 0);
	/* a cap above a lowered ceiling is bounded by it */
	limit_window_backoff(&w, 20, 7000);
	assert_int_equal(w.cap, 10);
	assert_int_equal(limit_window_allowed(&w, 4), 4);
	limit_window_success(&w, 4);
	assert_int_equal(w.cap, 10);
}

/* ---- validation ------------------------------------------------------------ */

struct check_case {
	struct limit_spec spec;
	const char *err;   /* NULL: valid */
};

static const struct check_case check_cases[] = {
	{ { .target = "gmail.com" }, NULL },
	{ { .source = "stream:bulk", .target = "mx:*.yahoodns.net", .simultaneous = 100,
	    .messages_per_hour = 1000, .connections_per_hour = 12,
	    .messages_per_connection = 50, .greylist_interval = 300,
	    .greylist_function = "DOUBLE", .greylist_max = 3600 }, NULL },
	{ { .source = "192.0.2.11", .target = "mx:192.0.2.25", .simultaneous = 1 },
	    NULL },
	{ { .source = "2001:db8::1", .target = "mx:2001:db8::25" }, NULL },
	{ { .source = "$senders", .target = "$yahoo" }, NULL },
	{ { .source = "Example.ORG.", .target = "sub.gmail.com" }, NULL },
	{ { .target = "gmail.com", .greylist_function = "" }, NULL },
	{ { .target = "" }, "target is required" },
	{ { .source = "gmail.com", .target = NULL }, "target is required" },
	{ { .target = "gmail.com", .simultaneous = 101 },
	    "simultaneous connections must be 1 to 100" },
	{ { .target = "gmail.com", .simultaneous = -1 },
	    "simultaneous connections must be 1 to 100" },
	{ { .target = "gmail.com", .messages_per_hour = -1 },
	    "messages per hour must not be negative" },
	{ { .target = "gmail.com", .connections_per_hour = -5 },
	    "connections per hour must not be negative" },
	{ { .target = "gmail.com", .messages_per_connection = -1 },
	    "messages per connection must not be negative" },
	{ { .target = "gmail.com", .greylist_interval = -240 },
	    "greylist interval must not be negative" },
	{ { .target = "gmail.com", .greylist_max = -1 },
	    "greylist maximum must not be negative" },
	{ { .target = "gmail.com", .greylist_function = "x" },
	    "unknown greylist function 'x' (same, double or square)" },
	{ { .target = "mx:" }, "bad target 'mx:' (mx: needs a host pattern or IP)" },
	{ { .target = "mx:a b" }, "bad target 'mx:a b' (mx: needs a host pattern or IP)" },
	{ { .target = "gmail.com", .source = "stream:" },
	    "bad source 'stream:' (stream: needs a name)" },
	{ { .target = "gmail.com", .source = "stream:a b" },
	    "bad source 'stream:a b' (stream: needs a name)" },
	{ { .target = "a..b" }, "bad domain 'a..b'" },
	{ { .target = ".gmail.com" }, "bad domain '.gmail.com'" },
	{ { .target = "-gmail.com" }, "bad domain '-gmail.com'" },
	{ { .target = "gm ail.com" }, "bad domain 'gm ail.com'" },
	{ { .target = "*.gmail.com" }, "bad domain '*.gmail.com'" },
	{ { .target = "gmail.com", .source = "a..b" }, "bad domain 'a..b'" },
	{ { .target = "gmail.com", .source = "999.1.2.3:25" },
	    "bad domain '999.1.2.3:25'" },
	{ { .target = "$" }, "bad target '$' ($ needs a macro name)" },
	{ { .target = "gmail.com", .source = "$" },
	    "bad source '$' ($ needs a macro name)" },
	{ { .target = "192.0.2.25" },
	    "bad target '192.0.2.25' (use mx:192.0.2.25 for an MX IP)" },
};

static void
test_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(check_cases); i++) {
		const struct check_case *c = &check_cases[i];
		char err[160] = "";
		int rc = limit_spec_check(&c->spec, err, sizeof(err));

		if (c->err == NULL && rc != 0)
			fail_msg("case %zu: unexpected error '%s'", i, err);
		if (c->err != NULL && (rc != -1 || strcmp(err, c->err) != 0))
			fail_msg("case %zu: rc %d err '%s' want '%s'", i, rc, err,
			    c->err);
	}
	/* a tiny or absent error buffer is fine */
	{
		struct limit_spec s = { .target = "" };
		char small[4];

		assert_int_equal(limit_spec_check(&s, small, sizeof(small)), -1);
		assert_string_equal(small, "tar");
		assert_int_equal(limit_spec_check(&s, NULL, 0), -1);
	}
}

static void
test_add_errors(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec s = { .id = 1, .source = "$senders", .target = "gmail.com" };
	char err[160] = "";

	(void)state;
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown macro $senders");
	s.source = "";
	s.target = "$foo";
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown macro $foo");
	s.target = "gmail.com";
	s.simultaneous = 101;
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "simultaneous connections must be 1 to 100");
	assert_int_equal(limitset_count(ls), 0);
	s.simultaneous = 0;
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), 0);
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "duplicate limit id 1");
	s.id = 0;
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "limit id must be positive");
	assert_int_equal(limitset_count(ls), 1);
	/* macro names are checked; case-blind lookup */
	assert_int_equal(limitset_macro(ls, "", senders, 2), -1);
	assert_int_equal(limitset_macro(ls, "a b", senders, 2), -1);
	assert_int_equal(limitset_macro(ls, "Senders", senders, 2), 0);
	s.id = 2;
	s.source = "$SENDERS";
	assert_int_equal(limitset_add(ls, &s, err, sizeof(err)), 0);
	limitset_free(ls);
	limitset_free(NULL);
}

static void
test_describe(void **state)
{
	struct limitset *ls = limitset_new();
	struct limit_spec a = { .id = 3, .source = "stream:bulk", .target = "gmail.com" };
	struct limit_spec b = { .id = 5, .target = "mx:*.yahoodns.net" };
	char out[128];

	(void)state;
	add_ok(ls, &a);
	add_ok(ls, &b);
	assert_string_equal(limitset_describe(ls, 3, out, sizeof(out)),
	    "limit 3 (stream:bulk -> gmail.com)");
	assert_string_equal(limitset_describe(ls, 5, out, sizeof(out)),
	    "limit 5 (-> mx:*.yahoodns.net)");
	assert_string_equal(limitset_describe(ls, 0, out, sizeof(out)),
	    "server default");
	assert_string_equal(limitset_describe(ls, 9, out, sizeof(out)), "limit 9");
	limitset_free(ls);
}

static void
test_window_pause(void **state)
{
	struct limit_window w;

	(void)state;
	memset(&w, 0, sizeof(w));
	assert_false(limit_window_is_paused(&w, 0));
	limit_window_backoff(&w, 10, 1000);
	assert_true(limit_window_is_paused(&w, 1999));
	assert_false(limit_window_is_paused(&w, 2000));     /* 1 s */
	limit_window_backoff(&w, 5, 2000);
	assert_true(limit_window_is_paused(&w, 3999));
	assert_false(limit_window_is_paused(&w, 4000));     /* 2 s */
	for (int i = 0; i < 30; i++)
		limit_window_backoff(&w, 1, 10000);
	assert_int_equal(w.paused_until, 10000 + LIMIT_PAUSE_MAX_MS); /* capped */
	limit_window_success(&w, 10);                       /* the run ends */
	limit_window_backoff(&w, 1, 20000);
	assert_int_equal(w.paused_until, 21000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_match_max),
		cmocka_unit_test(test_domain_and_glob),
		cmocka_unit_test(test_domainset_shares_budget),
		cmocka_unit_test(test_stream_shares_budget),
		cmocka_unit_test(test_most_restrictive),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_gcra_connections),
		cmocka_unit_test(test_messages_per_hour),
		cmocka_unit_test(test_carry),
		cmocka_unit_test(test_carry_same_rate),
		cmocka_unit_test(test_greylist),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_window_pause),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
