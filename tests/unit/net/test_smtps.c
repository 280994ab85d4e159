/*
 * test_smtps: the server session driven over a socketpair by a scripted raw
 * client, in one thread: each step writes its bytes, then runs the event
 * loop until the expected number of replies has arrived.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/smtps.h"
#include "util/buf.h"
#include "util/timeutil.h"

/* ---- parser table -------------------------------------------------------- */

struct parse_case {
	const char *line;
	int result;
	enum smtps_verb verb;
	const char *path;
	const char *arg;
	size_t nparams;
	const char *param_key;
	const char *param_value;
};

static const struct parse_case parse_cases[] = {
	{ "EHLO client.example", 0, SMTPS_VERB_EHLO, "", "client.example", 0, NULL, NULL },
	{ "helo  x.test  \r\n", 0, SMTPS_VERB_HELO, "", "x.test", 0, NULL, NULL },
	{ "EHLO", SMTPS_PARSE_SYNTAX, SMTPS_VERB_EHLO, "", "", 0, NULL, NULL },
	{ "MAIL FROM:<a@b.test>", 0, SMTPS_VERB_MAIL, "a@b.test", "", 0, NULL, NULL },
	{ "mail from:<>", 0, SMTPS_VERB_MAIL, "", "", 0, NULL, NULL },
	{ "MAIL FROM: <a@b.test> SIZE=1000 BODY=8BITMIME", 0, SMTPS_VERB_MAIL,
	    "a@b.test", "", 2, "SIZE", "1000" },
	{ "MAIL FROM:<a@b.test> size=12", 0, SMTPS_VERB_MAIL, "a@b.test", "", 1,
	    "SIZE", "12" },
	{ "MAIL FROM:<@r1,@r2:a@b.test>", 0, SMTPS_VERB_MAIL, "a@b.test", "", 0, NULL, NULL },
	{ "MAIL FROM:<\"a >b\"@c.test>", 0, SMTPS_VERB_MAIL, "\"a >b\"@c.test", "", 0,
	    NULL, NULL },
	{ "MAIL FROM:a@b.test", 0, SMTPS_VERB_MAIL, "a@b.test", "", 0, NULL, NULL },
	{ "MAIL FROM:<a@b.test", SMTPS_PARSE_SYNTAX, SMTPS_VERB_MAIL, "", "", 0, NULL, NULL },
	{ "MAIL TO:<a@b.test>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_MAIL, "", "", 0, NULL, NULL },
	{ "MAIL FROM:<a@b.test> =x", SMTPS_PARSE_SYNTAX, SMTPS_VERB_MAIL, "a@b.test",
	    "", 0, NULL, NULL },
	{ "MAIL FROM:<a@b.test>x", SMTPS_PARSE_SYNTAX, SMTPS_VERB_MAIL, "", "", 0, NULL, NULL },
	{ "RCPT TO:<u@d.test>", 0, SMTPS_VERB_RCPT, "u@d.test", "", 0, NULL, NULL },
	{ "RCPT TO:<Postmaster>", 0, SMTPS_VERB_RCPT, "Postmaster", "", 0, NULL, NULL },
	{ "RCPT TO:<>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_RCPT, "", "", 0, NULL, NULL },
	{ "RCPT TO:<nodomain>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_RCPT, "nodomain", "", 0,
	    NULL, NULL },
	{ "RCPT TO:<u@>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_RCPT, "u@", "", 0, NULL, NULL },
	{ "RCPT TO:<a b@c>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_RCPT, "", "", 0, NULL, NULL },
	{ "DATA", 0, SMTPS_VERB_DATA, "", "", 0, NULL, NULL },
	{ "DATA now", SMTPS_PARSE_SYNTAX, SMTPS_VERB_DATA, "", "", 0, NULL, NULL },
	{ "quit", 0, SMTPS_VERB_QUIT, "", "", 0, NULL, NULL },
	{ "NOOP hello", 0, SMTPS_VERB_NOOP, "", "hello", 0, NULL, NULL },
	{ "STARTTLS", 0, SMTPS_VERB_STARTTLS, "", "", 0, NULL, NULL },
	{ "XYZZY", SMTPS_PARSE_UNKNOWN, SMTPS_VERB_UNKNOWN, "", "", 0, NULL, NULL },
	{ "", SMTPS_PARSE_UNKNOWN, SMTPS_VERB_UNKNOWN, "", "", 0, NULL, NULL },
	{ "MAIL\x01 FROM:<a@b>", SMTPS_PARSE_SYNTAX, SMTPS_VERB_UNKNOWN, "", "", 0, NULL,
	    NULL },
};

static void
test_parse_table(void **state)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct smtps_command cmd;
		int r = smtps_parse_command(c->line, strlen(c->line), &cmd);

		if (r != c->result)
			fail_msg("case %zu \"%s\": result %d, want %d", i, c->line, r,
			    c->result);
		assert_int_equal(cmd.verb, c->verb);
		if (r != 0)
			continue;
		assert_string_equal(cmd.path, c->path);
		assert_string_equal(cmd.arg, c->arg);
		assert_int_equal(cmd.nparams, c->nparams);
		if (c->param_key)
			assert_string_equal(smtps_command_param(&cmd, c->param_key),
			    c->param_value);
	}
}

static void
test_parse_limits(void **state)
{
	char line[SMTPS_LINE_MAX + 64];
	char path[SMTPS_PATH_MAX + 64];
	struct smtps_command cmd;

	memset(line, 'A', sizeof(line));
	assert_int_equal(smtps_parse_command(line, sizeof(line), &cmd),
	    SMTPS_PARSE_TOOLONG);

	memset(path, 'x', sizeof(path));
	path[SMTPS_PATH_MAX + 10] = '\0';
	path[5] = '@';
	snprintf(line, sizeof(line), "RCPT TO:<%s>", path);
	assert_int_equal(smtps_parse_command(line, strlen(line), &cmd),
	    SMTPS_PARSE_SYNTAX);
	snprintf(line, sizeof(line), "MAIL FROM:<a@b> A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9");
	assert_int_equal(smtps_parse_command(line, strlen(line), &cmd),
	    SMTPS_PARSE_SYNTAX);
}

/* ---- session harness ----------------------------------------------------- */

struct owner {
	struct event_base *base;
	bool async;              /* answer after a timer */
	int greet_code;          /* 0 = 220 */
	struct smtps_session *s;
	struct event *timer;
	int reply_code;
	char reply_text[SMTPS_TEXT_MAX];
	struct buf message;
	int messages;
	bool closed;
	char close_reason[32];
};

static void
owner_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct owner *o = arg;

	if (o->reply_code)
		smtps_reply(o->s, o->reply_code, o->reply_text);
	else
		smtps_reply_default(o->s);
}

static void
owner_event(struct smtps_session *s, const struct smtps_event *ev, void *arg)
{
	struct owner *o = arg;

	o->reply_code = 0;
	switch (ev->type) {
	case SMTPS_EV_CONNECT:
		if (o->greet_code) {
			o->reply_code = o->greet_code;
			snprintf(o->reply_text, sizeof(o->reply_text),
			    "5.7.1 Service unavailable");
		}
		break;
	case SMTPS_EV_RCPT:
		if (strncmp(ev->cmd->path, "bad@", 4) == 0) {
			o->reply_code = 550;
			snprintf(o->reply_text, sizeof(o->reply_text),
			    "5.1.1 <%s>: Recipient address rejected: User unknown",
			    ev->cmd->path);
		}
		break;
	case SMTPS_EV_MESSAGE:
		buf_reset(&o->message);
		buf_append(&o->message, ev->data, ev->len);
		o->messages++;
		o->reply_code = 250;
		snprintf(o->reply_text, sizeof(o->reply_text),
		    "2.0.0 Ok: queued as M%d (%zu rcpts)", o->messages, ev->nrcpts);
		break;
	default:
		break;
	}
	if (o->async) {
		struct timeval tv = { 0, 20000 };
		evtimer_add(o->timer, &tv);
	} else {
		owner_timer_cb(-1, 0, o);
	}
}

static void
owner_close(struct smtps_session *s, const char *reason, void *arg)
{
	struct owner *o = arg;

	o->closed = true;
	snprintf(o->close_reason, sizeof(o->close_reason), "%s", reason);
	evtimer_del(o->timer);
}

struct harness {
	struct owner o;
	int cfd;
	struct buf in;       /* everything the client received */
	size_t seen;         /* replies already checked */
};

static void
harness_start(struct harness *h, const struct smtps_config *cfg, bool async,
    int greet_code)
{
	int sv[2];

	memset(h, 0, sizeof(*h));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	h->cfd = sv[0];
	fcntl(h->cfd, F_SETFL, O_NONBLOCK);
	h->o.base = event_base_new();
	h->o.async = async;
	h->o.greet_code = greet_code;
	h->o.timer = evtimer_new(h->o.base, owner_timer_cb, &h->o);
	buf_init(&h->o.message, 1 << 20);
	buf_init(&h->in, 1 << 20);
	h->o.s = smtps_session_new(h->o.base, sv[1], cfg, owner_event, owner_close,
	    &h->o);
	assert_non_null(h->o.s);
}

static void
harness_stop(struct harness *h)
{
	if (!h->o.closed)
		smtps_session_free(h->o.s);
	event_free(h->o.timer);
	event_base_free(h->o.base);
	close(h->cfd);
	buf_fini(&h->o.message);
	buf_fini(&h->in);
}

/* Pump the loop and read until `want` more final reply lines arrived (or
 * EOF when want < 0). Returns the codes of the new replies, space-separated. */
static void
harness_read(struct harness *h, int want, char *codes, size_t n, msec_t wait_ms)
{
	msec_t deadline = time_mono_ms() + wait_ms;
	bool eof = false;

	codes[0] = '\0';
	for (;;) {
		char chunk[8192];
		ssize_t r;
		int finals = 0;
		const char *p;

		event_base_loop(h->o.base, EVLOOP_NONBLOCK);
		while ((r = read(h->cfd, chunk, sizeof(chunk))) > 0)
			buf_append(&h->in, chunk, (size_t)r);
		if (r == 0)
			eof = true;
		p = h->in.data ? h->in.data + h->seen : "";
		for (const char *q = p; *q; ) {
			const char *nl = strstr(q, "\r\n");
			if (nl == NULL)
				break;
			if (nl - q >= 4 && q[3] == ' ')
				finals++;
			q = nl + 2;
		}
		if ((want >= 0 && finals >= want) || (want < 0 && eof) ||
		    time_mono_ms() > deadline)
			break;
		usleep(1000);
	}
	/* Collect codes of the final lines and advance. */
	{
		const char *q = h->in.data ? h->in.data + h->seen : "";
		size_t used = 0;
		while (*q) {
			const char *nl = strstr(q, "\r\n");
			if (nl == NULL)
				break;
			if (nl - q >= 4 && q[3] == ' ') {
				size_t l = strlen(codes);
				snprintf(codes + l, n - l, "%s%.3s", l ? " " : "", q);
			}
			used += (size_t)(nl + 2 - q);
			q = nl + 2;
		}
		h->seen += used;
	}
	if (want < 0 && !eof)
		fail_msg("no EOF from the server (codes: %s)", codes);
}

static void
harness_send(struct harness *h, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(h->cfd, data + off, len - off);
		if (w < 0 && errno == EAGAIN) {
			event_base_loop(h->o.base, EVLOOP_NONBLOCK);
			continue;
		}
		assert_true(w > 0);
		off += (size_t)w;
	}
}

