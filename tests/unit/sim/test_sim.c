/*
 * test_sim: the simulator in-process (its event loop in a thread), talked to
 * by a raw blocking SMTP client bound to 127.0.0.11 or 127.0.0.12. The
 * providers listen on 127.0.3.x; the record is read back with jansson.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "sim/sim.h"
#include "util/log.h"

#define IP_A "127.0.0.11"
#define IP_B "127.0.0.12"
#define PORT 2601

static const char scenario_fmt[] =
    "# test scenario\n"
    "[sim]\n"
    "record = %s\n"
    "record_data = yes\n"
    "seed = 7\n"
    "idle_timeout = 10\n"
    "[provider alpha]\n"
    "domains = a.test, a2.test\n"
    "mx = 127.0.3.21:2601\n"
    "unknown_users = ^(nobody|bounce).*$\n"
    "[provider grey]\n"
    "domains = g.test\n"
    "mx = 127.0.3.22:2601\n"
    "greylist = 1\n"
    "[provider blocky]\n"
    "domains = b.test\n"
    "mx = 127.0.3.23:2601, 127.0.3.24:2601\n"
    "block = 127.0.0.12 at=greeting text=\"554 5.7.1 Service unavailable; Client host "
    "[{ip}] blocked using zen.spamhaus.org\"\n"
    "block = 127.0.0.11 at=rcpt mx=127.0.3.24 text=\"550 5.7.1 Mail from [{ip}] "
    "refused by policy\"\n"
    "[provider thaw]\n"
    "domains = t.test\n"
    "mx = 127.0.3.25:2601\n"
    "block = 127.0.0.12 unblock_after=1 text=\"421 4.7.0 [{ip}] temporarily "
    "blocked\"\n"
    "[provider ratey]\n"
    "domains = r.test\n"
    "mx = 127.0.3.26:2601\n"
    "rate_limit = 2/60\n"
    "[provider busy]\n"
    "domains = c.test\n"
    "mx = 127.0.3.27:2601\n"
    "max_connections_per_ip = 2\n"
    "latency_ms = 10    # a comment after a value\n"
    "[provider flaky]\n"
    "domains = f.test\n"
    "mx = 127.0.3.28:2601\n"
    "tempfail = 1\n";

struct simrun {
	struct event_base *base;
	struct sim *sim;
	pthread_t thread;
	bool halted;
	char dir[64];
	char scenario[128];
	char record[128];
};

static void *
simrun_main(void *arg)
{
	struct simrun *r = arg;

	event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
simrun_setup(void **state)
{
	struct simrun *r = calloc(1, sizeof(*r));
	char text[sizeof(scenario_fmt) + 256], err[512];

	snprintf(r->dir, sizeof(r->dir), "/tmp/test_sim.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->scenario, sizeof(r->scenario), "%s/scenario.conf", r->dir);
	snprintf(r->record, sizeof(r->record), "%s/record.jsonl", r->dir);
	snprintf(text, sizeof(text), scenario_fmt, r->record);
	write_file(r->scenario, text);
	r->base = event_base_new();
	r->sim = sim_new(r->base, r->scenario, err, sizeof(err));
	if (r->sim == NULL)
		fail_msg("sim_new: %s", err);
	if (sim_start(r->sim, err, sizeof(err)) < 0)
		fail_msg("sim_start: %s", err);
	pthread_create(&r->thread, NULL, simrun_main, r);
	*state = r;
	return 0;
}

static void
simrun_halt(struct simrun *r)
{
	if (r->halted)
		return;
	r->halted = true;
	event_base_loopbreak(r->base);
	pthread_join(r->thread, NULL);
	sim_stop(r->sim);
}

static int
simrun_teardown(void **state)
{
	struct simrun *r = *state;

	simrun_halt(r);
	sim_free(r->sim);
	event_base_free(r->base);
	unlink(r->scenario);
	unlink(r->record);
	rmdir(r->dir);
	free(r);
	return 0;
}

/* ---- raw client ----------------------------------------------------------- */

static int
client_open(const char *src, const char *mx_ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, src, &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	sa.sin_port = htons(PORT);
	inet_pton(AF_INET, mx_ip, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("connect %s: %s", mx_ip, strerror(errno));
	return fd;
}

/* Read one reply (all its lines) into text; returns the code, 0 on EOF. */
static int
client_reply(int fd, char *text, size_t n)
{
	size_t len = 0;

	text[0] = '\0';
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return 0;
		if (len + 1 < n) {
			text[len++] = c;
			text[len] = '\0';
		}
		if (c == '\n') {
			char *line = text + len - 1;
			while (line > text && line[-1] != '\n')
				line--;
			if (line[0] && strlen(line) > 4 && line[3] == ' ')
				return (int)strtol(line, NULL, 10);
		}
	}
}

