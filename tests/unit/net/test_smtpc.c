/*
 * test_smtpc: the SMTP client session against scripted peers on loopback.
 *
 * Each peer is a thread with a blocking listening socket on 127.0.0.1 that
 * accepts one connection and follows a script (send, expect a command
 * prefix, read a message, sleep, TLS accept, flood, close). Every blocking
 * call of the peer has a timeout, so a broken client cannot hang it; every
 * test joins its peer thread before it ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/smtp_reply.h"
#include "net/smtpc.h"
#include "util/log.h"
#include "util/str.h"

#define PEER_TIMEOUT_MS 3000
#define PEER_DATA_MAX (256 * 1024)
#define GUARD_SECONDS 10

/* ---------------------------------------------------------------- peer */

enum step_kind {
	P_END,
	P_SEND,         /* write arg */
	P_EXPECT,       /* read a line, it must start with arg (any case) */
	P_DATA,         /* read a message up to and including ".\r\n" */
	P_SLEEP,        /* n ms */
	P_CLOSE,        /* close the connection now */
	P_FLOOD,        /* write n bytes of 'x', no line end */
	P_TLS,          /* SSL_accept */
	P_WAIT_EOF,     /* read and discard until the client closes */
};

struct step {
	enum step_kind kind;
	const char *arg;
	int n;
};

#define SEND(s) { P_SEND, (s), 0 }
#define EXPECT(s) { P_EXPECT, (s), 0 }
#define DATA() { P_DATA, NULL, 0 }
#define SLEEP(ms) { P_SLEEP, NULL, (ms) }
#define CLOSE() { P_CLOSE, NULL, 0 }
#define FLOOD(n) { P_FLOOD, NULL, (n) }
#define TLS() { P_TLS, NULL, 0 }
#define WAIT_EOF() { P_WAIT_EOF, NULL, 0 }
#define END() { P_END, NULL, 0 }

struct peer {
	int lfd;
	int fd;
	int port;
	const struct step *script;
	SSL_CTX *ctx;
	SSL *ssl;
	pthread_t th;
	char in[8192];
	size_t in_len;
	/* results, read after the join */
	char failure[512];
	char cmds[8192];        /* every line read by EXPECT, '\n' after each */
	char src[64];           /* the client's address (getpeername) */
	char *data[4];          /* messages read by DATA, as received */
	size_t data_len[4];
	int ndata;
	bool accepted;
};

static void
peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failure[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(p->failure, sizeof(p->failure), fmt, ap);
	va_end(ap);
}

/* Read more into p->in: > 0 bytes, 0 EOF, -1 error or timeout. */
static int
peer_fill(struct peer *p)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	int n;

	if (p->in_len >= sizeof(p->in))
		return -1;
	if (p->ssl == NULL || SSL_pending(p->ssl) == 0) {
		if (poll(&pfd, 1, PEER_TIMEOUT_MS) <= 0)
			return -1;
	}
	if (p->ssl != NULL) {
		n = SSL_read(p->ssl, p->in + p->in_len,
		    (int)(sizeof(p->in) - p->in_len));
		if (n <= 0)
			return 0;
	} else {
		n = (int)recv(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len, 0);
		if (n < 0)
			return -1;
	}
	p->in_len += (size_t)n;
	return n;
}

/* One line with its CRLF into line (NUL-terminated); its length or -1. */
static int
peer_readline(struct peer *p, char *line, size_t max)
{
	for (;;) {
		char *nl = memchr(p->in, '\n', p->in_len);

		if (nl != NULL) {
			size_t len = (size_t)(nl - p->in) + 1;

			if (len >= max)
				return -1;
			memcpy(line, p->in, len);
			line[len] = '\0';
			memmove(p->in, p->in + len, p->in_len - len);
			p->in_len -= len;
			return (int)len;
		}
		if (peer_fill(p) <= 0)
			return -1;
	}
}

static int
peer_write(struct peer *p, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n;

		if (p->ssl != NULL)
			n = SSL_write(p->ssl, s, (int)len);
		else
			n = send(p->fd, s, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
peer_run_script(struct peer *p)
{
	char line[4096];

	for (const struct step *st = p->script; st->kind != P_END; st++) {
		switch (st->kind) {
		case P_SEND:
			if (peer_write(p, st->arg, strlen(st->arg)) < 0)
				return;
			break;
		case P_EXPECT:
			if (peer_readline(p, line, sizeof(line)) < 0) {
				peer_fail(p, "expected \"%s\", got nothing", st->arg);
				return;
			}
			if (strlen(p->cmds) + strlen(line) < sizeof(p->cmds)) {
				size_t l = strlen(p->cmds), n = strcspn(line, "\r\n");

				memcpy(p->cmds + l, line, n);
				p->cmds[l + n] = '\n';
				p->cmds[l + n + 1] = '\0';
			}
			if (strncasecmp(line, st->arg, strlen(st->arg)) != 0) {
				peer_fail(p, "expected \"%s\", got \"%s\"", st->arg, line);
				return;
			}
			break;
		case P_DATA: {
			char *d = calloc(1, PEER_DATA_MAX + 1);
			size_t dl = 0;
			int n;

			p->data[p->ndata] = d;
			for (;;) {
				n = peer_readline(p, line, sizeof(line));
				if (n < 0) {
					peer_fail(p, "message ended early");
					return;
				}
				if (dl + (size_t)n > PEER_DATA_MAX) {
					peer_fail(p, "message too long");
					return;
				}
				memcpy(d + dl, line, (size_t)n);
				dl += (size_t)n;
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			p->data_len[p->ndata++] = dl;
			break;
		}
		case P_SLEEP:
			usleep((useconds_t)st->n * 1000);
			break;
		case P_CLOSE:
			return;
		case P_FLOOD: {
			char chunk[4096];

			memset(chunk, 'x', sizeof(chunk));
			for (int left = st->n; left > 0; left -= (int)sizeof(chunk)) {
				size_t n = left < (int)sizeof(chunk) ? (size_t)left :
				    sizeof(chunk);
				if (peer_write(p, chunk, n) < 0)
					return;
			}
			break;
		}
		case P_TLS:
			p->ssl = SSL_new(p->ctx);
			SSL_set_fd(p->ssl, p->fd);
			if (SSL_accept(p->ssl) != 1) {
				peer_fail(p, "SSL_accept failed");
				return;
			}
			break;
		case P_WAIT_EOF:
			p->in_len = 0;
			while (peer_fill(p) > 0)
				p->in_len = 0;
			break;
		case P_END:
			break;
		}
	}
}

static void *
peer_main(void *arg)
{
	struct peer *p = arg;
	struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct timeval tv = { PEER_TIMEOUT_MS / 1000, 0 };

	if (poll(&pfd, 1, PEER_TIMEOUT_MS) <= 0)
		return NULL;
	p->fd = accept(p->lfd, NULL, NULL);
	if (p->fd < 0)
		return NULL;
	p->accepted = true;
	/* SSL_accept and writes block; bound them too. */
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getpeername(p->fd, (struct sockaddr *)&sin, &slen) == 0)
		inet_ntop(AF_INET, &sin.sin_addr, p->src, sizeof(p->src));
	peer_run_script(p);
	if (p->ssl != NULL) {
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
	close(p->fd);
	p->fd = -1;
	return NULL;
}

static void
peer_start(struct peer *p, const struct step *script, SSL_CTX *ctx)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->script = script;
	p->ctx = ctx;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sin, &slen), 0);
	p->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void
peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->lfd);
}

