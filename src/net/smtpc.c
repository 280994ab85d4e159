/*
 * smtpc: see smtpc.h. One state machine; every event handler runs between
 * session_enter/session_leave so that smtpc_free from inside a callback only
 * marks the session dead and the memory goes when the handler unwinds.
 */
#include "net/smtpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "util/log.h"
#include "util/str.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define SMTPC_ADDR_MAX 512
#define SMTPC_CMD_MAX (SMTPC_ADDR_MAX + 128)
#define SMTPC_DATA_CHUNK (64 * 1024)
#define SMTPC_EHLO_LINE_MAX 256

enum smtpc_state {
	ST_NEW,
	ST_CONNECTING,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_HANDSHAKE,
	ST_IDLE,
	ST_TXN,         /* RSET/MAIL/RCPT/DATA replies outstanding */
	ST_BODY,        /* message going out / waiting for the reply to "." */
	ST_QUIT,
	ST_CLOSED,
};

struct smtpc_txn {
	enum smtpc_stage cmds[4];
	int ncmds;
	int nsent;
	int nreplied;
	bool failed;            /* fail holds the first failure */
	bool discard_dot;       /* a lone "." went out after a stray 354 */
	bool body_sent;         /* the whole message has left our buffers */
	bool probe;             /* smtpc_probe: ... RCPT, RSET; no DATA */
	bool accepted;          /* probe: RCPT got 2xx, answer holds it */
	struct smtpc_reply answer;
	struct smtpc_result fail;
	struct evbuffer *body;  /* normalised message + ".\r\n" */
	size_t size;
	bool eightbit;
	char from[SMTPC_ADDR_MAX + 1];
	char rcpt[SMTPC_ADDR_MAX + 1];
	msec_t t0;
};

struct smtpc {
	struct event_base *base;
	struct smtpc_config cfg;
	struct smtpc_callbacks cb;
	void *arg;

	enum smtpc_state state;
	struct bufferevent *bev;        /* socket, or the TLS filter over it */
	struct event *timer;
	struct event *kick;             /* deferred local transaction end */
	const char *timer_what;
	int timer_ms;

	struct smtp_reply_parser parser;
	char *line;                     /* max_line + 1 bytes */

	bool tls;
	bool pipelining;
	bool eightbitmime;
	bool enhancedstatus;
	bool starttls_offered;
	bool size_offered;
	size_t max_size;

	int ntxn;
	bool need_rset;                 /* a transaction or probe came before and
	                                 * the session is not known to be reset */
	bool in_txn;
	struct smtpc_txn txn;

	bool quit_pending;
	bool ready_called;
	int busy;
	bool dead;
	msec_t t_open;
	char error[256];
};

static void session_destroy(struct smtpc *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

const char *
smtpc_stage_name(enum smtpc_stage stage)
{
	switch (stage) {
	case SMTPC_CONNECT:
		return "connect";
	case SMTPC_GREETING:
		return "greeting";
	case SMTPC_EHLO:
		return "ehlo";
	case SMTPC_HELO:
		return "helo";
	case SMTPC_STARTTLS:
		return "starttls";
	case SMTPC_MAIL:
		return "mail";
	case SMTPC_RCPT:
		return "rcpt";
	case SMTPC_DATA:
		return "data";
	case SMTPC_DOT:
		return "dot";
	case SMTPC_RSET:
		return "rset";
	case SMTPC_QUIT:
		return "quit";
	case SMTPC_IDLE:
		return "idle";
	}
	return "unknown";
}

/* What the peer is being waited for, for timeout messages. */
static const char *
stage_wait_text(enum smtpc_stage stage)
{
	switch (stage) {
	case SMTPC_CONNECT:
		return "connecting";
	case SMTPC_GREETING:
		return "waiting for greeting";
	case SMTPC_EHLO:
		return "waiting for reply to EHLO";
	case SMTPC_HELO:
		return "waiting for reply to HELO";
	case SMTPC_STARTTLS:
		return "waiting for reply to STARTTLS";
	case SMTPC_MAIL:
		return "waiting for reply to MAIL FROM";
	case SMTPC_RCPT:
		return "waiting for reply to RCPT TO";
	case SMTPC_DATA:
		return "waiting for reply to DATA";
	case SMTPC_DOT:
		return "waiting for reply to end of data";
	case SMTPC_RSET:
		return "waiting for reply to RSET";
	case SMTPC_QUIT:
		return "waiting for reply to QUIT";
	case SMTPC_IDLE:
		return "idle";
	}
	return "waiting";
}

static int
stage_timeout(const struct smtpc *s, enum smtpc_stage stage)
{
	const struct smtpc_config *c = &s->cfg;
	int ms = 0, dflt = 300000;

	switch (stage) {
	case SMTPC_CONNECT:
		ms = c->t_connect;
		dflt = 30000;
		break;
	case SMTPC_GREETING:
		ms = c->t_greeting;
		break;
	case SMTPC_EHLO:
	case SMTPC_HELO:
		ms = c->t_ehlo;
		break;
	case SMTPC_STARTTLS:
		ms = c->t_starttls;
		break;
	case SMTPC_MAIL:
		ms = c->t_mail;
		break;
	case SMTPC_RCPT:
		ms = c->t_rcpt;
		break;
	case SMTPC_DATA:
		ms = c->t_data;
		dflt = 120000;
		break;
	case SMTPC_DOT:
		ms = c->t_dot;
		dflt = 600000;
		break;
	case SMTPC_RSET:
		ms = c->t_rset;
		dflt = 60000;
		break;
	case SMTPC_QUIT:
		ms = c->t_quit;
		dflt = 60000;
		break;
	case SMTPC_IDLE:
		break;
	}
	return ms > 0 ? ms : dflt;
}

static enum smtpc_stage
current_stage(const struct smtpc *s)
{
	switch (s->state) {
	case ST_NEW:
	case ST_CONNECTING:
		return SMTPC_CONNECT;
	case ST_GREETING:
		return SMTPC_GREETING;
	case ST_EHLO:
		return SMTPC_EHLO;
	case ST_HELO:
		return SMTPC_HELO;
	case ST_STARTTLS:
	case ST_HANDSHAKE:
		return SMTPC_STARTTLS;
	case ST_TXN:
		if (s->txn.nreplied < s->txn.ncmds)
			return s->txn.cmds[s->txn.nreplied];
		return SMTPC_MAIL;
	case ST_BODY:
		return SMTPC_DOT;
	case ST_QUIT:
		return SMTPC_QUIT;
	case ST_IDLE:
	case ST_CLOSED:
		return SMTPC_IDLE;
	}
	return SMTPC_IDLE;
}

static void
fmt_duration(char *out, size_t n, int ms)
{
	if (ms % 1000 == 0)
		snprintf(out, n, "%ds", ms / 1000);
	else
		snprintf(out, n, "%dms", ms);
}

static void
timer_arm(struct smtpc *s, int ms, const char *what)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	s->timer_ms = ms;
	s->timer_what = what;
	evtimer_add(s->timer, &tv);
}