static int
client_cmd(int fd, char *text, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
client_cmd(int fd, char *text, size_t n, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	memcpy(line + len, "\r\n", 2);
	assert_int_equal(write(fd, line, (size_t)len + 2), len + 2);
	return client_reply(fd, text, n);
}

static bool
has_text(const char *text, const char *want)
{
	return want == NULL || strstr(text, want) != NULL;
}

#define EXPECT(fd, code, want, ...) do {                                    \
	char t_[2048];                                                      \
	int c_ = client_cmd(fd, t_, sizeof(t_), __VA_ARGS__);               \
	if (c_ != (code) || !has_text(t_, (want)))         \
		fail_msg("%s:%d: got %d \"%s\", want %d \"%s\"", __FILE__,  \
		    __LINE__, c_, t_, code, (want) ? (want) : "");          \
} while (0)

#define EXPECT_GREETING(fd, code, want) do {                                \
	char t_[2048];                                                      \
	int c_ = client_reply(fd, t_, sizeof(t_));                          \
	if (c_ != (code) || !has_text(t_, (want)))         \
		fail_msg("%s:%d: greeting %d \"%s\", want %d", __FILE__,    \
		    __LINE__, c_, t_, code);                                \
} while (0)

/* ---- record ---------------------------------------------------------------- */

/* The records of one type (a new array). */
static json_t *
records(struct simrun *r, const char *type)
{
	FILE *f = fopen(r->record, "r");
	char line[65536];
	json_t *out = json_array();

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		if (o == NULL)
			fail_msg("bad record line: %s (%s)", line, e.text);
		if (strcmp(json_string_value(json_object_get(o, "type")), type) == 0)
			json_array_append(out, o);
		json_decref(o);
	}
	fclose(f);
	return out;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- tests ----------------------------------------------------------------- */

static void
test_accept_and_record(void **state)
{
	struct simrun *r = *state;
	struct sim_peer_counters pc;
	struct sim_counters c;
	json_t *msgs, *m, *conns, *sum;
	int fd = client_open(IP_A, "127.0.3.21");

	EXPECT_GREETING(fd, 220, "ESMTP");
	EXPECT(fd, 250, "PIPELINING", "EHLO sender.test");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd, 250, NULL, "RCPT TO:<u@a.test>");
	EXPECT(fd, 250, NULL, "RCPT TO:<v@A2.test>");
	EXPECT(fd, 550, "5.1.1 <nobody@a.test>: Recipient address rejected: User unknown",
	    "RCPT TO:<nobody@a.test>");
	EXPECT(fd, 550, "5.7.1 <x@other.test>: Relay access denied",
	    "RCPT TO:<x@other.test>");
	EXPECT(fd, 354, NULL, "DATA");
	EXPECT(fd, 250, "2.0.0 Ok: queued as",
	    "Message-ID: <m1@s.test>\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.");
	EXPECT(fd, 221, NULL, "QUIT");
	close(fd);

	assert_int_equal(sim_client_counters(r->sim, IP_A, &pc), 0);
	assert_int_equal(pc.messages, 1);
	assert_int_equal(sim_client_counters(r->sim, IP_B, &pc), -1);
	simrun_halt(r);
	sim_counters(r->sim, &c);
	assert_int_equal(c.messages, 1);
	assert_int_equal(c.recipients, 2);
	assert_int_equal(c.rejections, 2);

	msgs = records(r, "message");
	assert_int_equal(json_array_size(msgs), 1);
	m = json_array_get(msgs, 0);
	assert_string_equal(jstr(m, "provider"), "alpha");
	assert_string_equal(jstr(m, "mx"), "127.0.3.21:2601");
	assert_string_equal(jstr(m, "client_ip"), IP_A);
	assert_string_equal(jstr(m, "helo"), "sender.test");
	assert_string_equal(jstr(m, "mail_from"), "list@s.test");
	assert_string_equal(jstr(m, "message_id"), "<m1@s.test>");
	assert_string_equal(jstr(m, "data"),
	    "Message-ID: <m1@s.test>\r\nSubject: hi\r\n\r\n.dot\r\nbody\r\n");
	assert_int_equal(json_array_size(json_object_get(m, "rcpts")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(m, "rcpts"), 1)),
	    "v@A2.test");
	json_decref(msgs);

	conns = records(r, "close");
	assert_int_equal(json_array_size(conns), 1);
	assert_string_equal(jstr(json_array_get(conns, 0), "reason"), "quit");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(conns, 0),
	    "rejections")), 2);
	json_decref(conns);
	conns = records(r, "reject");
	assert_int_equal(json_array_size(conns), 2);
	assert_string_equal(jstr(json_array_get(conns, 0), "reason"), "unknown_user");
	assert_string_equal(jstr(json_array_get(conns, 1), "reason"), "relay");
	json_decref(conns);
	sum = records(r, "summary");
	assert_int_equal(json_array_size(sum), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(sum, 0),
	    "messages")), 1);
	json_decref(sum);
}