static void
peer_fini(struct peer *p)
{
	for (int i = 0; i < p->ndata; i++)
		free(p->data[i]);
	p->ndata = 0;
}

/* ------------------------------------------------------------- client */

struct run {
	struct event_base *base;
	struct smtpc *s;
	const char *msg;
	int nmsgs;              /* messages to send; -1: stay idle after ready */
	const char *ops;        /* instead of nmsgs: 's' send, 'p' probe, in turn */
	bool got_ready;
	bool guard_fired;
	bool ready_pipelining, ready_8bitmime, ready_enhanced, ready_tls;
	size_t ready_max_size;
	bool done_tls;
	int ndone;
	struct smtpc_result done[4];
	bool got_closed;
	int nclosed;
	struct smtpc_result closed;
};

static const char *default_msg =
    "From: list@example.org\nTo: user@example.com\nSubject: hi\n\nhello\n";

static void
send_next(struct run *r)
{
	int rc = smtpc_send(r->s, "list@example.org", "user@example.com",
	    r->msg, strlen(r->msg));

	assert_int_equal(rc, 0);
	/* Not idle while a transaction runs: a second send is refused. */
	assert_int_equal(smtpc_send(r->s, "a@b", "c@d", "x", 1), -1);
}

/* The next of r->ops; done must not come from inside the call. */
static void
op_next(struct run *r)
{
	char op = r->ops[r->ndone];
	int before = r->ndone, rc;

	if (op == 'p')
		rc = smtpc_probe(r->s, "list@example.org", "user@example.com");
	else
		rc = smtpc_send(r->s, "list@example.org", "user@example.com",
		    r->msg, strlen(r->msg));
	assert_int_equal(rc, 0);
	assert_int_equal(r->ndone, before);
	assert_false(smtpc_is_idle(r->s));
	assert_int_equal(smtpc_probe(r->s, "a@b", "c@d"), -1);
}

static void
on_ready(struct smtpc *s, void *arg)
{
	struct run *r = arg;

	r->got_ready = true;
	r->ready_pipelining = smtpc_has_pipelining(s);
	r->ready_8bitmime = smtpc_has_8bitmime(s);
	r->ready_enhanced = smtpc_has_enhancedstatuscodes(s);
	r->ready_max_size = smtpc_max_size(s);
	r->ready_tls = smtpc_is_tls(s);
	assert_true(smtpc_is_idle(s));
	if (r->ops != NULL && r->ops[0] != '\0')
		op_next(r);
	else if (r->ops != NULL)
		smtpc_quit(s);
	else if (r->nmsgs > 0)
		send_next(r);
	else if (r->nmsgs == 0)
		smtpc_quit(s);
}

static void
on_done(struct smtpc *s, const struct smtpc_result *res, void *arg)
{
	struct run *r = arg;

	assert_true(r->ndone < 4);
	r->done[r->ndone++] = *res;
	r->done_tls = smtpc_is_tls(s);
	if (!smtpc_is_idle(s))
		return;
	if (r->ops != NULL) {
		if (r->ops[r->ndone] != '\0')
			op_next(r);
		else
			smtpc_quit(s);
		return;
	}
	if (r->ndone < r->nmsgs)
		send_next(r);
	else
		smtpc_quit(s);
}

static void
on_closed(struct smtpc *s, const struct smtpc_result *res, void *arg)
{
	struct run *r = arg;

	r->got_closed = true;
	r->nclosed++;
	r->closed = *res;
	/* Free from inside the callback, as the engine does. */
	smtpc_free(s);
	r->s = NULL;
	event_base_loopbreak(r->base);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	r->guard_fired = true;
	event_base_loopbreak(r->base);
}

static void
test_config(struct smtpc_config *cfg, int port)
{
	memset(cfg, 0, sizeof(*cfg));
	str_copy(cfg->dest_ip, "127.0.0.1", sizeof(cfg->dest_ip));
	cfg->dest_port = port;
	str_copy(cfg->helo, "client.test", sizeof(cfg->helo));
	cfg->t_connect = cfg->t_greeting = cfg->t_ehlo = cfg->t_starttls = 2000;
	cfg->t_mail = cfg->t_rcpt = cfg->t_data = cfg->t_data_block = 2000;
	cfg->t_dot = cfg->t_rset = cfg->t_quit = 2000;
	cfg->max_line = 512;
	cfg->max_lines = 16;
}

static void
run_session(struct run *r, const struct smtpc_config *cfg)
{
	static const struct smtpc_callbacks cbs = { on_ready, on_done, on_closed };
	struct timeval tv = { GUARD_SECONDS, 0 };
	struct event *guard;

	r->base = event_base_new();
	assert_non_null(r->base);
	if (r->msg == NULL)
		r->msg = default_msg;
	r->s = smtpc_new(r->base, cfg, &cbs, r);
	assert_int_equal(smtpc_open(r->s), 0);
	guard = evtimer_new(r->base, guard_cb, r);
	evtimer_add(guard, &tv);
	event_base_dispatch(r->base);
	smtpc_free(r->s);
	r->s = NULL;
	event_free(guard);
	event_base_free(r->base);
	assert_false(r->guard_fired);
	assert_true(r->got_closed);
	assert_int_equal(r->nclosed, 1);
}

/* Run script against one session; the peer is joined before returning. */
static void
run_script(struct run *r, struct peer *p, const struct step *script,
    struct smtpc_config *cfg_in, SSL_CTX *server_ctx)
{
	struct smtpc_config cfg;

	peer_start(p, script, server_ctx);
	if (cfg_in != NULL) {
		cfg = *cfg_in;
		cfg.dest_port = p->port;
	} else {
		test_config(&cfg, p->port);
	}
	run_session(r, &cfg);
	peer_join(p);
}