static void
timer_arm_stage(struct smtpc *s, enum smtpc_stage stage)
{
	timer_arm(s, stage_timeout(s, stage), stage_wait_text(stage));
}

static void
session_enter(struct smtpc *s)
{
	s->busy++;
}

static void
session_leave(struct smtpc *s)
{
	if (--s->busy == 0 && s->dead)
		session_destroy(s);
}

/* Drop the connection and timers; the session object stays. */
static void
conn_close(struct smtpc *s)
{
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->timer != NULL)
		evtimer_del(s->timer);
	if (s->kick != NULL)
		event_del(s->kick);
	s->state = ST_CLOSED;
}

static void
txn_clear(struct smtpc *s)
{
	if (s->txn.body != NULL)
		evbuffer_free(s->txn.body);
	memset(&s->txn, 0, sizeof(s->txn));
	s->in_txn = false;
}

static void
reply_copy(struct smtpc_reply *dst, const struct smtp_reply *src)
{
	dst->code = src->code;
	str_copy(dst->enhanced, src->enhanced, sizeof(dst->enhanced));
	str_copy(dst->text, src->text, sizeof(dst->text));
}

static int
elapsed_ms(msec_t t0)
{
	msec_t d = time_mono_ms() - t0;

	return d > 0x7fffffff ? 0x7fffffff : (int)d;
}

static void
log_result(const struct smtpc *s, const char *event, const struct smtpc_result *r)
{
	char qtext[512], qerr[300], qfrom[200], qrcpt[200];
	const char *src = s->cfg.source_ip[0] ? s->cfg.source_ip : "-";

	log_quote(qtext, sizeof(qtext), r->net_error ? "" : r->reply.text);
	log_quote(qerr, sizeof(qerr), r->net_error ? r->error : "");
	if (strcmp(event, "session_end") != 0) {
		log_quote(qfrom, sizeof(qfrom), s->txn.from);
		log_quote(qrcpt, sizeof(qrcpt), s->txn.rcpt);
		log_info("smtp", "event=%s src=%s dst=%s port=%d from=%s "
		    "rcpt=%s size=%zu stage=%s ok=%d net_error=%d code=%d "
		    "enhanced=%s text=%s error=%s tls=%d duration_ms=%d", event, src,
		    s->cfg.dest_ip, s->cfg.dest_port, qfrom, qrcpt, s->txn.size,
		    smtpc_stage_name(r->stage), r->ok, r->net_error,
		    r->net_error ? 0 : r->reply.code,
		    r->reply.enhanced[0] ? r->reply.enhanced : "-", qtext, qerr,
		    s->tls, r->duration_ms);
	} else {
		log_info("smtp", "event=session_end src=%s dst=%s port=%d stage=%s "
		    "ok=%d net_error=%d code=%d enhanced=%s text=%s error=%s "
		    "tls=%d transactions=%d duration_ms=%d", src, s->cfg.dest_ip,
		    s->cfg.dest_port, smtpc_stage_name(r->stage), r->ok,
		    r->net_error, r->net_error ? 0 : r->reply.code,
		    r->reply.enhanced[0] ? r->reply.enhanced : "-", qtext, qerr,
		    s->tls, s->ntxn, r->duration_ms);
	}
}