static void
test_greylist(void **state)
{
	int fd = client_open(IP_A, "127.0.3.22");
	int fd2;

	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "HELO me");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd, 450, "4.2.0 <u@g.test>: Recipient address rejected: Greylisted, see "
	    "http://postgrey.schweikert.ch/help/g.test.html", "RCPT TO:<u@g.test>");
	EXPECT(fd, 450, "Greylisted", "RCPT TO:<u@g.test>");
	usleep(1100 * 1000);
	EXPECT(fd, 250, NULL, "RCPT TO:<u@g.test>");
	/* A new triple is greylisted again: other recipient, other client. */
	EXPECT(fd, 450, "Greylisted", "RCPT TO:<w@g.test>");
	fd2 = client_open(IP_B, "127.0.3.22");
	EXPECT_GREETING(fd2, 220, NULL);
	EXPECT(fd2, 250, NULL, "HELO me");
	EXPECT(fd2, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd2, 450, "Greylisted", "RCPT TO:<u@g.test>");
	close(fd2);
	EXPECT(fd, 354, NULL, "DATA");
	EXPECT(fd, 250, NULL, "x\r\n.");
	close(fd);
}

static void
test_block(void **state)
{
	int fd;

	/* 127.0.0.12 is refused at greeting on both MX hosts, with the text. */
	for (int i = 0; i < 2; i++) {
		fd = client_open(IP_B, i ? "127.0.3.24" : "127.0.3.23");
		EXPECT_GREETING(fd, 554, "554 5.7.1 Service unavailable; Client host "
		    "[127.0.0.12] blocked using zen.spamhaus.org");
		EXPECT(fd, 503, NULL, "MAIL FROM:<list@s.test>");
		EXPECT(fd, 221, NULL, "QUIT");
		close(fd);
	}
	/* 127.0.0.11 is blocked at RCPT on the second MX only. */
	fd = client_open(IP_A, "127.0.3.24");
	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "EHLO me");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd, 550, "550 5.7.1 Mail from [127.0.0.11] refused by policy",
	    "RCPT TO:<u@b.test>");
	close(fd);
	fd = client_open(IP_A, "127.0.3.23");
	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "EHLO me");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd, 250, NULL, "RCPT TO:<u@b.test>");
	close(fd);
}

static void
test_unblock_after(void **state)
{
	char text[512];
	int fd = client_open(IP_B, "127.0.3.25");

	EXPECT_GREETING(fd, 421, "421 4.7.0 [127.0.0.12] temporarily blocked");
	assert_int_equal(client_reply(fd, text, sizeof(text)), 0); /* closed */
	close(fd);
	fd = client_open(IP_A, "127.0.3.25");
	EXPECT_GREETING(fd, 220, NULL);
	close(fd);
	usleep(1100 * 1000);
	fd = client_open(IP_B, "127.0.3.25");
	EXPECT_GREETING(fd, 220, NULL);
	close(fd);
}

static void
test_rate_limit(void **state)
{
	int fd = client_open(IP_A, "127.0.3.26");

	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "EHLO me");
	for (int i = 0; i < 2; i++) {
		EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
		EXPECT(fd, 250, NULL, "RCPT TO:<u%d@r.test>", i);
		EXPECT(fd, 354, NULL, "DATA");
		EXPECT(fd, 250, NULL, "m%d\r\n.", i);
	}
	EXPECT(fd, 450, "4.7.1 Error: too many messages from [127.0.0.11], slow down",
	    "MAIL FROM:<list@s.test>");
	EXPECT(fd, 450, "slow down", "MAIL FROM:<list@s.test>");
	close(fd);
	/* Other client IPs have their own budget. */
	fd = client_open(IP_B, "127.0.3.26");
	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "EHLO me");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	close(fd);
}