struct step {
	const char *send;    /* NULL: send nothing */
	const char *codes;   /* expected reply codes, or "EOF" */
	const char *contains; /* text that must appear in the new replies */
};

struct script {
	const char *name;
	bool async;
	int greet_code;
	size_t max_message;
	int max_errors;
	int idle_ms;
	struct step steps[8];
	const char *message;   /* expected last message text */
	const char *close_reason;
};

#define PIPE1 "EHLO c.test\r\nMAIL FROM:<s@a.test>\r\nRCPT TO:<u@d.test>\r\n" \
	"RCPT TO:<bad@d.test>\r\nRCPT TO:<v@d.test>\r\nDATA\r\n"
#define BODY1 "Subject: hi\r\n\r\n..leading dot\r\n..\r\nend\r\n.\r\n"

static const struct script scripts[] = {
	{ "ehlo advertises extensions", false, 0, 0, 0, 0, {
	    { NULL, "220", "ESMTP" },
	    { "EHLO c.test\r\n", "250", "PIPELINING" },
	    { "EHLO c.test\r\n", "250", "ENHANCEDSTATUSCODES" },
	    { "EHLO c.test\r\n", "250", "8BITMIME" },
	    { "EHLO c.test\r\n", "250", "SIZE 10485760" },
	    { "QUIT\r\n", "221", NULL }, { NULL, "EOF", NULL } },
	    NULL, "quit" },
	{ "pipelined sync", false, 0, 0, 0, 0, {
	    { NULL, "220", NULL },
	    { PIPE1, "250 250 250 550 250 354", "User unknown" },
	    { BODY1, "250", "(2 rcpts)" },
	    { "QUIT\r\n", "221", NULL }, { NULL, "EOF", NULL } },
	    "Subject: hi\r\n\r\n.leading dot\r\n.\r\nend\r\n", "quit" },
	{ "pipelined async keeps order", true, 0, 0, 0, 0, {
	    { NULL, "220", NULL },
	    { PIPE1 BODY1 "MAIL FROM:<>\r\nRCPT TO:<bad@x.test>\r\nRSET\r\nNOOP\r\nQUIT\r\n",
	      "250 250 250 550 250 354 250 250 550 250 250 221", "M1" },
	    { NULL, "EOF", NULL } },
	    "Subject: hi\r\n\r\n.leading dot\r\n.\r\nend\r\n", "quit" },
	{ "size limit", false, 0, 64, 0, 0, {
	    { NULL, "220", NULL },
	    { "EHLO c\r\nMAIL FROM:<s@a.test> SIZE=65\r\n", "250 552", "fixed limit" },
	    { "MAIL FROM:<s@a.test> SIZE=x\r\n", "501", NULL },
	    { "MAIL FROM:<s@a.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n", "250 250 354", NULL },
	    { "0123456789012345678901234567890123456789\r\n"
	      "0123456789012345678901234567890123456789\r\n.\r\n", "552", "too big" },
	    { "MAIL FROM:<s@a.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\nshort\r\n.\r\n",
	      "250 250 354 250", NULL } },
	    "short\r\n", NULL },
	{ "bad sequence", false, 0, 0, 0, 0, {
	    { NULL, "220", NULL },
	    { "MAIL FROM:<s@a.test>\r\n", "503", "HELO" },
	    { "HELO c\r\nRCPT TO:<u@d.test>\r\nDATA\r\n", "250 503 503", "need MAIL" },
	    { "MAIL FROM:<s@a.test>\r\nMAIL FROM:<s@a.test>\r\n", "250 503", "nested" },
	    { "RCPT TO:<bad@d.test>\r\nDATA\r\n", "550 554", "no valid recipients" } },
	    NULL, NULL },
	{ "unknown command and syntax", false, 0, 0, 0, 0, {
	    { NULL, "220", NULL },
	    { "XYZZY\r\n", "500", "not recognized" },
	    { "HELO\r\nEHLO c\r\nMAIL FROM:<a\r\n", "501 250 501", "Syntax" },
	    { "STARTTLS\r\n", "502", NULL } },
	    NULL, NULL },
	{ "too many errors", false, 0, 0, 3, 0, {
	    { NULL, "220", NULL },
	    { "A\r\nB\r\nC\r\nNOOP\r\n", "500 500 500 421", "too many errors" },
	    { NULL, "EOF", NULL } },
	    NULL, "errors" },
	{ "idle timeout", false, 0, 0, 0, 150, {
	    { NULL, "220", NULL },
	    { "EHLO c\r\n", "250", NULL },
	    { NULL, "421", "timeout exceeded" },
	    { NULL, "EOF", NULL } },
	    NULL, "timeout" },
	{ "greeting refused", false, 554, 0, 0, 0, {
	    { NULL, "554", "Service unavailable" },
	    { "EHLO c\r\nMAIL FROM:<a@b.test>\r\n", "503 503", "access denied" },
	    { "QUIT\r\n", "221", NULL }, { NULL, "EOF", NULL } },
	    NULL, "quit" },
	{ "peer closes", false, 0, 0, 0, 0, {
	    { NULL, "220", NULL }, { "EHLO c\r\n", "250", NULL } },
	    NULL, "eof" },
};