/*
 * What the running transaction reports: its first failure, else for a probe
 * the accepted RCPT, else other.
 */
static void
txn_result(const struct smtpc *s, const struct smtpc_result *other,
    struct smtpc_result *r)
{
	const struct smtpc_txn *t = &s->txn;

	if (t->failed) {
		*r = t->fail;
	} else if (t->probe && t->accepted) {
		memset(r, 0, sizeof(*r));
		r->stage = SMTPC_RCPT;
		r->ok = true;
		r->reply = t->answer;
	} else {
		*r = *other;
	}
}

static const char *
txn_event(const struct smtpc *s)
{
	return s->txn.probe ? "probe" : "transaction";
}

/*
 * End the session with r: the connection goes first, then done (when a
 * transaction was running: its first failure if it had one, a probe's
 * accepted RCPT, else r), then closed.
 */
static void
session_end(struct smtpc *s, struct smtpc_result *r)
{
	conn_close(s);
	if (s->in_txn) {
		struct smtpc_result tr;

		txn_result(s, r, &tr);
		tr.duration_ms = elapsed_ms(s->txn.t0);
		log_result(s, txn_event(s), &tr);
		txn_clear(s);
		if (s->cb.done != NULL)
			s->cb.done(s, &tr, s->arg);
		if (s->dead)
			return;
	}
	r->duration_ms = elapsed_ms(s->t_open);
	log_result(s, "session_end", r);
	if (s->cb.closed != NULL)
		s->cb.closed(s, r, s->arg);
}

