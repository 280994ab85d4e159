/* Tests for settings: the table of keys, defaults, parsing, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/settings.h"

static void
test_defaults(void **state)
{
	struct settings s;

	(void)state;
	settings_defaults(&s);
	assert_string_equal(s.data_dir, "/var/lib/sluice");
	assert_string_equal(s.database, "/var/lib/sluice/sluice.db");
	assert_string_equal(s.admin_token_file, "/var/lib/sluice/admin.token");
	assert_string_equal(s.verp_key_file, "/var/lib/sluice/verp.key");
	assert_string_equal(s.admin_listen, "127.0.0.1:8025");
	assert_string_equal(s.log_level, "info");
	assert_string_equal(s.dns_resolver, "");
	assert_true(s.hostname[0] != '\0');
	assert_string_equal(s.bounce_domain, s.hostname);
	assert_int_equal(s.dns_timeout_ms, 5000);
	assert_int_equal(s.dns_cache_max, 100000);
	assert_int_equal(s.smtp_port, 25);
	assert_int_equal(s.retry_count, 7);
	assert_int_equal(s.retry_schedule[0], 300);
	assert_int_equal(s.retry_schedule[4], 3600);
	assert_int_equal(s.retry_schedule[6], 4 * 3600);
	assert_int_equal(s.max_age_s, 5 * 86400);
	assert_int_equal(s.default_simultaneous, 10);
	assert_int_equal(s.pump_window, 10000);
	assert_int_equal(s.message_max_bytes, 50 * 1024 * 1024);
	assert_int_equal(s.tls, 1);
	assert_int_equal(s.idle_s, 5);
	assert_int_equal(s.t_connect, 30);
	assert_int_equal(s.t_greeting, 300);
	assert_int_equal(s.t_ehlo, 300);
	assert_int_equal(s.t_starttls, 120);
	assert_int_equal(s.t_mail, 300);
	assert_int_equal(s.t_rcpt, 300);
	assert_int_equal(s.t_data, 120);
	assert_int_equal(s.t_data_block, 180);
	assert_int_equal(s.t_dot, 600);
	assert_int_equal(s.t_rset, 60);
	assert_int_equal(s.t_quit, 60);
	assert_int_equal(s.batch_max_rows, 500);
	assert_int_equal(s.batch_max_ms, 200);
	settings_fini(&s);
	settings_fini(&s); /* twice is harmless */
}

static const char full_conf[] =
    "# every key\n"
    "[server]\n"
    "data_dir = /srv/sluice\n"
    "hostname = mx1.example.org\n"
    "log_level = debug\n"
    "\n"
    "[admin]\n"
    "listen = 127.0.0.5:9000\n"
    "token_file = /etc/sluice/token\n"
    "[dns]\n"
    "resolver = 127.0.0.53:5353\n"
    "timeout = 1500ms\n"
    "cache_max = 5000\n"
    "[delivery]\n"
    "bounce_domain = bounces.example.org\n"
    "smtp_port = 2525\n"
    "retry_schedule = 1m,2m , 1h\n"
    "max_age = 2d\n"
    "default_simultaneous = 100\n"
    "pump_window = 50\n"
    "message_max_bytes = 10M\n"
    "starttls = no\n"
    "idle = 0\n"
    "[timeouts]\n"
    "connect = 10s\n"
    "greeting = 1m\n"
    "ehlo = 2m\n"
    "starttls = 3m\n"
    "mail = 4m\n"
    "rcpt = 5m\n"
    "data = 6m\n"
    "data_block = 7m\n"
    "dot = 1h\n"
    "rset = 8\n"
    "quit = 9s\n"
    "[store]\n"
    "batch_max_rows = 100\n"
    "batch_max_ms = 2s\n";