static void
run_script(const struct script *sc)
{
	struct smtps_config cfg = { .hostname = "mx.test", .max_message = sc->max_message,
	    .max_errors = sc->max_errors, .idle_timeout_ms = sc->idle_ms };
	struct harness h;

	harness_start(&h, &cfg, sc->async, sc->greet_code);
	for (size_t i = 0; i < 8 && sc->steps[i].codes; i++) {
		const struct step *st = &sc->steps[i];
		char codes[256];
		size_t before = h.seen;
		bool want_eof = strcmp(st->codes, "EOF") == 0;
		int want = 1;

		for (const char *c = st->codes; *c; c++)
			want += *c == ' ';
		if (st->send)
			harness_send(&h, st->send, strlen(st->send));
		harness_read(&h, want_eof ? -1 : want, codes, sizeof(codes), 3000);
		if (!want_eof && strcmp(codes, st->codes) != 0)
			fail_msg("%s step %zu: codes \"%s\", want \"%s\"\n%s", sc->name, i,
			    codes, st->codes, h.in.data ? h.in.data : "");
		if (st->contains && (h.in.data == NULL ||
		    strstr(h.in.data + before, st->contains) == NULL))
			fail_msg("%s step %zu: no \"%s\" in\n%s", sc->name, i, st->contains,
			    h.in.data ? h.in.data + before : "");
	}
	if (sc->message) {
		assert_non_null(h.o.message.data);
		assert_string_equal(h.o.message.data, sc->message);
	}
	if (sc->close_reason) {
		if (strcmp(sc->close_reason, "eof") == 0) {
			char codes[64];
			shutdown(h.cfd, SHUT_WR);
			harness_read(&h, -1, codes, sizeof(codes), 3000);
			for (int i = 0; i < 50 && !h.o.closed; i++)
				event_base_loop(h.o.base, EVLOOP_NONBLOCK);
		}
		assert_true(h.o.closed);
		assert_string_equal(h.o.close_reason, sc->close_reason);
	} else {
		assert_false(h.o.closed);
	}
	harness_stop(&h);
}