static void
fail_net(struct smtpc *s, enum smtpc_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail_net(struct smtpc *s, enum smtpc_stage stage, const char *fmt, ...)
{
	struct smtpc_result r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.stage = stage;
	r.net_error = true;
	va_start(ap, fmt);
	vsnprintf(r.error, sizeof(r.error), fmt, ap);
	va_end(ap);
	session_end(s, &r);
}

static void
fail_reply(struct smtpc *s, enum smtpc_stage stage, const struct smtp_reply *rep)
{
	struct smtpc_result r;

	memset(&r, 0, sizeof(r));
	r.stage = stage;
	reply_copy(&r.reply, rep);
	session_end(s, &r);
}

static void
send_cmd(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
send_cmd(struct smtpc *s, const char *fmt, ...)
{
	char cmd[SMTPC_CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(cmd) - 3)
		n = (int)sizeof(cmd) - 3;
	if (log_is_tracing("smtp")) {
		char q[SMTPC_CMD_MAX + 16];

		log_quote(q, sizeof(q), cmd);
		log_trace("smtp", "event=send dst=%s line=%s", s->cfg.dest_ip, q);
	}
	cmd[n++] = '\r';
	cmd[n++] = '\n';
	bufferevent_write(s->bev, cmd, (size_t)n);
}

static void
caps_reset(struct smtpc *s)
{
	s->pipelining = false;
	s->eightbitmime = false;
	s->enhancedstatus = false;
	s->starttls_offered = false;
	s->size_offered = false;
	s->max_size = 0;
}

/* One EHLO response line's text (after "250-"): a keyword and parameters. */
static void
caps_parse_line(struct smtpc *s, const char *text, size_t len)
{
	char kw[SMTPC_EHLO_LINE_MAX];
	char *param;
	int64_t n;

	if (len >= sizeof(kw))
		len = sizeof(kw) - 1;
	memcpy(kw, text, len);
	kw[len] = '\0';
	param = strchr(kw, ' ');
	if (param != NULL) {
		*param++ = '\0';
		param = str_trim(param);
	}
	if (str_iequal(kw, "PIPELINING"))
		s->pipelining = true;
	else if (str_iequal(kw, "8BITMIME"))
		s->eightbitmime = true;
	else if (str_iequal(kw, "STARTTLS"))
		s->starttls_offered = true;
	else if (str_iequal(kw, "ENHANCEDSTATUSCODES"))
		s->enhancedstatus = true;
	else if (str_iequal(kw, "SIZE")) {
		s->size_offered = true;
		s->max_size = 0;
		if (param != NULL && str_to_i64(param, 0, INT64_MAX, &n) == 0)
			s->max_size = (size_t)n;
	}
}

static void
send_ehlo(struct smtpc *s)
{
	caps_reset(s);
	s->state = ST_EHLO;
	send_cmd(s, "EHLO %s", s->cfg.helo[0] ? s->cfg.helo : "localhost");
	timer_arm_stage(s, SMTPC_EHLO);
}

static void
send_quit(struct smtpc *s)
{
	s->state = ST_QUIT;
	send_cmd(s, "QUIT");
	timer_arm_stage(s, SMTPC_QUIT);
}

/* Setup done or transaction over: idle, unless a QUIT is waiting. */
static void
become_idle(struct smtpc *s)
{
	s->state = ST_IDLE;
	if (s->quit_pending) {
		send_quit(s);
		return;
	}
	if (!s->ready_called) {
		s->ready_called = true;
		if (s->cb.ready != NULL)
			s->cb.ready(s, s->arg);
	}
}

static void
start_tls(struct smtpc *s)
{
	struct bufferevent *filter;
	SSL *ssl;

	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		fail_net(s, SMTPC_STARTTLS, "unexpected data after STARTTLS reply");
		return;
	}
	ssl = SSL_new(s->cfg.ssl_ctx);
	if (ssl == NULL) {
		fail_net(s, SMTPC_STARTTLS, "TLS setup failed: SSL_new");
		return;
	}
	filter = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (filter == NULL) {
		SSL_free(ssl);
		fail_net(s, SMTPC_STARTTLS, "TLS setup failed: filter");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	s->bev = filter;
	bufferevent_setcb(filter, read_cb, write_cb, event_cb, s);
	bufferevent_enable(filter, EV_READ | EV_WRITE);
	s->state = ST_HANDSHAKE;
	timer_arm(s, stage_timeout(s, SMTPC_STARTTLS), "in TLS handshake");
}

static void
after_ehlo(struct smtpc *s)
{
	if (s->cfg.starttls && s->cfg.ssl_ctx != NULL && s->starttls_offered &&
	    !s->tls) {
		s->state = ST_STARTTLS;
		send_cmd(s, "STARTTLS");
		timer_arm_stage(s, SMTPC_STARTTLS);
		return;
	}
	become_idle(s);
}

/* --- transactions --- */

static void
txn_send_cmd(struct smtpc *s, int i)
{
	struct smtpc_txn *t = &s->txn;
	char params[64] = "";

	switch (t->cmds[i]) {
	case SMTPC_RSET:
		send_cmd(s, "RSET");
		break;
	case SMTPC_MAIL: {
		size_t off = 0;

		if (s->size_offered && !t->probe)
			off = (size_t)snprintf(params, sizeof(params), " SIZE=%zu",
			    t->size);
		if (s->eightbitmime && t->eightbit && off < sizeof(params))
			snprintf(params + off, sizeof(params) - off, " BODY=8BITMIME");
		send_cmd(s, "MAIL FROM:<%s>%s", t->from, params);
		break;
	}
	case SMTPC_RCPT:
		send_cmd(s, "RCPT TO:<%s>", t->rcpt);
		break;
	case SMTPC_DATA:
		send_cmd(s, "DATA");
		break;
	default:
		break;
	}
	t->nsent++;
}

static void
txn_finish(struct smtpc *s)
{
	struct smtpc_result r, other;

	memset(&other, 0, sizeof(other));
	if (s->txn.probe) {
		/* Not reached: a probe ends after RCPT was answered. */
		other.stage = SMTPC_RCPT;
		other.net_error = true;
		str_copy(other.error, "protocol error: probe without RCPT reply",
		    sizeof(other.error));
	} else {
		other.stage = SMTPC_DOT;
		other.ok = true;
		reply_copy(&other.reply, &s->parser.reply);
	}
	txn_result(s, &other, &r);
	r.duration_ms = elapsed_ms(s->txn.t0);
	log_result(s, txn_event(s), &r);
	txn_clear(s);
	evtimer_del(s->timer);
	s->state = ST_IDLE;
	if (s->cb.done != NULL)
		s->cb.done(s, &r, s->arg);
	if (s->dead || s->state != ST_IDLE || s->in_txn)
		return;
	if (s->quit_pending)
		send_quit(s);
}

static void
txn_record_failure(struct smtpc *s, enum smtpc_stage stage,
    const struct smtp_reply *rep)
{
	struct smtpc_result *f = &s->txn.fail;

	if (s->txn.failed)
		return;
	s->txn.failed = true;
	memset(f, 0, sizeof(*f));
	f->stage = stage;
	reply_copy(&f->reply, rep);
}

/* Hand the next block of the message to the bufferevent. */
static void
body_push(struct smtpc *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	evbuffer_remove_buffer(s->txn.body, out, SMTPC_DATA_CHUNK);
	timer_arm(s, s->cfg.t_data_block > 0 ? s->cfg.t_data_block : 180000,
	    "sending message data");
}

static void
body_start(struct smtpc *s)
{
	s->state = ST_BODY;
	s->txn.body_sent = false;
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTPC_DATA_CHUNK, 0);
	body_push(s);
}

/*
 * A probe's reply: [RSET] MAIL RCPT RSET. The first failure (or the RCPT
 * acceptance) is the answer; the closing RSET's reply only says whether the
 * session is clean. Lock-step, a refusal skips straight to the closing RSET.
 */
static void
probe_reply(struct smtpc *s, enum smtpc_stage stage, const struct smtp_reply *rep)
{
	struct smtpc_txn *t = &s->txn;

	if (t->nreplied == t->ncmds) {
		if (rep->code / 100 == 2)
			s->need_rset = false;
	} else if (rep->code / 100 != 2) {
		txn_record_failure(s, stage, rep);
	} else if (stage == SMTPC_RCPT && !t->failed) {
		t->accepted = true;
		reply_copy(&t->answer, rep);
	}
	if (t->nreplied < t->nsent) {
		timer_arm_stage(s, t->cmds[t->nreplied]);
		return;
	}
	if (t->nreplied >= t->ncmds) {
		txn_finish(s);
		return;
	}
	if (t->failed)
		t->nreplied = t->nsent = t->ncmds - 1;
	txn_send_cmd(s, t->nreplied);
	timer_arm_stage(s, t->cmds[t->nreplied]);
}

static void
txn_reply(struct smtpc *s, const struct smtp_reply *rep)
{
	struct smtpc_txn *t = &s->txn;
	enum smtpc_stage stage;

	if (t->nreplied >= t->nsent) {
		fail_net(s, SMTPC_MAIL, "protocol error: unexpected reply %d",
		    rep->code);
		return;
	}
	stage = t->cmds[t->nreplied++];
	if (t->probe) {
		probe_reply(s, stage, rep);
		return;
	}
	if (stage == SMTPC_DATA) {
		if (rep->code == 354 && t->failed) {
			/* RFC 2920 3.1: end the stray message at once. */
			send_cmd(s, ".");
			t->discard_dot = true;
			s->state = ST_BODY;
			t->body_sent = true;
			timer_arm_stage(s, SMTPC_DOT);
			return;
		}
		if (rep->code == 354) {
			body_start(s);
			return;
		}
		txn_record_failure(s, stage, rep);
	} else if (rep->code / 100 != 2) {
		txn_record_failure(s, stage, rep);
	}
	if (t->nreplied < t->nsent) {
		timer_arm_stage(s, t->cmds[t->nreplied]);
		return;
	}
	if (t->failed || t->nreplied >= t->ncmds) {
		txn_finish(s);
		return;
	}
	txn_send_cmd(s, t->nreplied);
	timer_arm_stage(s, t->cmds[t->nreplied]);
}

static void
body_reply(struct smtpc *s, const struct smtp_reply *rep)
{
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	if (!s->txn.discard_dot && rep->code / 100 != 2)
		txn_record_failure(s, SMTPC_DOT, rep);
	txn_finish(s);
}

/*
 * Copy data into out once: LF, CRLF or a bare CR (not followed by LF) line
 * ends become CRLF, a '.' that starts a line is doubled, a last line
 * without an end gets CRLF, and ".\r\n" closes. So no "\r.\r\n" or other
 * bare CR reaches the server. Returns whether any byte has the high bit set.
 */
static bool
body_build(struct evbuffer *out, const char *data, size_t len)
{
	size_t span = 0;
	bool bol = true, eightbit = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c & 0x80)
			eightbit = true;
		if (bol && c == '.') {
			evbuffer_add(out, data + span, i - span);
			evbuffer_add(out, ".", 1);
			span = i;
		}
		bol = false;
		if (c == '\r' && (i + 1 == len || data[i + 1] != '\n')) {
			evbuffer_add(out, data + span, i - span);
			evbuffer_add(out, "\r\n", 2);
			span = i + 1;
			bol = true;
		} else if (c == '\n') {
			if (i == 0 || data[i - 1] != '\r') {
				evbuffer_add(out, data + span, i - span);
				evbuffer_add(out, "\r\n", 2);
				span = i + 1;
			}
			bol = true;
		}
	}
	evbuffer_add(out, data + span, len - span);
	if (!bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	return eightbit;
}