#define GREET SEND("220 mx.test ESMTP\r\n"), EXPECT("EHLO client.test")
#define EHLO_PLAIN SEND("250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n")
#define EHLO_PIPE SEND("250-mx.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
#define MAIL_OK EXPECT("MAIL FROM:<list@example.org>"), SEND("250 2.1.0 ok\r\n")
#define RCPT_OK EXPECT("RCPT TO:<user@example.com>"), SEND("250 2.1.5 ok\r\n")
#define DATA_OK EXPECT("DATA"), SEND("354 go ahead\r\n")
#define QUIT_END EXPECT("QUIT"), SEND("221 2.0.0 bye\r\n"), WAIT_EOF(), END()

/* ------------------------------------------------------------- tests */

static void
test_reply_parser(void **state)
{
	static const struct {
		const char *lines;      /* '\n'-separated */
		int rc;                 /* of the last feed */
		int code;
		const char *enhanced;
		const char *text;
	} cases[] = {
		{ "250 ok", 1, 250, "", "ok" },
		{ "250", 1, 250, "", "" },
		{ "550 5.1.1 <x@y>: user unknown", 1, 550, "5.1.1", "<x@y>: user unknown" },
		{ "550-5.1.1 first\n550-5.1.1 second\n550 5.1.1 third", 1, 550,
		  "5.1.1", "first second third" },
		{ "451-4.7.1 grey\n451 please retry", 1, 451, "4.7.1", "grey please retry" },
		{ "250-mx\n250-PIPELINING\n250 SIZE 100", 1, 250, "", "mx PIPELINING SIZE 100" },
		{ "220-a\n220-", 0, 220, "", "a" },
		{ "550 5.1.10 bad", 1, 550, "5.1.10", "bad" },
		{ "550 5.1234.1 bad", 1, 550, "", "5.1234.1 bad" },
		{ "550 3.1.1 bad", 1, 550, "", "3.1.1 bad" },
		{ "550 5.1.1x bad", 1, 550, "", "5.1.1x bad" },
		{ "421 4.3.2\r", 1, 421, "4.3.2", "" },
		{ "250 a\tb", 1, 250, "", "a?b" },
		{ "250-a\n251 b", -1, 0, NULL, NULL },
		{ "25", -1, 0, NULL, NULL },
		{ "2500 x", -1, 0, NULL, NULL },
		{ "199 x", -1, 0, NULL, NULL },
		{ "650 x", -1, 0, NULL, NULL },
		{ "abc def", -1, 0, NULL, NULL },
		{ "", -1, 0, NULL, NULL },
		{ "250-1\n250-2\n250-3\n250-4", -1, 0, NULL, NULL }, /* max_lines 3 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_reply_parser p;
		const char *s = cases[i].lines;
		int rc = 0;

		smtp_reply_parser_init(&p, 3);
		for (;;) {
			const char *nl = strchr(s, '\n');
			size_t len = nl ? (size_t)(nl - s) : strlen(s);

			rc = smtp_reply_parser_feed(&p, s, len);
			if (rc < 0 || nl == NULL)
				break;
			s = nl + 1;
		}
		if (rc != cases[i].rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, cases[i].lines,
			    rc, cases[i].rc);
		if (rc < 0) {
			assert_true(p.error[0] != '\0');
			continue;
		}
		assert_int_equal(p.reply.code, cases[i].code);
		assert_string_equal(p.reply.enhanced, cases[i].enhanced);
		assert_string_equal(p.reply.text, cases[i].text);
	}
}

static void
test_reply_parser_long_text(void **state)
{
	struct smtp_reply_parser p;
	char line[1100];

	(void)state;
	memcpy(line, "250-", 4);
	memset(line + 4, 'a', sizeof(line) - 4);
	smtp_reply_parser_init(&p, 10);
	for (int i = 0; i < 4; i++)
		assert_int_equal(smtp_reply_parser_feed(&p, line, sizeof(line)), 0);
	line[3] = ' ';
	assert_int_equal(smtp_reply_parser_feed(&p, line, sizeof(line)), 1);
	assert_int_equal(strlen(p.reply.text), SMTP_REPLY_TEXT_MAX - 1);
	/* The next feed starts a new reply. */
	assert_int_equal(smtp_reply_parser_feed(&p, "354 go", 6), 1);
	assert_int_equal(p.reply.code, 354);
	assert_int_equal(p.reply.nlines, 1);
}

static void
test_plain_delivery_bytes(void **state)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, DATA(),
		SEND("250 2.0.0 Ok: queued as ABC\r\n"), QUIT_END,
	};
	/* the message as given, and the exact bytes sent after DATA */
	static const struct {
		const char *msg, *want;
	} cases[] = {
		{ "Subject: t\r\n\r\nline1\n.dot\r\n..two\nx.y\n.\nend",
		  "Subject: t\r\n\r\nline1\r\n..dot\r\n...two\r\nx.y\r\n..\r\n"
		  "end\r\n.\r\n" },
		/* a bare CR ends a line too: "\r.\r\n" is stuffed, not sent */
		{ "Subject: t\r\n\r\nbare\r.\r\nx\rend\r",
		  "Subject: t\r\n\r\nbare\r\n..\r\nx\r\nend\r\n.\r\n" },
		{ "Subject: t\r\n\r\na\r\r\n.\rb",
		  "Subject: t\r\n\r\na\r\n\r\n..\r\nb\r\n.\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want = cases[i].want;
		struct peer p;
		struct run r = { .nmsgs = 1, .msg = cases[i].msg };

		print_message("case %zu\n", i);
		run_script(&r, &p, script, NULL, NULL);
		if (p.failure[0])
			fail_msg("peer: %s", p.failure);
		assert_int_equal(r.ndone, 1);
		assert_true(r.done[0].ok);
		assert_false(r.done[0].net_error);
		assert_int_equal(r.done[0].stage, SMTPC_DOT);
		assert_int_equal(r.done[0].reply.code, 250);
		assert_string_equal(r.done[0].reply.enhanced, "2.0.0");
		assert_string_equal(r.done[0].reply.text, "Ok: queued as ABC");
		assert_int_equal(p.ndata, 1);
		assert_int_equal(p.data_len[0], strlen(want));
		assert_memory_equal(p.data[0], want, strlen(want));
		/* QUIT then closed. */
		assert_int_equal(r.closed.stage, SMTPC_QUIT);
		assert_true(r.closed.ok);
		assert_int_equal(r.closed.reply.code, 221);
		/* No PIPELINING advertised: MAIL without SIZE, lock-step. */
		assert_non_null(strstr(p.cmds, "MAIL FROM:<list@example.org>\n"));
		assert_false(r.ready_pipelining);
		assert_true(r.ready_enhanced);
		peer_fini(&p);
	}
}