static void
test_scripts(void **state)
{
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		run_script(&scripts[i]);
}

static void
test_overlong_line(void **state)
{
	struct smtps_config cfg = { .hostname = "mx.test" };
	struct harness h;
	char codes[64];
	char *big = malloc(3 * SMTPS_LINE_MAX);

	memset(big, 'x', 3 * SMTPS_LINE_MAX);
	harness_start(&h, &cfg, false, 0);
	harness_read(&h, 1, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "220");
	/* One line 3x the limit: one 500, and the session goes on. */
	harness_send(&h, big, 3 * SMTPS_LINE_MAX);
	harness_send(&h, "\r\nNOOP\r\n", 8);
	harness_read(&h, 2, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "500 250");
	assert_non_null(strstr(h.in.data, "line too long"));
	/* Just over the limit, with its CRLF in the same write. */
	big[SMTPS_LINE_MAX + 1] = '\r';
	big[SMTPS_LINE_MAX + 2] = '\n';
	harness_send(&h, big, SMTPS_LINE_MAX + 3);
	harness_send(&h, "NOOP\r\n", 6);
	harness_read(&h, 2, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "500 250");
	assert_false(h.o.closed);
	harness_stop(&h);
	free(big);
}

static void
test_large_message_lines(void **state)
{
	/* A message larger than a read chunk with a very long line. */
	struct smtps_config cfg = { .hostname = "mx.test" };
	struct harness h;
	char codes[64];
	size_t n = 200000;
	char *body = malloc(n + 16);

	memset(body, 'y', n);
	memcpy(body + n, "\r\n.\r\n", 5);
	harness_start(&h, &cfg, false, 0);
	harness_send(&h, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n", 48);
	harness_read(&h, 5, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "220 250 250 250 354");
	harness_send(&h, body, n + 5);
	harness_read(&h, 1, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "250");
	assert_int_equal(h.o.message.len, n + 2);
	harness_stop(&h);
	free(body);
}

/* Count reply lines in p[0, n). */
static size_t
count_lines(const char *p, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n')
			k++;
	return k;
}

static void
test_output_bound(void **state)
{
	/* A client pipelines 50,000 NOOPs and reads nothing: the replies
	 * waiting in the session stay bounded; once it reads, all come. */
	struct smtps_config cfg = { .hostname = "mx.test" };
	const size_t total = 50000, bound = SMTPS_OUTPUT_MAX + SMTPS_TEXT_MAX;
	size_t len = total * 6, off = 0, max_out = 0, lines = 0;
	char *all = malloc(len), chunk[8192], codes[64];
	int small = 16384, stalls = 0;
	struct harness h;
	msec_t deadline;

	for (size_t i = 0; i < total; i++)
		memcpy(all + i * 6, "NOOP\r\n", 6);
	harness_start(&h, &cfg, false, 0);
	harness_read(&h, 1, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "220");
	/* small socket buffers, so the session's own buffer takes the rest */
	setsockopt(h.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(h.cfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));

	/* 1: write only, until everything is sent or the session stops
	 * taking input */
	deadline = time_mono_ms() + 20000;
	while (off < len && stalls < 300 && time_mono_ms() < deadline) {
		ssize_t w = write(h.cfd, all + off, len - off);

		if (w > 0) {
			off += (size_t)w;
			stalls = 0;
		} else {
			assert_true(errno == EAGAIN);
			stalls++;
			usleep(1000);
		}
		event_base_loop(h.o.base, EVLOOP_NONBLOCK);
		if (smtps_session_output_pending(h.o.s) > max_out)
			max_out = smtps_session_output_pending(h.o.s);
	}
	print_message("sent %zu of %zu bytes unread; max output %zu\n", off,
	    len, max_out);
	assert_true(max_out > 0);
	assert_true(max_out <= bound);

	/* 2: read, and send the rest: every NOOP is answered */
	deadline = time_mono_ms() + 30000;
	while (lines < total && time_mono_ms() < deadline) {
		ssize_t r;

		if (off < len) {
			ssize_t w = write(h.cfd, all + off, len - off);
			if (w > 0)
				off += (size_t)w;
		}
		event_base_loop(h.o.base, EVLOOP_NONBLOCK);
		if (smtps_session_output_pending(h.o.s) > max_out)
			max_out = smtps_session_output_pending(h.o.s);
		while ((r = read(h.cfd, chunk, sizeof(chunk))) > 0)
			lines += count_lines(chunk, (size_t)r);
	}
	assert_int_equal(lines, total);
	assert_true(max_out <= bound);
	assert_false(h.o.closed);
	/* and it still answers */
	harness_send(&h, "NOOP\r\n", 6);
	harness_read(&h, 1, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "250");
	harness_stop(&h);
	free(all);
}

/* ---- STARTTLS ------------------------------------------------------------ */

static SSL_CTX *
tls_server_ctx(void)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(pkey);
	assert_non_null(ctx);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pkey), 1);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ctx;
}