/* --- replies and events --- */

static void
handle_reply(struct smtpc *s, const struct smtp_reply *rep)
{
	enum smtpc_stage stage = current_stage(s);

	evtimer_del(s->timer);
	if (rep->code == 421 && s->state != ST_QUIT) {
		fail_reply(s, stage, rep);
		return;
	}
	switch (s->state) {
	case ST_GREETING:
		if (rep->code == 220)
			send_ehlo(s);
		else
			fail_reply(s, SMTPC_GREETING, rep);
		break;
	case ST_EHLO:
		if (rep->code == 250)
			after_ehlo(s);
		else if (rep->code / 100 == 5) {
			caps_reset(s);
			s->state = ST_HELO;
			send_cmd(s, "HELO %s", s->cfg.helo[0] ? s->cfg.helo :
			    "localhost");
			timer_arm_stage(s, SMTPC_HELO);
		} else
			fail_reply(s, SMTPC_EHLO, rep);
		break;
	case ST_HELO:
		if (rep->code == 250)
			become_idle(s);
		else
			fail_reply(s, SMTPC_HELO, rep);
		break;
	case ST_STARTTLS:
		if (rep->code == 220)
			start_tls(s);
		else
			become_idle(s);         /* opportunistic: go on in clear */
		break;
	case ST_TXN:
		txn_reply(s, rep);
		break;
	case ST_BODY:
		body_reply(s, rep);
		break;
	case ST_QUIT: {
		struct smtpc_result r;

		memset(&r, 0, sizeof(r));
		r.stage = SMTPC_QUIT;
		r.ok = rep->code == 221;
		reply_copy(&r.reply, rep);
		session_end(s, &r);
		break;
	}
	default:
		fail_net(s, stage, "protocol error: unexpected reply %d while %s",
		    rep->code, stage == SMTPC_IDLE ? "idle" : "busy");
		break;
	}
}