static void
test_multiline_greeting_and_caps(void **state)
{
	static const struct step script[] = {
		SEND("220-mx.test ESMTP\r\n220-no UCE\r\n220 really\r\n"),
		EXPECT("EHLO client.test"),
		SEND("250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
		     "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n"),
		EXPECT("MAIL FROM:<list@example.org> SIZE="),
		EXPECT("RCPT TO:<user@example.com>"),
		EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(), SEND("250 2.0.0 queued\r\n"), QUIT_END,
	};
	static const char msg[] = "Subject: caf\xc3\xa9\n\nna\xc3\xafve\n";
	char want[64];
	struct peer p;
	struct run r = { .nmsgs = 1, .msg = msg };

	(void)state;
	run_script(&r, &p, script, NULL, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_true(r.ready_pipelining);
	assert_true(r.ready_8bitmime);
	assert_true(r.ready_enhanced);
	assert_int_equal(r.ready_max_size, 1000000);
	assert_int_equal(r.ndone, 1);
	assert_true(r.done[0].ok);
	/* size = CRLF-normalised message: two added CRs. */
	snprintf(want, sizeof(want), " SIZE=%zu BODY=8BITMIME\n", strlen(msg) + 3);
	if (strstr(p.cmds, want) == NULL)
		fail_msg("want \"%s\" in %s", want, p.cmds);
	peer_fini(&p);
}

static void
test_ehlo_5xx_helo_fallback(void **state)
{
	static const struct step script[] = {
		SEND("220 mx.test ESMTP\r\n"), EXPECT("EHLO client.test"),
		SEND("502 5.5.2 Error: command not recognized\r\n"),
		EXPECT("HELO client.test"), SEND("250 mx.test\r\n"),
		MAIL_OK, RCPT_OK, DATA_OK, DATA(), SEND("250 ok\r\n"), QUIT_END,
	};
	struct peer p;
	struct run r = { .nmsgs = 1 };

	(void)state;
	run_script(&r, &p, script, NULL, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_true(r.got_ready);
	assert_false(r.ready_pipelining);
	assert_int_equal(r.ndone, 1);
	assert_true(r.done[0].ok);
	peer_fini(&p);
}

static void
test_pipelining_in_order(void **state)
{
	/* The peer answers only after it has read MAIL, RCPT and DATA: a
	 * lock-step client would wait for the MAIL reply and time out. */
	static const struct step script[] = {
		GREET, EHLO_PIPE,
		EXPECT("MAIL FROM:<list@example.org>"),
		EXPECT("RCPT TO:<user@example.com>"),
		EXPECT("DATA"),
		SEND("250 2.1.0 sender ok\r\n250 2.1.5 rcpt ok\r\n354 go\r\n"),
		DATA(), SEND("250 2.0.0 queued\r\n"),
		/* second transaction: RSET first, all in one go */
		EXPECT("RSET"), EXPECT("MAIL FROM:"), EXPECT("RCPT TO:"), EXPECT("DATA"),
		SEND("250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
		DATA(), SEND("250 2.0.0 queued 2\r\n"),
		QUIT_END,
	};
	struct peer p;
	struct run r = { .nmsgs = 2 };

	(void)state;
	run_script(&r, &p, script, NULL, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_true(r.ready_pipelining);
	assert_int_equal(r.ndone, 2);
	assert_true(r.done[0].ok);
	assert_true(r.done[1].ok);
	assert_string_equal(r.done[1].reply.text, "queued 2");
	assert_int_equal(p.ndata, 2);
	assert_true(r.closed.ok);
	peer_fini(&p);
}

static void
test_two_transactions_rset(void **state)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, DATA(),
		SEND("250 2.0.0 one\r\n"),
		EXPECT("RSET"), SEND("250 2.0.0 ok\r\n"),
		MAIL_OK, RCPT_OK, DATA_OK, DATA(), SEND("250 2.0.0 two\r\n"),
		QUIT_END,
	};
	struct peer p;
	struct run r = { .nmsgs = 2 };

	(void)state;
	run_script(&r, &p, script, NULL, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_int_equal(r.ndone, 2);
	assert_string_equal(r.done[0].reply.text, "one");
	assert_string_equal(r.done[1].reply.text, "two");
	assert_int_equal(p.ndata, 2);
	assert_memory_equal(p.data[0], p.data[1], p.data_len[0]);
	peer_fini(&p);
}

static void
test_source_address(void **state)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, QUIT_END,
	};
	struct smtpc_config cfg;
	struct peer p;
	struct run r = { .nmsgs = 0 };

	(void)state;
	test_config(&cfg, 0);
	str_copy(cfg.source_ip, "127.0.0.11", sizeof(cfg.source_ip));
	run_script(&r, &p, script, &cfg, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_string_equal(p.src, "127.0.0.11");
	assert_true(r.closed.ok);
	assert_int_equal(r.closed.stage, SMTPC_QUIT);
}

/* A result expected from a failing session. */
struct failure_case {
	const char *name;
	struct step script[24];
	int nmsgs;
	int t_greeting;         /* 0: default */
	bool from_done;         /* check done[0], else closed */
	enum smtpc_stage stage;
	bool net_error;
	int code;
	const char *enhanced;
	const char *text;       /* exact reply text, or error substring */
	bool session_closed_at_once; /* closed follows done without QUIT */
};

static const struct failure_case failure_cases[] = {
	{ "greeting 4xx", { SEND("450 4.3.2 busy, try later\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, false, 450, "4.3.2", "busy, try later", false },
	{ "greeting 5xx multi-line",
	  { SEND("554-5.7.1 go away\r\n554 5.7.1 you are blocked\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, false, 554, "5.7.1", "go away you are blocked", false },
	{ "ehlo 421",
	  { SEND("220 mx\r\n"), EXPECT("EHLO"), SEND("421 4.7.0 too busy\r\n"),
	    WAIT_EOF(), END() },
	  1, 0, false, SMTPC_EHLO, false, 421, "4.7.0", "too busy", false },
	{ "helo 5xx after ehlo 5xx",
	  { SEND("220 mx\r\n"), EXPECT("EHLO"), SEND("500 what\r\n"), EXPECT("HELO"),
	    SEND("501 5.5.4 bad name\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_HELO, false, 501, "5.5.4", "bad name", false },
	{ "mail 5xx",
	  { GREET, EHLO_PLAIN, EXPECT("MAIL"), SEND("553 5.1.8 sender rejected\r\n"),
	    QUIT_END },
	  1, 0, true, SMTPC_MAIL, false, 553, "5.1.8", "sender rejected", false },
	{ "mail 4xx",
	  { GREET, EHLO_PLAIN, EXPECT("MAIL"), SEND("451 4.3.0 temporary\r\n"), QUIT_END },
	  1, 0, true, SMTPC_MAIL, false, 451, "4.3.0", "temporary", false },
	{ "rcpt 5xx",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"),
	    SEND("550 5.1.1 <user@example.com>: user unknown\r\n"), QUIT_END },
	  1, 0, true, SMTPC_RCPT, false, 550, "5.1.1",
	  "<user@example.com>: user unknown", false },
	{ "rcpt 4xx multi-line",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"),
	    SEND("450-4.2.0 greylisted\r\n450 4.2.0 come back later\r\n"), QUIT_END },
	  1, 0, true, SMTPC_RCPT, false, 450, "4.2.0", "greylisted come back later",
	  false },
	{ "data 5xx",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, EXPECT("DATA"),
	    SEND("554 5.5.1 no valid recipients\r\n"), QUIT_END },
	  1, 0, true, SMTPC_DATA, false, 554, "5.5.1", "no valid recipients", false },
	{ "data 4xx",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, EXPECT("DATA"),
	    SEND("451 4.3.0 local error\r\n"), QUIT_END },
	  1, 0, true, SMTPC_DATA, false, 451, "4.3.0", "local error", false },
	{ "dot 5xx",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, DATA(),
	    SEND("550 5.7.1 message looks like spam\r\n"), QUIT_END },
	  1, 0, true, SMTPC_DOT, false, 550, "5.7.1", "message looks like spam", false },
	{ "dot 4xx",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, DATA(),
	    SEND("452 4.3.1 insufficient storage\r\n"), QUIT_END },
	  1, 0, true, SMTPC_DOT, false, 452, "4.3.1", "insufficient storage", false },
	{ "421 mid-session at rcpt",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"),
	    SEND("421 4.7.0 closing connection\r\n"), WAIT_EOF(), END() },
	  1, 0, true, SMTPC_RCPT, false, 421, "4.7.0", "closing connection", true },
	{ "pipelined rcpt 5xx then data 554",
	  { GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
	    SEND("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
	    QUIT_END },
	  1, 0, true, SMTPC_RCPT, false, 550, "5.1.1", "no such user", false },
	{ "pipelined rcpt 5xx then stray 354",
	  { GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
	    SEND("250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n"),
	    EXPECT("."), SEND("554 5.5.1 empty\r\n"), QUIT_END },
	  1, 0, true, SMTPC_RCPT, false, 550, "5.1.1", "no such user", false },
	{ "size limit refused locally",
	  { GREET, SEND("250-mx\r\n250 SIZE 20\r\n"), QUIT_END },
	  1, 0, true, SMTPC_MAIL, false, 552, "5.3.4",
	  "message size 68 exceeds server limit 20", false },
	{ "early close mid-reply",
	  { GREET, SEND("250-mx.test\r\n250-PIPELI"), CLOSE(), END() },
	  1, 0, false, SMTPC_EHLO, true, 0, NULL, "closed by peer in the middle", false },
	{ "close after rcpt",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"), CLOSE(), END() },
	  1, 0, true, SMTPC_RCPT, true, 0, NULL, "connection closed by peer", true },
	{ "endless line",
	  { SEND("220 "), FLOOD(1 << 20), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, true, 0, NULL, "reply line longer than 512 bytes",
	  false },
	{ "silence until timeout",
	  { SLEEP(600), END() },
	  1, 200, false, SMTPC_GREETING, true, 0, NULL,
	  "timeout after 200ms waiting for greeting", false },
	{ "continuation with another code",
	  { SEND("220-mx\r\n221 bye\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, true, 0, NULL, "protocol error: continuation", false },
	{ "garbage greeting",
	  { SEND("HTTP/1.1 400 Bad Request\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, true, 0, NULL, "malformed reply line", false },
	{ "too many lines",
	  { SEND("220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n"
	         "220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n220-a\r\n"
	         "220-a\r\n220-a\r\n220 a\r\n"), WAIT_EOF(), END() },
	  1, 0, false, SMTPC_GREETING, true, 0, NULL, "longer than 16 lines", false },
	{ "peer closes while idle",
	  { GREET, EHLO_PLAIN, SLEEP(50), CLOSE(), END() },
	  -1, 0, false, SMTPC_IDLE, true, 0, NULL, "connection closed by peer", false },
	{ "421 while idle",
	  { GREET, EHLO_PLAIN, SLEEP(50), SEND("421 4.4.2 idle too long\r\n"),
	    WAIT_EOF(), END() },
	  -1, 0, false, SMTPC_IDLE, false, 421, "4.4.2", "idle too long", false },
};

static void
test_failures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(failure_cases) / sizeof(failure_cases[0]); i++) {
		const struct failure_case *c = &failure_cases[i];
		struct smtpc_config cfg;
		struct peer p;
		struct run r = { .nmsgs = c->nmsgs };
		const struct smtpc_result *res;

		test_config(&cfg, 0);
		if (c->t_greeting)
			cfg.t_greeting = c->t_greeting;
		run_script(&r, &p, c->script, &cfg, NULL);
		print_message("case: %s\n", c->name);
		if (p.failure[0])
			fail_msg("%s: peer: %s", c->name, p.failure);
		if (c->from_done) {
			if (r.ndone != 1)
				fail_msg("%s: %d done callbacks", c->name, r.ndone);
			res = &r.done[0];
		} else {
			assert_int_equal(r.ndone, 0);
			res = &r.closed;
		}
		if (res->stage != c->stage || res->net_error != c->net_error)
			fail_msg("%s: stage %s net_error %d (error \"%s\")", c->name,
			    smtpc_stage_name(res->stage), res->net_error, res->error);
		assert_false(res->ok);
		if (c->net_error) {
			if (strstr(res->error, c->text) == NULL)
				fail_msg("%s: error \"%s\"", c->name, res->error);
		} else {
			assert_int_equal(res->reply.code, c->code);
			assert_string_equal(res->reply.enhanced, c->enhanced);
			assert_string_equal(res->reply.text, c->text);
		}
		if (c->from_done && c->session_closed_at_once) {
			/* Transaction and session end with the same result. */
			assert_int_equal(r.closed.stage, res->stage);
			assert_int_equal(r.closed.net_error, res->net_error);
		} else if (c->from_done) {
			assert_int_equal(r.closed.stage, SMTPC_QUIT);
			assert_true(r.closed.ok);
		}
		peer_fini(&p);
	}
}

static void
test_connection_refused(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct smtpc_config cfg;
	struct run r = { .nmsgs = 1 };
	int fd;

	(void)state;
	/* A port that was free a moment ago and has no listener. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	close(fd);
	test_config(&cfg, ntohs(sin.sin_port));
	run_session(&r, &cfg);
	assert_false(r.got_ready);
	assert_int_equal(r.closed.stage, SMTPC_CONNECT);
	assert_true(r.closed.net_error);
	assert_string_equal(r.closed.error, "connection refused");
}

static void
test_open_errors(void **state)
{
	static const struct {
		const char *src, *dst;
		int port;
		const char *error;
	} cases[] = {
		{ "", "not-an-ip", 25, "bad destination" },
		{ "", "127.0.0.1", 0, "bad destination" },
		{ "::1", "127.0.0.1", 25, "bad source address" },
		{ "192.0.2.77", "127.0.0.1", 25, "bind 192.0.2.77" },
	};
	static const struct smtpc_callbacks cbs = { on_ready, on_done, on_closed };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct event_base *base = event_base_new();
		struct smtpc_config cfg;
		struct run r = { .base = base };
		struct smtpc *s;

		test_config(&cfg, cases[i].port);
		str_copy(cfg.source_ip, cases[i].src, sizeof(cfg.source_ip));
		str_copy(cfg.dest_ip, cases[i].dst, sizeof(cfg.dest_ip));
		s = smtpc_new(base, &cfg, &cbs, &r);
		assert_int_equal(smtpc_open(s), -1);
		if (strstr(smtpc_error(s), cases[i].error) == NULL)
			fail_msg("case %zu: \"%s\"", i, smtpc_error(s));
		event_base_loop(base, EVLOOP_NONBLOCK);
		assert_false(r.got_closed);
		smtpc_free(s);
		event_base_free(base);
	}
}

/* ------------------------------------------------------------- TLS */

static SSL_CTX *
server_tls_ctx(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	SSL_CTX *ctx;

	assert_non_null(key);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

static void
test_starttls_ok(void **state)
{
	static const struct step script[] = {
		GREET,
		SEND("250-mx.test\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"),
		EXPECT("STARTTLS"), SEND("220 2.0.0 Ready to start TLS\r\n"),
		TLS(),
		EXPECT("EHLO client.test"),
		SEND("250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
		EXPECT("MAIL FROM:<list@example.org>"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(), SEND("250 2.0.0 queued over tls\r\n"), QUIT_END,
	};
	static const char want[] =
	    "From: list@example.org\r\nTo: user@example.com\r\nSubject: hi\r\n\r\n"
	    "hello\r\n.\r\n";
	SSL_CTX *sctx = server_tls_ctx();
	SSL_CTX *cctx = smtpc_tls_ctx_new();
	struct smtpc_config cfg;
	struct peer p;
	struct run r = { .nmsgs = 1 };

	(void)state;
	assert_non_null(cctx);
	test_config(&cfg, 0);
	cfg.starttls = true;
	cfg.ssl_ctx = cctx;
	run_script(&r, &p, script, &cfg, sctx);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_true(r.ready_tls);
	assert_true(r.done_tls);
	/* Capabilities are those of the EHLO after TLS. */
	assert_true(r.ready_pipelining);
	assert_int_equal(r.ready_max_size, 0);
	assert_int_equal(r.ndone, 1);
	assert_true(r.done[0].ok);
	assert_string_equal(r.done[0].reply.text, "queued over tls");
	assert_int_equal(p.ndata, 1);
	assert_int_equal(p.data_len[0], strlen(want));
	assert_memory_equal(p.data[0], want, strlen(want));
	peer_fini(&p);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
test_starttls_fails(void **state)
{
	static const struct {
		const char *name;
		struct step script[10];
		const char *error;
	} cases[] = {
		{ "garbage after 220 (separate)",
		  { GREET, SEND("250-mx.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		    SEND("220 Ready\r\n"), SLEEP(100),
		    SEND("this is not TLS at all, just garbage\r\n"), WAIT_EOF(), END() },
		  "TLS handshake failed" },
		{ "garbage with the 220 (injection)",
		  { GREET, SEND("250-mx.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		    SEND("220 Ready\r\ngarbage\r\n"), WAIT_EOF(), END() },
		  "" },
		{ "close after 220",
		  { GREET, SEND("250-mx.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		    SEND("220 Ready\r\n"), SLEEP(50), CLOSE(), END() },
		  "TLS handshake failed" },
	};
	SSL_CTX *cctx = smtpc_tls_ctx_new();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtpc_config cfg;
		struct peer p;
		struct run r = { .nmsgs = 1 };

		test_config(&cfg, 0);
		cfg.starttls = true;
		cfg.ssl_ctx = cctx;
		run_script(&r, &p, cases[i].script, &cfg, NULL);
		if (p.failure[0])
			fail_msg("%s: peer: %s", cases[i].name, p.failure);
		assert_false(r.got_ready);
		assert_int_equal(r.ndone, 0);
		if (r.closed.stage != SMTPC_STARTTLS || !r.closed.net_error ||
		    strstr(r.closed.error, cases[i].error) == NULL)
			fail_msg("%s: stage %s error \"%s\"", cases[i].name,
			    smtpc_stage_name(r.closed.stage), r.closed.error);
	}
	SSL_CTX_free(cctx);
}

static void
test_starttls_refused_goes_on_clear(void **state)
{
	static const struct step script[] = {
		GREET, SEND("250-mx.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS"),
		SEND("454 4.7.0 TLS not available\r\n"),
		MAIL_OK, RCPT_OK, DATA_OK, DATA(), SEND("250 ok\r\n"), QUIT_END,
	};
	SSL_CTX *cctx = smtpc_tls_ctx_new();
	struct smtpc_config cfg;
	struct peer p;
	struct run r = { .nmsgs = 1 };

	(void)state;
	test_config(&cfg, 0);
	cfg.starttls = true;
	cfg.ssl_ctx = cctx;
	run_script(&r, &p, script, &cfg, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_false(r.ready_tls);
	assert_true(r.done[0].ok);
	peer_fini(&p);
	SSL_CTX_free(cctx);
}

/* A large message goes out in blocks and arrives intact. */
static void
test_large_message(void **state)
{
	static const struct step script[] = {
		GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 ok\r\n"),
		QUIT_END,
	};
	size_t n = 200 * 1024 / 64, len = 0;
	char *msg = malloc(n * 64 + 32);
	struct peer p;
	struct run r = { .nmsgs = 1 };

	(void)state;
	len += (size_t)snprintf(msg, 32, "Subject: big\n\n");
	for (size_t i = 0; i < n - 1; i++) {
		memset(msg + len, i % 7 == 0 ? '.' : 'a', 62);
		msg[len + 62] = '\n';
		len += 63;
	}
	msg[len] = '\0';
	r.msg = msg;
	run_script(&r, &p, script, NULL, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_true(r.done[0].ok);
	assert_int_equal(p.ndata, 1);
	/* every LF became CRLF, every 7th line got one more dot, plus ".\r\n" */
	assert_int_equal(p.data_len[0], len + (n + 1) + (n - 1 + 6) / 7 + 3);
	peer_fini(&p);
	free(msg);
}

/* A peer that stops reading mid-message: no progress for t_data_block. */
static void
test_data_block_timeout(void **state)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, SLEEP(1500), END(),
	};
	size_t len = 32 * 1024 * 1024;
	char *msg = malloc(len + 1);
	struct smtpc_config cfg;
	struct peer p;
	struct run r = { .nmsgs = 1 };

	(void)state;
	memset(msg, 'a', len);
	for (size_t i = 999; i < len; i += 1000)
		msg[i] = '\n';
	msg[len] = '\0';
	r.msg = msg;
	test_config(&cfg, 0);
	cfg.t_data_block = 300;
	run_script(&r, &p, script, &cfg, NULL);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
	assert_int_equal(r.ndone, 1);
	assert_true(r.done[0].net_error);
	assert_int_equal(r.done[0].stage, SMTPC_DOT);
	assert_string_equal(r.done[0].error,
	    "timeout after 300ms sending message data");
	assert_true(r.closed.net_error);
	free(msg);
}

/* ------------------------------------------------------------- probe */

struct probe_want {
	enum smtpc_stage stage;
	bool ok;
	bool net_error;
	int code;
	const char *enhanced;
	const char *text;       /* exact reply text, or error substring */
};

struct probe_case {
	const char *name;
	const char *ops;        /* 'p' probe, 's' send */
	struct step script[40];
	struct probe_want want[3];
	const char *cmds;       /* every command the peer read, in order */
	enum smtpc_stage closed_stage;
	bool closed_ok;
};

#define RSET_OK EXPECT("RSET"), SEND("250 2.0.0 Ok\r\n")
#define PROBE_CMDS "EHLO client.test\nMAIL FROM:<list@example.org>\n" \
	"RCPT TO:<user@example.com>\nRSET\n"

static const struct probe_case probe_cases[] = {
	{ "accepted, lock-step", "p",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, RSET_OK, QUIT_END },
	  { { SMTPC_RCPT, true, false, 250, "2.1.5", "ok" } },
	  PROBE_CMDS "QUIT\n", SMTPC_QUIT, true },
	{ "accepted, pipelined in one write", "p",
	  /* The peer answers only after all three commands have arrived. */
	  { GREET, EHLO_PIPE, EXPECT("MAIL FROM:<list@example.org>"),
	    EXPECT("RCPT TO:<user@example.com>"), EXPECT("RSET"),
	    SEND("250 2.1.0 ok\r\n250 2.1.5 recipient ok\r\n250 2.0.0 reset\r\n"),
	    QUIT_END },
	  { { SMTPC_RCPT, true, false, 250, "2.1.5", "recipient ok" } },
	  PROBE_CMDS "QUIT\n", SMTPC_QUIT, true },
	{ "refused at RCPT with a block text", "p",
	  { GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("RSET"),
	    SEND("250 2.1.0 ok\r\n554 5.7.1 Service unavailable; Client host "
	         "[127.0.0.1] blocked using zen.spamhaus.org\r\n250 2.0.0 Ok\r\n"),
	    QUIT_END },
	  { { SMTPC_RCPT, false, false, 554, "5.7.1", "Service unavailable; "
	      "Client host [127.0.0.1] blocked using zen.spamhaus.org" } },
	  PROBE_CMDS "QUIT\n", SMTPC_QUIT, true },
	{ "refused at RCPT, lock-step, closing RSET refused too", "p",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"),
	    SEND("550-5.7.1 [127.0.0.1] poor reputation\r\n550 5.7.1 go away\r\n"),
	    EXPECT("RSET"), SEND("503 5.5.1 no\r\n"), QUIT_END },
	  { { SMTPC_RCPT, false, false, 550, "5.7.1",
	      "[127.0.0.1] poor reputation go away" } },
	  PROBE_CMDS "QUIT\n", SMTPC_QUIT, true },
	{ "refused at MAIL, lock-step: no RCPT", "p",
	  { GREET, EHLO_PLAIN, EXPECT("MAIL"),
	    SEND("553 5.7.1 [BL21] Connections will not be accepted\r\n"),
	    RSET_OK, QUIT_END },
	  { { SMTPC_MAIL, false, false, 553, "5.7.1",
	      "[BL21] Connections will not be accepted" } },
	  "EHLO client.test\nMAIL FROM:<list@example.org>\nRSET\nQUIT\n",
	  SMTPC_QUIT, true },
	{ "refused at MAIL, pipelined: first refusal reported", "p",
	  { GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("RSET"),
	    SEND("550 5.7.1 banned sending IP\r\n503 5.5.1 need MAIL\r\n"
	         "250 2.0.0 Ok\r\n"), QUIT_END },
	  { { SMTPC_MAIL, false, false, 550, "5.7.1", "banned sending IP" } },
	  PROBE_CMDS "QUIT\n", SMTPC_QUIT, true },
	{ "421 at MAIL closes", "p",
	  { GREET, EHLO_PLAIN, EXPECT("MAIL"),
	    SEND("421 4.7.0 [TSS04] Messages temporarily deferred\r\n"),
	    WAIT_EOF(), END() },
	  { { SMTPC_MAIL, false, false, 421, "4.7.0",
	      "[TSS04] Messages temporarily deferred" } },
	  "EHLO client.test\nMAIL FROM:<list@example.org>\n", SMTPC_MAIL, false },
	{ "421 at the closing RSET keeps the accepted answer", "p",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, EXPECT("RSET"),
	    SEND("421 4.4.2 bye\r\n"), WAIT_EOF(), END() },
	  { { SMTPC_RCPT, true, false, 250, "2.1.5", "ok" } },
	  PROBE_CMDS, SMTPC_RSET, false },
	{ "silence at RCPT: net_error", "p",
	  { GREET, EHLO_PLAIN, MAIL_OK, EXPECT("RCPT"), WAIT_EOF(), END() },
	  { { SMTPC_RCPT, false, true, 0, NULL, "timeout after 300ms waiting "
	      "for reply to RCPT TO" } },
	  "EHLO client.test\nMAIL FROM:<list@example.org>\n"
	  "RCPT TO:<user@example.com>\n", SMTPC_RCPT, false },
	{ "probe then send: no RSET needed after a clean probe", "ps",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, RSET_OK,
	    MAIL_OK, RCPT_OK, DATA_OK, DATA(), SEND("250 2.0.0 queued\r\n"),
	    QUIT_END },
	  { { SMTPC_RCPT, true, false, 250, "2.1.5", "ok" },
	    { SMTPC_DOT, true, false, 250, "2.0.0", "queued" } },
	  PROBE_CMDS "MAIL FROM:<list@example.org>\nRCPT TO:<user@example.com>\n"
	  "DATA\nQUIT\n", SMTPC_QUIT, true },
	{ "refused probe then send, pipelined", "ps",
	  { GREET, EHLO_PIPE, EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("RSET"),
	    SEND("250 ok\r\n450 4.7.1 Client host rejected: cannot find your "
	         "hostname\r\n250 Ok\r\n"),
	    EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
	    SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(),
	    SEND("250 2.0.0 queued\r\n"), QUIT_END },
	  { { SMTPC_RCPT, false, false, 450, "4.7.1",
	      "Client host rejected: cannot find your hostname" },
	    { SMTPC_DOT, true, false, 250, "2.0.0", "queued" } },
	  PROBE_CMDS "MAIL FROM:<list@example.org>\nRCPT TO:<user@example.com>\n"
	  "DATA\nQUIT\n", SMTPC_QUIT, true },
	{ "send then probe then send: RSET before each after the first", "sps",
	  { GREET, EHLO_PLAIN, MAIL_OK, RCPT_OK, DATA_OK, DATA(),
	    SEND("250 2.0.0 one\r\n"),
	    RSET_OK, MAIL_OK, RCPT_OK, EXPECT("RSET"), SEND("500 what\r\n"),
	    RSET_OK, MAIL_OK, RCPT_OK, DATA_OK, DATA(), SEND("250 2.0.0 two\r\n"),
	    QUIT_END },
	  { { SMTPC_DOT, true, false, 250, "2.0.0", "one" },
	    { SMTPC_RCPT, true, false, 250, "2.1.5", "ok" },
	    { SMTPC_DOT, true, false, 250, "2.0.0", "two" } },
	  "EHLO client.test\nMAIL FROM:<list@example.org>\n"
	  "RCPT TO:<user@example.com>\nDATA\n"
	  "RSET\nMAIL FROM:<list@example.org>\nRCPT TO:<user@example.com>\nRSET\n"
	  "RSET\nMAIL FROM:<list@example.org>\nRCPT TO:<user@example.com>\nDATA\n"
	  "QUIT\n", SMTPC_QUIT, true },
};

static void
test_probe(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(probe_cases) / sizeof(probe_cases[0]); i++) {
		const struct probe_case *c = &probe_cases[i];
		size_t nops = strlen(c->ops);
		int nsends;
		struct smtpc_config cfg;
		struct peer p;
		struct run r = { .ops = c->ops };

		print_message("case: %s\n", c->name);
		test_config(&cfg, 0);
		cfg.t_rcpt = 300;
		run_script(&r, &p, c->script, &cfg, NULL);
		if (p.failure[0])
			fail_msg("%s: peer: %s", c->name, p.failure);
		if ((size_t)r.ndone != nops)
			fail_msg("%s: %d done callbacks, want %zu", c->name, r.ndone,
			    nops);
		for (size_t k = 0; k < nops; k++) {
			const struct probe_want *w = &c->want[k];
			const struct smtpc_result *res = &r.done[k];

			if (res->stage != w->stage || res->ok != w->ok ||
			    res->net_error != w->net_error)
				fail_msg("%s: done %zu: stage %s ok %d net_error %d "
				    "(%d %s \"%s\" / \"%s\")", c->name, k,
				    smtpc_stage_name(res->stage), res->ok,
				    res->net_error, res->reply.code, res->reply.enhanced,
				    res->reply.text, res->error);
			if (w->net_error) {
				if (strstr(res->error, w->text) == NULL)
					fail_msg("%s: error \"%s\"", c->name, res->error);
				continue;
			}
			assert_int_equal(res->reply.code, w->code);
			assert_string_equal(res->reply.enhanced, w->enhanced);
			assert_string_equal(res->reply.text, w->text);
		}
		if (strcmp(p.cmds, c->cmds) != 0)
			fail_msg("%s: peer read\n%s\nwant\n%s", c->name, p.cmds, c->cmds);
		/* A probe never sends DATA: one message per send. */
		nsends = 0;
		for (size_t k = 0; k < nops; k++)
			nsends += c->ops[k] == 's';
		assert_int_equal(p.ndata, nsends);
		if (r.closed.stage != c->closed_stage || r.closed.ok != c->closed_ok)
			fail_msg("%s: closed at %s ok %d", c->name,
			    smtpc_stage_name(r.closed.stage), r.closed.ok);
		peer_fini(&p);
	}
}

static void
test_probe_refused_calls(void **state)
{
	static const struct step script[] = { GREET, EHLO_PLAIN, QUIT_END };
	static const struct smtpc_callbacks cbs = { on_ready, on_done, on_closed };
	struct event_base *base = event_base_new();
	struct smtpc_config cfg;
	struct run r = { .base = base, .nmsgs = -1 };
	struct peer p;
	struct smtpc *s;

	(void)state;
	/* Before open and with bad addresses: -1, and no callback. */
	test_config(&cfg, 1);
	s = smtpc_new(base, &cfg, &cbs, &r);
	assert_int_equal(smtpc_probe(s, "list@example.org", "user@example.com"), -1);
	smtpc_free(s);
	event_base_free(base);

	peer_start(&p, script, NULL);
	test_config(&cfg, p.port);
	r.base = event_base_new();
	r.s = smtpc_new(r.base, &cfg, &cbs, &r);
	assert_int_equal(smtpc_open(r.s), 0);
	while (!r.got_ready && !r.got_closed)
		event_base_loop(r.base, EVLOOP_ONCE);
	assert_true(r.got_ready);
	assert_int_equal(smtpc_probe(r.s, "list@example.org", ""), -1);
	assert_int_equal(smtpc_probe(r.s, "a<b@x", "user@example.com"), -1);
	assert_int_equal(smtpc_probe(r.s, "list@example.org", "u ser@x"), -1);
	assert_true(smtpc_is_idle(r.s));
	assert_int_equal(smtpc_transactions(r.s), 0);
	smtpc_quit(r.s);
	event_base_dispatch(r.base);
	assert_int_equal(r.ndone, 0);
	assert_true(r.got_closed);
	assert_true(r.closed.ok);
	event_base_free(r.base);
	peer_join(&p);
	if (p.failure[0])
		fail_msg("peer: %s", p.failure);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_parser),
		cmocka_unit_test(test_reply_parser_long_text),
		cmocka_unit_test(test_plain_delivery_bytes),
		cmocka_unit_test(test_multiline_greeting_and_caps),
		cmocka_unit_test(test_ehlo_5xx_helo_fallback),
		cmocka_unit_test(test_pipelining_in_order),
		cmocka_unit_test(test_two_transactions_rset),
		cmocka_unit_test(test_source_address),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_starttls_ok),
		cmocka_unit_test(test_starttls_fails),
		cmocka_unit_test(test_starttls_refused_goes_on_clear),
		cmocka_unit_test(test_large_message),
		cmocka_unit_test(test_data_block_timeout),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_probe_refused_calls),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("SLUICE_TRACE") != NULL)
		log_set_trace(getenv("SLUICE_TRACE"));
	else
		log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