/* Send over TLS and read until `want` final reply lines; returns the text. */
static void
tls_exchange(struct harness *h, SSL *ssl, const char *send, int want, struct buf *out)
{
	msec_t deadline = time_mono_ms() + 3000;
	size_t off = 0, len = send ? strlen(send) : 0;
	int finals = 0;

	buf_reset(out);
	while (time_mono_ms() < deadline) {
		char chunk[4096];
		int r;

		event_base_loop(h->o.base, EVLOOP_NONBLOCK);
		if (off < len) {
			r = SSL_write(ssl, send + off, (int)(len - off));
			if (r > 0)
				off += (size_t)r;
		}
		r = SSL_read(ssl, chunk, sizeof(chunk));
		if (r > 0) {
			buf_append(out, chunk, (size_t)r);
			finals = 0;
			for (const char *q = out->data; q && *q; ) {
				const char *nl = strstr(q, "\r\n");
				if (nl == NULL)
					break;
				if (nl - q >= 4 && q[3] == ' ')
					finals++;
				q = nl + 2;
			}
			if (off == len && finals >= want)
				return;
		}
		usleep(1000);
	}
	fail_msg("TLS exchange timed out; got \"%s\"", out->data ? out->data : "");
}

static void
test_starttls(void **state)
{
	SSL_CTX *sctx = tls_server_ctx();
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct smtps_config cfg = { .hostname = "mx.test", .tls = sctx };
	struct harness h;
	struct buf out;
	char codes[64];
	msec_t deadline;
	SSL *ssl;
	int r;

	buf_init(&out, 1 << 16);
	harness_start(&h, &cfg, false, 0);
	harness_send(&h, "EHLO c\r\n", 8);
	harness_read(&h, 2, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "220 250");
	assert_non_null(strstr(h.in.data, "250-STARTTLS"));
	/* A command pipelined after STARTTLS is dropped (RFC 3207 4.2). */
	harness_send(&h, "STARTTLS\r\nNOOP\r\n", 16);
	harness_read(&h, 1, codes, sizeof(codes), 3000);
	assert_string_equal(codes, "220");
	assert_false(strstr(h.in.data, "Ready to start TLS") == NULL);

	ssl = SSL_new(cctx);
	SSL_set_fd(ssl, h.cfd);
	deadline = time_mono_ms() + 3000;
	while ((r = SSL_connect(ssl)) != 1) {
		int e = SSL_get_error(ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    time_mono_ms() > deadline)
			fail_msg("TLS handshake failed (%d)", e);
		event_base_loop(h.o.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_true(smtps_session_is_tls(h.o.s));
	/* The session starts over: MAIL needs a new EHLO. */
	tls_exchange(&h, ssl, "MAIL FROM:<s@a.test>\r\n", 1, &out);
	assert_non_null(strstr(out.data, "503 5.5.1 Error: send HELO/EHLO first"));
	tls_exchange(&h, ssl, "EHLO c\r\n", 1, &out);
	assert_null(strstr(out.data, "STARTTLS"));
	assert_non_null(strstr(out.data, "250 8BITMIME"));
	tls_exchange(&h, ssl, "MAIL FROM:<s@a.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n"
	    "secret\r\n.\r\nSTARTTLS\r\n", 5, &out);
	assert_non_null(strstr(out.data, "queued"));
	assert_non_null(strstr(out.data, "502 5.5.1"));
	assert_string_equal(h.o.message.data, "secret\r\n");
	tls_exchange(&h, ssl, "QUIT\r\n", 1, &out);
	assert_non_null(strstr(out.data, "221"));

	SSL_free(ssl);
	harness_stop(&h);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_large_message_lines),
		cmocka_unit_test(test_output_bound),
		cmocka_unit_test(test_starttls),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