static void
handle_line(struct smtpc *s, const char *line, size_t len)
{
	int r;

	if (log_is_tracing("smtp")) {
		char q[512];

		log_quote(q, sizeof(q), line);
		log_trace("smtp", "event=recv dst=%s line=%s", s->cfg.dest_ip, q);
	}
	r = smtp_reply_parser_feed(&s->parser, line, len);
	if (r < 0) {
		fail_net(s, current_stage(s), "protocol error: %s", s->parser.error);
		return;
	}
	if (s->state == ST_EHLO && s->parser.reply.nlines > 1 && len > 4)
		caps_parse_line(s, line + 4, len - 4);
	if (r == 1)
		handle_reply(s, &s->parser.reply);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *s = arg;

	(void)bev;
	session_enter(s);
	while (!s->dead && s->state != ST_CLOSED && s->state != ST_HANDSHAKE) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		struct evbuffer_ptr p;
		size_t eol = 0, avail = evbuffer_get_length(in);

		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos < 0) {
			if (avail > s->cfg.max_line + 1)
				fail_net(s, current_stage(s),
				    "reply line longer than %zu bytes",
				    s->cfg.max_line);
			break;
		}
		if ((size_t)p.pos > s->cfg.max_line) {
			fail_net(s, current_stage(s),
			    "reply line longer than %zu bytes", s->cfg.max_line);
			break;
		}
		evbuffer_remove(in, s->line, (size_t)p.pos);
		evbuffer_drain(in, eol);
		s->line[p.pos] = '\0';
		if (s->state == ST_CONNECTING || s->state == ST_NEW) {
			fail_net(s, SMTPC_CONNECT, "protocol error: data before connect");
			break;
		}
		handle_line(s, s->line, (size_t)p.pos);
	}
	session_leave(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *s = arg;

	(void)bev;
	if (s->state != ST_BODY || s->txn.body_sent)
		return;
	session_enter(s);
	if (evbuffer_get_length(s->txn.body) > 0) {
		body_push(s);
	} else if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		s->txn.body_sent = true;
		timer_arm_stage(s, SMTPC_DOT);
	}
	session_leave(s);
}

static void
lower_first(char *s)
{
	if (s[0] >= 'A' && s[0] <= 'Z')
		s[0] = (char)(s[0] - 'A' + 'a');
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *s = arg;
	enum smtpc_stage stage = current_stage(s);
	char ebuf[160];

	session_enter(s);
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == ST_CONNECTING) {
			s->state = ST_GREETING;
			smtp_reply_parser_init(&s->parser, s->cfg.max_lines);
			timer_arm_stage(s, SMTPC_GREETING);
		} else if (s->state == ST_HANDSHAKE) {
			evtimer_del(s->timer);
			s->tls = true;
			smtp_reply_parser_init(&s->parser, s->cfg.max_lines);
			send_ehlo(s);
		}
		goto out;
	}
	if (s->state == ST_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (e != 0)
			ERR_error_string_n(e, ebuf, sizeof(ebuf));
		else if ((what & BEV_EVENT_EOF) || EVUTIL_SOCKET_ERROR() == 0)
			str_copy(ebuf, "connection closed by peer", sizeof(ebuf));
		else {
			char eb[128];

			str_copy(ebuf, strerror_r(EVUTIL_SOCKET_ERROR(), eb,
			    sizeof(eb)), sizeof(ebuf));
			lower_first(ebuf);
		}
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		fail_net(s, SMTPC_STARTTLS, "TLS handshake failed: %s", ebuf);
		goto out;
	}
	if (what & BEV_EVENT_EOF) {
		bool mid = s->parser.reply.nlines > 0 && !s->parser.complete;

		if (!mid && evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
			mid = true;
		fail_net(s, stage, "connection closed by peer%s",
		    mid ? " in the middle of a reply" : "");
		goto out;
	}
	if (what & BEV_EVENT_ERROR) {
		int e = EVUTIL_SOCKET_ERROR();

		if (s->tls && bufferevent_get_openssl_error(bev) != 0) {
			unsigned long te = bufferevent_get_openssl_error(bev);

			ERR_error_string_n(te, ebuf, sizeof(ebuf));
			fail_net(s, stage, "TLS error: %s", ebuf);
			goto out;
		}
		str_copy(ebuf, strerror_r(e, ebuf, sizeof(ebuf)), sizeof(ebuf));
		lower_first(ebuf);
		if (s->state == ST_CONNECTING)
			fail_net(s, stage, "%s", ebuf);
		else
			fail_net(s, stage, "connection error: %s", ebuf);
		goto out;
	}
	fail_net(s, stage, "connection event 0x%x", (unsigned)what);
out:
	session_leave(s);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *s = arg;
	char d[32];

	(void)fd;
	(void)what;
	session_enter(s);
	fmt_duration(d, sizeof(d), s->timer_ms);
	fail_net(s, current_stage(s), "timeout after %s %s", d, s->timer_what);
	session_leave(s);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *s = arg;

	(void)fd;
	(void)what;
	session_enter(s);
	if (s->in_txn && s->state == ST_TXN && s->txn.ncmds == 0)
		txn_finish(s);
	session_leave(s);
}