static void
test_full_file(void **state)
{
	struct settings s;
	char err[256] = "";
	char path[] = "/tmp/sluice-settings-XXXXXX";
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_conf, strlen(full_conf)),
	    (ssize_t)strlen(full_conf));
	close(fd);
	settings_defaults(&s);
	assert_int_equal(settings_load(&s, path, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(s.path, path);
	assert_string_equal(s.data_dir, "/srv/sluice");
	assert_string_equal(s.database, "/srv/sluice/sluice.db");
	assert_string_equal(s.verp_key_file, "/srv/sluice/verp.key");
	assert_string_equal(s.admin_token_file, "/etc/sluice/token");
	assert_string_equal(s.hostname, "mx1.example.org");
	assert_string_equal(s.log_level, "debug");
	assert_string_equal(s.admin_listen, "127.0.0.5:9000");
	assert_string_equal(s.dns_resolver, "127.0.0.53:5353");
	assert_int_equal(s.dns_timeout_ms, 1500);
	assert_int_equal(s.dns_cache_max, 5000);
	assert_string_equal(s.bounce_domain, "bounces.example.org");
	assert_int_equal(s.smtp_port, 2525);
	assert_int_equal(s.retry_count, 3);
	assert_int_equal(s.retry_schedule[0], 60);
	assert_int_equal(s.retry_schedule[1], 120);
	assert_int_equal(s.retry_schedule[2], 3600);
	assert_int_equal(s.max_age_s, 2 * 86400);
	assert_int_equal(s.default_simultaneous, 100);
	assert_int_equal(s.pump_window, 50);
	assert_int_equal(s.message_max_bytes, 10 * 1024 * 1024);
	assert_int_equal(s.tls, 0);
	assert_int_equal(s.idle_s, 0);
	assert_int_equal(s.t_connect, 10);
	assert_int_equal(s.t_greeting, 60);
	assert_int_equal(s.t_ehlo, 120);
	assert_int_equal(s.t_starttls, 180);
	assert_int_equal(s.t_mail, 240);
	assert_int_equal(s.t_rcpt, 300);
	assert_int_equal(s.t_data, 360);
	assert_int_equal(s.t_data_block, 420);
	assert_int_equal(s.t_dot, 3600);
	assert_int_equal(s.t_rset, 8);
	assert_int_equal(s.t_quit, 9);
	assert_int_equal(s.batch_max_rows, 100);
	assert_int_equal(s.batch_max_ms, 2000);
	settings_fini(&s);
}

static void
test_missing_file(void **state)
{
	struct settings s;
	char err[256] = "";

	(void)state;
	settings_defaults(&s);
	assert_int_equal(settings_load(&s, "/nonexistent/sluice.conf", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/sluice.conf: "));
	assert_int_equal(s.smtp_port, 25);
	settings_fini(&s);
}

struct err_case {
	const char *text;
	const char *err; /* exact */
};

static const struct err_case err_cases[] = {
	{ "[delivery]\nfoo = 1\n", "t.conf:2: unknown key 'foo' in section [delivery]" },
	{ "# c\n\n[x]\n", "t.conf:3: unknown section [x]" },
	{ "[timeouts]\nconnect = 1s\ngreeting = 0\n", "t.conf:3: timeouts.greeting: 0 is below the minimum 1" },
	{ "[delivery]\ndefault_simultaneous = 101\n", "t.conf:2: delivery.default_simultaneous: 101 is above the maximum 100" },
	{ "[delivery]\ndefault_simultaneous = 0\n", "t.conf:2: delivery.default_simultaneous: 0 is below the minimum 1" },
	{ "[delivery]\nsmtp_port = 65536\n", "t.conf:2: delivery.smtp_port: 65536 is above the maximum 65535" },
	{ "[delivery]\nsmtp_port = 25x\n", "t.conf:2: delivery.smtp_port: '25x' is not a valid integer" },
	{ "[delivery]\nmax_age = 5y\n", "t.conf:2: delivery.max_age: '5y' is not a valid duration" },
	{ "[delivery]\nstarttls = maybe\n", "t.conf:2: delivery.starttls: 'maybe' is not a valid boolean (yes/no)" },
	{ "[delivery]\nmessage_max_bytes = 3G\n", "t.conf:2: delivery.message_max_bytes: 3G is above the maximum 2147483647" },
	{ "[delivery]\nretry_schedule = 5m,,10m\n", "t.conf:2: delivery.retry_schedule: empty item in list" },
	{ "[delivery]\nretry_schedule =\n", "t.conf:2: delivery.retry_schedule: empty item in list" },
	{ "[delivery]\nretry_schedule = 5m, 0\n", "t.conf:2: delivery.retry_schedule: 0 is below the minimum 1" },
	{ "[delivery]\nretry_schedule = 5m, 8d\n", "t.conf:2: delivery.retry_schedule: 8d is above the maximum 604800" },
	{ "[delivery]\nretry_schedule = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33\n",
	  "t.conf:2: delivery.retry_schedule: more than 32 items" },
	{ "data_dir = /x\n", "t.conf:1: key 'data_dir' outside any section" },
	{ "[server]\ndata_dir =\n", "t.conf:2: server.data_dir: may not be empty" },
	{ "[server]\nlog_level = loud\n", "t.conf:2: server.log_level: 'loud' is not one of trace, debug, info, warn, error" },
	{ "[delivery]\ngreylist_function = triple\n", "t.conf:2: delivery.greylist_function: 'triple' is not one of same, double, square" },
	{ "[server]\n\n\nhostname = a\nhostname = b\n", "t.conf:5: server.hostname is set twice" },
	{ "[server main]\n", "t.conf:1: section [server] takes no name" },
	{ "[dns]\ntimeout = 50ms\n", "t.conf:2: dns.timeout: 50ms is below the minimum 100" },
	{ "[store]\nbatch_max_ms = 11s\n", "t.conf:2: store.batch_max_ms: 11s is above the maximum 10000" },
	{ "[store]\nbatch_max_rows\n", "t.conf:2: expected key = value" },
	{ "[server]\nhostname = \"open\n", "t.conf:2: bad quoted value for hostname" },
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		struct settings s;
		char err[256] = "";

		settings_defaults(&s);
		if (settings_load_string(&s, err_cases[i].text, "t.conf", err,
		    sizeof(err)) != -1 || strcmp(err, err_cases[i].err) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, err,
			    err_cases[i].err);
		/* A bad file changes nothing. */
		assert_int_equal(s.smtp_port, 25);
		assert_int_equal(s.retry_count, 7);
		assert_string_equal(s.data_dir, "/var/lib/sluice");
		assert_string_equal(s.path, "");
		settings_fini(&s);
	}
}

struct range_case {
	const char *text;
	int ok;
};

static const struct range_case range_cases[] = {
	{ "[delivery]\ndefault_simultaneous = 1\n", 1 },
	{ "[delivery]\ndefault_simultaneous = 100\n", 1 },
	{ "[delivery]\nsmtp_port = 1\n", 1 },
	{ "[delivery]\nsmtp_port = 0\n", 0 },
	{ "[delivery]\nmax_age = 1m\n", 1 },
	{ "[delivery]\nmax_age = 59s\n", 0 },
	{ "[delivery]\nmax_age = 60d\n", 1 },
	{ "[delivery]\nmax_age = 61d\n", 0 },
	{ "[delivery]\nmessage_max_bytes = 1k\n", 1 },
	{ "[delivery]\nmessage_max_bytes = 1023\n", 0 },
	{ "[delivery]\nidle = -1\n", 0 },
	{ "[dns]\ntimeout = 60s\n", 1 },
	{ "[dns]\ntimeout = 61s\n", 0 },
	{ "[dns]\ncache_max = 0\n", 1 },
	{ "[timeouts]\ndot = 1d\n", 1 },
	{ "[timeouts]\ndot = 25h\n", 0 },
	{ "[store]\nbatch_max_rows = 100001\n", 0 },
	{ "[delivery]\nstarttls = ON\n", 1 },
	{ "[server]\nlog_level = warn\n", 1 },
};

static void
test_ranges(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
		struct settings s;
		char err[256] = "";
		int r;

		settings_defaults(&s);
		r = settings_load_string(&s, range_cases[i].text, "r.conf", err,
		    sizeof(err));
		if ((r == 0) != range_cases[i].ok)
			fail_msg("case %zu (%s): r=%d err=%s", i, range_cases[i].text,
			    r, err);
		settings_fini(&s);
	}
}

static void
test_duration_list(void **state)
{
	struct settings s;
	char err[256] = "";

	(void)state;
	settings_defaults(&s);
	assert_int_equal(settings_load_string(&s,
	    "[delivery]\nretry_schedule = \" 30s ,1m,  1h,1d ,90\"\n", "l.conf",
	    err, sizeof(err)), 0);
	assert_int_equal(s.retry_count, 5);
	assert_int_equal(s.retry_schedule[0], 30);
	assert_int_equal(s.retry_schedule[1], 60);
	assert_int_equal(s.retry_schedule[2], 3600);
	assert_int_equal(s.retry_schedule[3], 86400);
	assert_int_equal(s.retry_schedule[4], 90);
	assert_int_equal(settings_load_string(&s,
	    "[delivery]\nretry_schedule = 15m\n", "l.conf", err, sizeof(err)), 0);
	assert_int_equal(s.retry_count, 1);
	assert_int_equal(s.retry_schedule[0], 900);
	settings_fini(&s);
}

static void
test_derived(void **state)
{
	struct settings s;
	char err[256] = "";

	(void)state;
	settings_defaults(&s);
	assert_int_equal(settings_load_string(&s,
	    "[server]\ndata_dir = /data/x\nhostname = h.example\n", "d.conf",
	    err, sizeof(err)), 0);
	assert_string_equal(s.database, "/data/x/sluice.db");
	assert_string_equal(s.admin_token_file, "/data/x/admin.token");
	assert_string_equal(s.verp_key_file, "/data/x/verp.key");
	assert_string_equal(s.bounce_domain, "h.example");
	/* Loading again starts from the defaults, not the previous file. */
	assert_int_equal(settings_load_string(&s,
	    "[server]\ndatabase = /db/s.db\n", "d2.conf", err, sizeof(err)), 0);
	assert_string_equal(s.data_dir, "/var/lib/sluice");
	assert_string_equal(s.database, "/db/s.db");
	assert_string_equal(s.admin_token_file, "/var/lib/sluice/admin.token");
	assert_string_equal(s.path, "d2.conf");
	settings_fini(&s);
}

static void
test_dump_roundtrip(void **state)
{
	struct settings a, b;
	char *text = NULL;
	size_t len = 0;
	char err[256] = "";
	FILE *f;

	(void)state;
	settings_defaults(&a);
	assert_int_equal(settings_load_string(&a, full_conf, "f.conf", err,
	    sizeof(err)), 0);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	settings_dump(&a, f);
	fclose(f);
	assert_non_null(strstr(text, "[delivery]\n"));
	assert_non_null(strstr(text, "retry_schedule = 1m, 2m, 1h\n"));
	assert_non_null(strstr(text, "timeout = 1500ms\n"));
	assert_non_null(strstr(text, "message_max_bytes = 10M\n"));
	assert_non_null(strstr(text, "starttls = no\n"));
	settings_defaults(&b);
	if (settings_load_string(&b, text, "dump", err, sizeof(err)) != 0)
		fail_msg("dump does not reload: %s\n%s", err, text);
	assert_string_equal(a.database, b.database);
	assert_string_equal(a.hostname, b.hostname);
	assert_int_equal(a.dns_timeout_ms, b.dns_timeout_ms);
	assert_int_equal(a.retry_count, b.retry_count);
	assert_memory_equal(a.retry_schedule, b.retry_schedule,
	    a.retry_count * sizeof(a.retry_schedule[0]));
	assert_int_equal(a.t_rset, b.t_rset);
	assert_int_equal(a.batch_max_ms, b.batch_max_ms);
	free(text);
	settings_fini(&a);
	settings_fini(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_duration_list),
		cmocka_unit_test(test_derived),
		cmocka_unit_test(test_dump_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