static void
test_max_connections(void **state)
{
	struct simrun *r = *state;
	struct sim_peer_counters pc;
	char text[512];
	int fd[3], other;

	fd[0] = client_open(IP_A, "127.0.3.27");
	EXPECT_GREETING(fd[0], 220, NULL);
	fd[1] = client_open(IP_A, "127.0.3.27");
	EXPECT_GREETING(fd[1], 220, NULL);
	fd[2] = client_open(IP_A, "127.0.3.27");
	EXPECT_GREETING(fd[2], 421, "421 4.7.0 mx.c.test Error: too many connections "
	    "from 127.0.0.11");
	assert_int_equal(client_reply(fd[2], text, sizeof(text)), 0);
	close(fd[2]);
	other = client_open(IP_B, "127.0.3.27");
	EXPECT_GREETING(other, 220, NULL);
	assert_int_equal(sim_mx_counters(r->sim, "127.0.3.27:2601", &pc), 0);
	assert_int_equal(pc.peak, 3);      /* the refused one had closed */
	assert_int_equal(pc.concurrent, 3);
	assert_int_equal(pc.connections, 4);
	assert_int_equal(sim_client_counters(r->sim, IP_A, &pc), 0);
	assert_int_equal(pc.peak, 3);
	assert_int_equal(pc.connections, 3);
	EXPECT(fd[0], 221, NULL, "QUIT");
	assert_int_equal(client_reply(fd[0], text, sizeof(text)), 0);
	close(fd[0]);
	/* The slot is free again. */
	fd[2] = client_open(IP_A, "127.0.3.27");
	EXPECT_GREETING(fd[2], 220, NULL);
	close(fd[2]);
	close(fd[1]);
	close(other);
}

static void
test_tempfail(void **state)
{
	int fd = client_open(IP_A, "127.0.3.28");

	EXPECT_GREETING(fd, 220, NULL);
	EXPECT(fd, 250, NULL, "EHLO me");
	EXPECT(fd, 250, NULL, "MAIL FROM:<list@s.test>");
	EXPECT(fd, 451, "451 4.3.0 <u@f.test>: Temporary lookup failure",
	    "RCPT TO:<u@f.test>");
	EXPECT(fd, 221, NULL, "QUIT");
	close(fd);
}

struct bad_case {
	const char *text;
	const char *want;   /* after "FILE:" */
};

static const struct bad_case bad_cases[] = {
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1:2525\ncolour = red\n",
	    "4: unknown key 'colour' in [provider p]" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1:2525\nunknown_users = ^(a\n",
	    "4: bad regex in unknown_users" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.300:2525\n",
	    "3: bad address '127.0.0.300:2525' in mx" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1:99999\n",
	    "3: bad address '127.0.0.1:99999' in mx" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1\nblock = host.test at=rcpt\n",
	    "4: block: bad address" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1\nblock = 127.0.0.2 at=later\n",
	    "4: block: bad stage 'later'" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1\nblock = 127.0.0.2 text=\"oops\"\n",
	    "4: block: text must start with a 4xx or 5xx reply code" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1\nrate_limit = 10\n",
	    "4: bad rate_limit '10'" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1\ntempfail = 2\n",
	    "4: bad tempfail '2'" },
	{ "[sim]\nseed = 1\nrecord_data = maybe\n", "3: bad value 'maybe' for record_data" },
	{ "[providers p]\n", "1: unknown section [providers p]" },
	{ "\n\n[provider p]\ndomains = a.test\n", "3: provider p has no mx addresses" },
	{ "[provider p]\ndomains = a.test\nmx = 127.0.0.1:25\n[provider q]\n"
	    "domains = b.test\nmx = 127.0.0.1\n",
	    "4: mx 127.0.0.1:25 of provider q is already used by provider p" },
	{ "[provider p]\nmx = 127.0.0.1\n[provider p]\n", "3: provider 'p' defined twice" },
};

static void
test_bad_scenarios(void **state)
{
	char path[] = "/tmp/test_sim_bad.XXXXXX";
	int fd = mkstemp(path);
	struct event_base *base = event_base_new();

	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char err[512], want[512];
		struct sim *sim;

		write_file(path, bad_cases[i].text);
		sim = sim_new(base, path, err, sizeof(err));
		if (sim != NULL)
			fail_msg("case %zu: accepted", i);
		snprintf(want, sizeof(want), "%s:%s", path, bad_cases[i].want);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: error \"%s\", want \"%s\"", i, err, want);
	}
	unlink(path);
	event_base_free(base);
}

static void
test_bind_failure(void **state)
{
	/* Two sims on the same address: the second cannot listen. */
	struct event_base *base = event_base_new();
	const char *text = "[provider p]\ndomains = a.test\nmx = 127.0.3.30:2601\n";
	char err[512];
	struct sim *a = sim_new_string(base, text, "one", err, sizeof(err));
	struct sim *b = sim_new_string(base, text, "two", err, sizeof(err));

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(sim_start(a, err, sizeof(err)), 0);
	assert_int_equal(sim_start(b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot listen on 127.0.3.30:2601"));
	sim_free(a);
	sim_free(b);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accept_and_record, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_greylist, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_block, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_unblock_after, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_max_connections, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test_setup_teardown(test_tempfail, simrun_setup,
		    simrun_teardown),
		cmocka_unit_test(test_bad_scenarios),
		cmocka_unit_test(test_bind_failure),
	};

	evthread_use_pthreads();
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