/* --- public API --- */

struct smtpc *
smtpc_new(struct event_base *base, const struct smtpc_config *cfg,
    const struct smtpc_callbacks *cb, void *arg)
{
	struct smtpc *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->cfg = *cfg;
	if (s->cfg.max_line == 0)
		s->cfg.max_line = 4096;
	if (s->cfg.max_lines == 0)
		s->cfg.max_lines = 128;
	if (cb != NULL)
		s->cb = *cb;
	s->arg = arg;
	s->state = ST_NEW;
	s->line = xmalloc(s->cfg.max_line + 1);
	s->timer = evtimer_new(base, timer_cb, s);
	s->kick = event_new(base, -1, 0, kick_cb, s);
	if (s->timer == NULL || s->kick == NULL)
		abort();
	smtp_reply_parser_init(&s->parser, s->cfg.max_lines);
	return s;
}

static void
session_destroy(struct smtpc *s)
{
	conn_close(s);
	txn_clear(s);
	event_free(s->timer);
	event_free(s->kick);
	free(s->line);
	free(s);
}

void
smtpc_free(struct smtpc *s)
{
	if (s == NULL)
		return;
	if (s->busy > 0) {
		s->dead = true;
		conn_close(s);
		return;
	}
	session_destroy(s);
}

static bool
is_any_address(const char *ip)
{
	return ip[0] == '\0' || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

/* Parse an IPv4 or IPv6 literal into ss; returns its length or 0. */
static socklen_t
parse_addr(const char *ip, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return sizeof(*sin6);
	}
	return 0;
}

int
smtpc_open(struct smtpc *s)
{
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	char ebuf[128];
	int fd;

	if (s->state != ST_NEW) {
		snprintf(s->error, sizeof(s->error), "session already opened");
		return -1;
	}
	dlen = parse_addr(s->cfg.dest_ip, s->cfg.dest_port, &dst);
	if (dlen == 0 || s->cfg.dest_port <= 0 || s->cfg.dest_port > 65535) {
		snprintf(s->error, sizeof(s->error), "bad destination %s port %d",
		    s->cfg.dest_ip, s->cfg.dest_port);
		return -1;
	}
	fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(s->error, sizeof(s->error), "socket: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	if (!is_any_address(s->cfg.source_ip)) {
		slen = parse_addr(s->cfg.source_ip, 0, &src);
		if (slen == 0 || src.ss_family != dst.ss_family) {
			snprintf(s->error, sizeof(s->error),
			    "bad source address %s for %s", s->cfg.source_ip,
			    s->cfg.dest_ip);
			goto fail_close;
		}
		if (bind(fd, (struct sockaddr *)&src, slen) < 0) {
			snprintf(s->error, sizeof(s->error), "bind %s: %s",
			    s->cfg.source_ip, strerror_r(errno, ebuf, sizeof(ebuf)));
			goto fail_close;
		}
	}
	s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		snprintf(s->error, sizeof(s->error), "bufferevent_socket_new failed");
		goto fail_close;
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->t_open = time_mono_ms();
	s->state = ST_CONNECTING;
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&dst,
	    (int)dlen) < 0) {
		snprintf(s->error, sizeof(s->error), "connect %s: %s",
		    s->cfg.dest_ip, strerror_r(errno, ebuf, sizeof(ebuf)));
		bufferevent_free(s->bev);
		s->bev = NULL;
		s->state = ST_CLOSED;
		return -1;
	}
	timer_arm_stage(s, SMTPC_CONNECT);
	return 0;

fail_close:
	close(fd);
	return -1;
}

static bool
is_valid_address(const char *a)
{
	size_t n = strlen(a);

	if (n > SMTPC_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c < 0x21 || c == 0x7f || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* Write the first command, or all of them with PIPELINING. */
static void
txn_start(struct smtpc *s)
{
	struct smtpc_txn *t = &s->txn;

	if (s->pipelining) {
		for (int i = 0; i < t->ncmds; i++)
			txn_send_cmd(s, i);
	} else {
		txn_send_cmd(s, 0);
	}
	timer_arm_stage(s, t->cmds[0]);
}

int
smtpc_send(struct smtpc *s, const char *mail_from, const char *rcpt,
    const char *data, size_t len)
{
	struct smtpc_txn *t = &s->txn;
	bool rset;

	if (s->dead || s->state != ST_IDLE || s->in_txn || s->quit_pending)
		return -1;
	if (!is_valid_address(mail_from) || !is_valid_address(rcpt) ||
	    rcpt[0] == '\0')
		return -1;
	txn_clear(s);
	s->in_txn = true;
	s->ntxn++;
	rset = s->need_rset;
	s->need_rset = true;
	t->t0 = time_mono_ms();
	str_copy(t->from, mail_from, sizeof(t->from));
	str_copy(t->rcpt, rcpt, sizeof(t->rcpt));
	t->body = evbuffer_new();
	if (t->body == NULL)
		abort();
	t->eightbit = body_build(t->body, data, len);
	t->size = evbuffer_get_length(t->body) - 3;
	s->state = ST_TXN;

	if (s->max_size > 0 && t->size > s->max_size) {
		struct smtp_reply rep;

		memset(&rep, 0, sizeof(rep));
		rep.code = 552;
		str_copy(rep.enhanced, "5.3.4", sizeof(rep.enhanced));
		snprintf(rep.text, sizeof(rep.text),
		    "message size %zu exceeds server limit %zu", t->size,
		    s->max_size);
		txn_record_failure(s, SMTPC_MAIL, &rep);
		event_active(s->kick, 0, 0);
		return 0;
	}
	if (rset)
		t->cmds[t->ncmds++] = SMTPC_RSET;
	t->cmds[t->ncmds++] = SMTPC_MAIL;
	t->cmds[t->ncmds++] = SMTPC_RCPT;
	t->cmds[t->ncmds++] = SMTPC_DATA;
	txn_start(s);
	return 0;
}

int
smtpc_probe(struct smtpc *s, const char *mail_from, const char *rcpt)
{
	struct smtpc_txn *t = &s->txn;

	if (s->dead || s->state != ST_IDLE || s->in_txn || s->quit_pending)
		return -1;
	if (!is_valid_address(mail_from) || !is_valid_address(rcpt) ||
	    rcpt[0] == '\0')
		return -1;
	txn_clear(s);
	s->in_txn = true;
	t->probe = true;
	t->t0 = time_mono_ms();
	str_copy(t->from, mail_from, sizeof(t->from));
	str_copy(t->rcpt, rcpt, sizeof(t->rcpt));
	s->state = ST_TXN;
	if (s->need_rset)
		t->cmds[t->ncmds++] = SMTPC_RSET;
	t->cmds[t->ncmds++] = SMTPC_MAIL;
	t->cmds[t->ncmds++] = SMTPC_RCPT;
	t->cmds[t->ncmds++] = SMTPC_RSET;
	s->need_rset = true;            /* until the closing RSET gets 2xx */
	txn_start(s);
	return 0;
}

void
smtpc_quit(struct smtpc *s)
{
	if (s->dead || s->state == ST_NEW || s->state == ST_CLOSED ||
	    s->state == ST_QUIT)
		return;
	if (s->state == ST_IDLE && !s->in_txn) {
		send_quit(s);
		return;
	}
	s->quit_pending = true;
}

bool
smtpc_is_tls(const struct smtpc *s)
{
	return s->tls;
}

bool
smtpc_is_idle(const struct smtpc *s)
{
	return !s->dead && s->state == ST_IDLE && !s->in_txn && !s->quit_pending;
}

bool
smtpc_has_pipelining(const struct smtpc *s)
{
	return s->pipelining;
}

bool
smtpc_has_8bitmime(const struct smtpc *s)
{
	return s->eightbitmime;
}

bool
smtpc_has_enhancedstatuscodes(const struct smtpc *s)
{
	return s->enhancedstatus;
}

size_t
smtpc_max_size(const struct smtpc *s)
{
	return s->max_size;
}

int
smtpc_transactions(const struct smtpc *s)
{
	return s->ntxn;
}

const char *
smtpc_error(const struct smtpc *s)
{
	return s->error;
}

SSL_CTX *
smtpc_tls_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
	/* Opportunistic TLS: any encryption beats plain text. */
	SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	return ctx;
}
