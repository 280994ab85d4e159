/*
 * smtps: server side of one SMTP session. See smtps.h.
 *
 * The session is a state machine (smtps_enter_state) fed by the input
 * buffer. smtps_process() takes one command at a time; a command that needs
 * the owner's decision sets `pending` and stops the loop until
 * smtps_reply() clears it, so pipelined commands are answered in order.
 * Everything that could free the session (close, timeout, errors) runs from
 * a top-level libevent callback, never under the owner's callback.
 */
#include "net/smtps.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define SMTPS_DEFAULT_MAX_MESSAGE (10u << 20)
#define SMTPS_DEFAULT_MAX_RCPTS 100
#define SMTPS_DEFAULT_MAX_ERRORS 10
#define SMTPS_DEFAULT_IDLE_MS 300000
#define SMTPS_DATA_CHUNK 65536       /* a DATA line longer than this is split */
#define SMTPS_READ_HIGH_WATER (256u << 10)
/* Output drained to this much: the write callback resumes a paused read. */
#define SMTPS_WRITE_LOW_WATER (SMTPS_OUTPUT_MAX / 2)
#define SMTPS_PENDING_NONE (-1)

enum smtps_state {
	SMTPS_ST_GREETING,  /* waiting for the CONNECT reply */
	SMTPS_ST_REFUSED,   /* greeting refused: only QUIT */
	SMTPS_ST_READY,     /* greeted, no HELO yet */
	SMTPS_ST_HELO,      /* HELO given, no transaction */
	SMTPS_ST_MAIL,      /* MAIL accepted */
	SMTPS_ST_RCPT,      /* at least one RCPT accepted */
	SMTPS_ST_DATA,      /* reading the message */
	SMTPS_ST_CLOSING,   /* flushing the last reply */
};

struct smtps_session {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *ev_resume;
	char *hostname;
	struct smtps_config cfg;
	smtps_event_cb on_event;
	smtps_close_cb on_close;
	void *arg;

	enum smtps_state state;
	int pending;               /* enum smtps_event_type or NONE */
	bool in_process;
	bool out_full;             /* input paused: more than OUTPUT_MAX unsent */
	bool discarding;           /* skipping the rest of an overlong line */
	bool is_tls;
	bool is_ehlo;
	int errors;
	int close_polls;
	const char *close_reason;

	char helo[SMTPS_LINE_MAX + 1];
	char *mail_from;
	char **rcpts;
	size_t nrcpts, rcpts_cap;

	struct buf data;
	size_t data_size;          /* bytes seen, kept or not */
	bool data_bol;
	bool data_too_big;

	struct smtps_command cmd;  /* the command being answered */
};

static const struct {
	const char *name;
	enum smtps_verb verb;
} smtps_verbs[] = {
	{ "HELO", SMTPS_VERB_HELO }, { "EHLO", SMTPS_VERB_EHLO },
	{ "MAIL", SMTPS_VERB_MAIL }, { "RCPT", SMTPS_VERB_RCPT },
	{ "DATA", SMTPS_VERB_DATA }, { "RSET", SMTPS_VERB_RSET },
	{ "NOOP", SMTPS_VERB_NOOP }, { "QUIT", SMTPS_VERB_QUIT },
	{ "VRFY", SMTPS_VERB_VRFY }, { "HELP", SMTPS_VERB_HELP },
	{ "STARTTLS", SMTPS_VERB_STARTTLS },
};

const char *
smtps_verb_name(enum smtps_verb verb)
{
	for (size_t i = 0; i < sizeof(smtps_verbs) / sizeof(smtps_verbs[0]); i++)
		if (smtps_verbs[i].verb == verb)
			return smtps_verbs[i].name;
	return "UNKNOWN";
}

/* ---- the pure parser ---------------------------------------------------- */

static bool
smtps_is_param_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '-';
}

/* Parse "<path> [KEY[=VALUE]]..." from p (NUL-terminated). */
static int
smtps_parse_path_params(const char *p, struct smtps_command *cmd, bool is_mail)
{
	const char *start, *end, *addr;
	size_t alen;
	bool quoted = false;

	while (*p == ' ')
		p++;
	if (*p == '<') {
		start = ++p;
		for (end = start; *end; end++) {
			if (*end == '\\' && quoted && end[1] != '\0')
				end++;
			else if (*end == '"')
				quoted = !quoted;
			else if (*end == '>' && !quoted)
				break;
		}
		if (*end != '>')
			return SMTPS_PARSE_SYNTAX;
		p = end + 1;
		if (*p != '\0' && *p != ' ')
			return SMTPS_PARSE_SYNTAX;
	} else {
		start = p;
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		p = end;
		if (start == end)
			return SMTPS_PARSE_SYNTAX;
	}
	addr = start;
	if (*addr == '@') {
		/* A source route: @a,@b:user@domain (RFC 5321 4.1.2, ignored). */
		const char *colon = memchr(addr, ':', (size_t)(end - addr));
		if (colon == NULL)
			return SMTPS_PARSE_SYNTAX;
		addr = colon + 1;
	}
	alen = (size_t)(end - addr);
	if (alen > SMTPS_PATH_MAX)
		return SMTPS_PARSE_SYNTAX;
	quoted = false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char c = (unsigned char)addr[i];
		if (c < 0x20 || c == 0x7f)
			return SMTPS_PARSE_SYNTAX;
		if (c == '"')
			quoted = !quoted;
		else if (!quoted && (c == ' ' || c == '<' || c == '>'))
			return SMTPS_PARSE_SYNTAX;
	}
	memcpy(cmd->path, addr, alen);
	cmd->path[alen] = '\0';
	if (alen == 0) {
		if (!is_mail)
			return SMTPS_PARSE_SYNTAX;
	} else if (!is_mail && str_iequal(cmd->path, "postmaster")) {
		/* RCPT TO:<postmaster> needs no domain. */
	} else {
		const char *at = strrchr(cmd->path, '@');
		if (at == NULL || at == cmd->path || at[1] == '\0')
			return SMTPS_PARSE_SYNTAX;
	}

	while (*p) {
		struct smtps_param *prm;
		size_t klen = 0, vlen = 0;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (cmd->nparams == SMTPS_PARAMS_MAX)
			return SMTPS_PARSE_SYNTAX;
		prm = &cmd->params[cmd->nparams];
		if (!isalnum((unsigned char)*p))
			return SMTPS_PARSE_SYNTAX;
		while (smtps_is_param_key_char(p[klen])) {
			if (klen == SMTPS_PARAM_KEY_MAX)
				return SMTPS_PARSE_SYNTAX;
			prm->key[klen] = (char)toupper((unsigned char)p[klen]);
			klen++;
		}
		prm->key[klen] = '\0';
		p += klen;
		prm->has_value = false;
		prm->value[0] = '\0';
		if (*p == '=') {
			p++;
			while (*p && *p != ' ') {
				unsigned char c = (unsigned char)*p;
				if (c < 0x21 || c > 0x7e || c == '=' ||
				    vlen == SMTPS_PARAM_VALUE_MAX)
					return SMTPS_PARSE_SYNTAX;
				prm->value[vlen++] = *p++;
			}
			prm->value[vlen] = '\0';
			prm->has_value = true;
		} else if (*p != ' ' && *p != '\0') {
			return SMTPS_PARSE_SYNTAX;
		}
		cmd->nparams++;
	}
	return SMTPS_PARSE_OK;
}

int
smtps_parse_command(const char *line, size_t len, struct smtps_command *cmd)
{
	char text[SMTPS_LINE_MAX + 1];
	char *rest;
	size_t vlen;

	cmd->verb = SMTPS_VERB_UNKNOWN;
	cmd->arg[0] = '\0';
	cmd->path[0] = '\0';
	cmd->nparams = 0;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > SMTPS_LINE_MAX)
		return SMTPS_PARSE_TOOLONG;
	memcpy(text, line, len);
	text[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SMTPS_PARSE_SYNTAX;
		if (c == '\t')
			text[i] = ' ';
	}

	vlen = strcspn(text, " ");
	for (size_t i = 0; i < sizeof(smtps_verbs) / sizeof(smtps_verbs[0]); i++) {
		if (strlen(smtps_verbs[i].name) == vlen &&
		    strncasecmp(text, smtps_verbs[i].name, vlen) == 0) {
			cmd->verb = smtps_verbs[i].verb;
			break;
		}
	}
	if (cmd->verb == SMTPS_VERB_UNKNOWN)
		return SMTPS_PARSE_UNKNOWN;
	rest = str_trim(text + vlen);

	switch (cmd->verb) {
	case SMTPS_VERB_HELO:
	case SMTPS_VERB_EHLO:
	case SMTPS_VERB_VRFY:
		if (*rest == '\0')
			return SMTPS_PARSE_SYNTAX;
		str_copy(cmd->arg, rest, sizeof(cmd->arg));
		return SMTPS_PARSE_OK;
	case SMTPS_VERB_NOOP:
	case SMTPS_VERB_HELP:
		str_copy(cmd->arg, rest, sizeof(cmd->arg));
		return SMTPS_PARSE_OK;
	case SMTPS_VERB_MAIL:
		if (strncasecmp(rest, "FROM:", 5) != 0)
			return SMTPS_PARSE_SYNTAX;
		return smtps_parse_path_params(rest + 5, cmd, true);
	case SMTPS_VERB_RCPT:
		if (strncasecmp(rest, "TO:", 3) != 0)
			return SMTPS_PARSE_SYNTAX;
		return smtps_parse_path_params(rest + 3, cmd, false);
	default:
		return *rest == '\0' ? SMTPS_PARSE_OK : SMTPS_PARSE_SYNTAX;
	}
}

const char *
smtps_command_param(const struct smtps_command *cmd, const char *key)
{
	for (size_t i = 0; i < cmd->nparams; i++)
		if (str_iequal(cmd->params[i].key, key))
			return cmd->params[i].value;
	return NULL;
}

/* ---- session ------------------------------------------------------------- */

static void smtps_process(struct smtps_session *s);

static const char *
smtps_state_name(enum smtps_state st)
{
	switch (st) {
	case SMTPS_ST_GREETING: return "greeting";
	case SMTPS_ST_REFUSED: return "refused";
	case SMTPS_ST_READY: return "ready";
	case SMTPS_ST_HELO: return "helo";
	case SMTPS_ST_MAIL: return "mail";
	case SMTPS_ST_RCPT: return "rcpt";
	case SMTPS_ST_DATA: return "data";
	case SMTPS_ST_CLOSING: return "closing";
	}
	return "?";
}

static void
smtps_enter_state(struct smtps_session *s, enum smtps_state st)
{
	log_trace("smtps", "event=state from=%s to=%s", smtps_state_name(s->state),
	    smtps_state_name(st));
	s->state = st;
	if (st == SMTPS_ST_DATA) {
		buf_reset(&s->data);
		s->data_size = 0;
		s->data_bol = true;
		s->data_too_big = false;
	}
}

static void
smtps_reset_transaction(struct smtps_session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	s->nrcpts = 0;
	buf_reset(&s->data);
}

static void
smtps_schedule(struct smtps_session *s)
{
	event_active(s->ev_resume, 0, 0);
}

/* Write one (possibly multi-line) reply. */
static void
smtps_write_reply(struct smtps_session *s, int code, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	const char *p = text;

	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > SMTPS_TEXT_MAX)
			n = SMTPS_TEXT_MAX;
		evbuffer_add_printf(out, "%03d%c%.*s\r\n", code, nl ? '-' : ' ',
		    (int)n, p);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	log_trace("smtps", "event=reply code=%d", code);
}

static void
smtps_close_after_reply(struct smtps_session *s, const char *reason)
{
	s->close_reason = reason;
	smtps_enter_state(s, SMTPS_ST_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	smtps_schedule(s);
}

/* A protocol error answered by the session itself. */
static void
smtps_error(struct smtps_session *s, int code, const char *text)
{
	smtps_write_reply(s, code, text);
	if (++s->errors >= s->cfg.max_errors) {
		char msg[SMTPS_TEXT_MAX];
		snprintf(msg, sizeof(msg), "4.7.0 %s Error: too many errors",
		    s->hostname);
		smtps_write_reply(s, 421, msg);
		smtps_close_after_reply(s, "errors");
	}
}

static void
smtps_finish(struct smtps_session *s, const char *reason)
{
	smtps_close_cb cb = s->on_close;
	void *arg = s->arg;

	s->on_close = NULL;
	if (cb)
		cb(s, reason, arg);
	smtps_session_free(s);
}

/* Bytes not yet handed to the socket (TLS: the filter's and the socket's). */
static size_t
smtps_output_pending(const struct smtps_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));

	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* CLOSING: end the session once the last reply is out. Under TLS the
 * socket's buffer drains without telling us, so poll it briefly. */
static void
smtps_try_finish(struct smtps_session *s)
{
	struct timeval tv = { 0, 5000 };

	if (smtps_output_pending(s) == 0 || ++s->close_polls > 400) {
		smtps_finish(s, s->close_reason);
		return;
	}
	if (s->is_tls)
		event_add(s->ev_resume, &tv);
}

static void
smtps_dispatch(struct smtps_session *s, enum smtps_event_type type)
{
	struct smtps_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	if (type == SMTPS_EV_HELO || type == SMTPS_EV_MAIL || type == SMTPS_EV_RCPT)
		ev.cmd = &s->cmd;
	ev.helo = s->helo;
	ev.mail_from = s->mail_from ? s->mail_from : "";
	ev.rcpts = (const char *const *)s->rcpts;
	ev.nrcpts = s->nrcpts;
	if (type == SMTPS_EV_MESSAGE) {
		ev.data = s->data.data ? s->data.data : "";
		ev.len = s->data.len;
	}
	s->pending = (int)type;
	bufferevent_disable(s->bev, EV_READ);
	if (s->on_event)
		s->on_event(s, &ev, s->arg);
	else
		smtps_reply_default(s);
}

int
smtps_reply(struct smtps_session *s, int code, const char *text)
{
	enum smtps_event_type type;
	int cls = code / 100;

	if (s->pending == SMTPS_PENDING_NONE)
		return -1;
	type = (enum smtps_event_type)s->pending;
	s->pending = SMTPS_PENDING_NONE;

	if (type == SMTPS_EV_HELO && s->is_ehlo && cls == 2) {
		char line[SMTPS_TEXT_MAX + 256];
		snprintf(line, sizeof(line),
		    "%s\nPIPELINING\nSIZE %zu\n%sENHANCEDSTATUSCODES\n8BITMIME",
		    text, s->cfg.max_message,
		    s->cfg.tls && !s->is_tls ? "STARTTLS\n" : "");
		smtps_write_reply(s, code, line);
	} else {
		smtps_write_reply(s, code, text);
	}

	switch (type) {
	case SMTPS_EV_CONNECT:
		if (cls == 2)
			smtps_enter_state(s, SMTPS_ST_READY);
		else if (code != 421)
			smtps_enter_state(s, SMTPS_ST_REFUSED);
		break;
	case SMTPS_EV_HELO:
		if (cls == 2) {
			str_copy(s->helo, s->cmd.arg, sizeof(s->helo));
			smtps_reset_transaction(s);
			smtps_enter_state(s, SMTPS_ST_HELO);
		}
		break;
	case SMTPS_EV_MAIL:
		if (cls == 2) {
			s->mail_from = xstrdup(s->cmd.path);
			smtps_enter_state(s, SMTPS_ST_MAIL);
		}
		break;
	case SMTPS_EV_RCPT:
		if (cls == 2) {
			s->rcpts = xgrow(s->rcpts, &s->rcpts_cap, s->nrcpts + 2,
			    sizeof(*s->rcpts));
			s->rcpts[s->nrcpts++] = xstrdup(s->cmd.path);
			s->rcpts[s->nrcpts] = NULL;
			smtps_enter_state(s, SMTPS_ST_RCPT);
		}
		break;
	case SMTPS_EV_DATA:
		if (cls == 3)
			smtps_enter_state(s, SMTPS_ST_DATA);
		break;
	case SMTPS_EV_MESSAGE:
		smtps_reset_transaction(s);
		smtps_enter_state(s, SMTPS_ST_HELO);
		break;
	}
	if (code == 421) {
		smtps_close_after_reply(s, "closed");
		return 0;
	}
	if (!s->out_full)
		bufferevent_enable(s->bev, EV_READ);
	if (!s->in_process)
		smtps_schedule(s);
	return 0;
}

int
smtps_replyf(struct smtps_session *s, int code, const char *fmt, ...)
{
	char text[SMTPS_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return smtps_reply(s, code, text);
}

int
smtps_reply_default(struct smtps_session *s)
{
	char text[SMTPS_TEXT_MAX];

	switch (s->pending) {
	case SMTPS_EV_CONNECT:
		snprintf(text, sizeof(text), "%s ESMTP", s->hostname);
		return smtps_reply(s, 220, text);
	case SMTPS_EV_HELO:
		return smtps_reply(s, 250, s->hostname);
	case SMTPS_EV_MAIL:
		return smtps_reply(s, 250, "2.1.0 Ok");
	case SMTPS_EV_RCPT:
		return smtps_reply(s, 250, "2.1.5 Ok");
	case SMTPS_EV_DATA:
		return smtps_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
	case SMTPS_EV_MESSAGE:
		return smtps_reply(s, 250, "2.0.0 Ok: queued");
	default:
		return -1;
	}
}

static void smtps_read_cb(struct bufferevent *bev, void *arg);
static void smtps_write_cb(struct bufferevent *bev, void *arg);
static void smtps_event_cb_(struct bufferevent *bev, short what, void *arg);

/* Callbacks, limits and timeouts of s->bev (again after STARTTLS). */
static void
smtps_setup_bev(struct smtps_session *s)
{
	struct timeval tv;

	bufferevent_setcb(s->bev, smtps_read_cb, smtps_write_cb, smtps_event_cb_, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPS_READ_HIGH_WATER);
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTPS_WRITE_LOW_WATER, 0);
	tv.tv_sec = s->cfg.idle_timeout_ms / 1000;
	tv.tv_usec = (s->cfg.idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
smtps_start_tls(struct smtps_session *s)
{
	SSL *ssl = SSL_new(s->cfg.tls);
	struct bufferevent *tls;

	smtps_write_reply(s, 220, "2.0.0 Ready to start TLS");
	/* Anything pipelined after STARTTLS is discarded (RFC 3207 4.2). */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	if (ssl == NULL)
		goto fail;
	tls = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL)
		goto fail;
	s->bev = tls;
	smtps_setup_bev(s);
	s->is_tls = true;
	s->helo[0] = '\0';
	smtps_reset_transaction(s);
	smtps_enter_state(s, SMTPS_ST_READY);
	return;
fail:
	smtps_close_after_reply(s, "io");
}

static bool
smtps_size_too_big(struct smtps_session *s, const char *size, bool *bad)
{
	int64_t n;

	*bad = false;
	if (size == NULL)
		return false;
	if (str_to_i64(size, 0, INT64_MAX, &n) < 0) {
		*bad = true;
		return false;
	}
	return (uint64_t)n > s->cfg.max_message;
}

static void
smtps_syntax_error(struct smtps_session *s)
{
	switch (s->cmd.verb) {
	case SMTPS_VERB_HELO:
	case SMTPS_VERB_EHLO:
		smtps_error(s, 501, "5.5.4 Syntax: EHLO hostname");
		break;
	case SMTPS_VERB_MAIL:
		smtps_error(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
		break;
	case SMTPS_VERB_RCPT:
		smtps_error(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
		break;
	case SMTPS_VERB_UNKNOWN:
		smtps_error(s, 500, "5.5.2 Error: bad syntax");
		break;
	default:
		smtps_error(s, 501, "5.5.4 Syntax error in parameters");
		break;
	}
}

static void
smtps_command(struct smtps_session *s, const char *line, size_t len)
{
	int r = smtps_parse_command(line, len, &s->cmd);
	bool bad;

	if (r == SMTPS_PARSE_UNKNOWN) {
		smtps_error(s, 500, "5.5.2 Error: command not recognized");
		return;
	}
	if (r == SMTPS_PARSE_TOOLONG) {
		smtps_error(s, 500, "5.5.0 Error: line too long");
		return;
	}
	if (s->state == SMTPS_ST_REFUSED && s->cmd.verb != SMTPS_VERB_QUIT) {
		smtps_error(s, 503, "5.5.1 Error: access denied");
		return;
	}
	if (r == SMTPS_PARSE_SYNTAX) {
		smtps_syntax_error(s);
		return;
	}
	switch (s->cmd.verb) {
	case SMTPS_VERB_HELO:
	case SMTPS_VERB_EHLO:
		s->is_ehlo = s->cmd.verb == SMTPS_VERB_EHLO;
		smtps_dispatch(s, SMTPS_EV_HELO);
		break;
	case SMTPS_VERB_MAIL:
		if (s->state == SMTPS_ST_READY)
			smtps_error(s, 503, "5.5.1 Error: send HELO/EHLO first");
		else if (s->state != SMTPS_ST_HELO)
			smtps_error(s, 503, "5.5.1 Error: nested MAIL command");
		else if (smtps_size_too_big(s, smtps_command_param(&s->cmd, "SIZE"), &bad))
			smtps_write_reply(s, 552, "5.3.4 Message size exceeds fixed limit");
		else if (bad)
			smtps_error(s, 501, "5.5.4 Bad message size syntax");
		else
			smtps_dispatch(s, SMTPS_EV_MAIL);
		break;
	case SMTPS_VERB_RCPT:
		if (s->state != SMTPS_ST_MAIL && s->state != SMTPS_ST_RCPT)
			smtps_error(s, 503, "5.5.1 Error: need MAIL command");
		else if (s->nrcpts >= s->cfg.max_rcpts)
			smtps_write_reply(s, 452, "4.5.3 Error: too many recipients");
		else
			smtps_dispatch(s, SMTPS_EV_RCPT);
		break;
	case SMTPS_VERB_DATA:
		if (s->state == SMTPS_ST_MAIL)
			smtps_error(s, 554, "5.5.1 Error: no valid recipients");
		else if (s->state != SMTPS_ST_RCPT)
			smtps_error(s, 503, "5.5.1 Error: need RCPT command");
		else
			smtps_dispatch(s, SMTPS_EV_DATA);
		break;
	case SMTPS_VERB_RSET:
		smtps_reset_transaction(s);
		if (s->state == SMTPS_ST_MAIL || s->state == SMTPS_ST_RCPT)
			smtps_enter_state(s, SMTPS_ST_HELO);
		smtps_write_reply(s, 250, "2.0.0 Ok");
		break;
	case SMTPS_VERB_NOOP:
		smtps_write_reply(s, 250, "2.0.0 Ok");
		break;
	case SMTPS_VERB_VRFY:
		smtps_write_reply(s, 252, "2.0.0 Cannot VRFY user; try RCPT to attempt delivery");
		break;
	case SMTPS_VERB_HELP:
		smtps_write_reply(s, 214, "2.0.0 See RFC 5321");
		break;
	case SMTPS_VERB_QUIT:
		smtps_write_reply(s, 221, "2.0.0 Bye");
		smtps_close_after_reply(s, "quit");
		break;
	case SMTPS_VERB_STARTTLS:
		if (s->cfg.tls == NULL || s->is_tls)
			smtps_error(s, 502, "5.5.1 Error: command not implemented");
		else if (s->state == SMTPS_ST_MAIL || s->state == SMTPS_ST_RCPT)
			smtps_error(s, 503, "5.5.1 Error: MAIL transaction in progress");
		else
			smtps_start_tls(s);
		break;
	case SMTPS_VERB_UNKNOWN:
		break;
	}
}

static void
smtps_data_append(struct smtps_session *s, const char *p, size_t n, bool eol)
{
	s->data_size += n + (eol ? 2 : 0);
	if (s->data_too_big)
		return;
	if (buf_append(&s->data, p, n) < 0 ||
	    (eol && buf_append(&s->data, "\r\n", 2) < 0))
		s->data_too_big = true;
}

/* Read message lines; true when the terminating dot was seen. */
static bool
smtps_read_data(struct smtps_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	for (;;) {
		size_t eol_len = 0, n, avail = evbuffer_get_length(in);
		struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF_STRICT);
		const char *p;
		bool eol = pos.pos >= 0;

		if (!eol) {
			/* A long line without CRLF yet: keep it in pieces. */
			if (avail <= SMTPS_DATA_CHUNK)
				return false;
			n = SMTPS_DATA_CHUNK;
		} else {
			n = (size_t)pos.pos;
		}
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)(n + eol_len));
		if (eol && s->data_bol && n == 1 && p[0] == '.') {
			evbuffer_drain(in, n + eol_len);
			return true;
		}
		if (s->data_bol && n > 0 && p[0] == '.')
			smtps_data_append(s, p + 1, n - 1, eol);
		else
			smtps_data_append(s, p, n, eol);
		s->data_bol = eol;
		evbuffer_drain(in, n + eol_len);
	}
}

/* Take one command line: 1 handled, 0 need more input. */
static int
smtps_read_command(struct smtps_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t eol_len = 0, avail = evbuffer_get_length(in);
	struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len,
	    EVBUFFER_EOL_CRLF);
	char line[SMTPS_LINE_MAX + 1];
	size_t n;

	if (pos.pos < 0) {
		if (avail > s->cfg.max_line) {
			evbuffer_drain(in, avail);
			if (!s->discarding)
				smtps_error(s, 500, "5.5.0 Error: line too long");
			s->discarding = true;
			return 1;
		}
		return 0;
	}
	if (s->discarding) {
		evbuffer_drain(in, (size_t)pos.pos + eol_len);
		s->discarding = false;
		return 1;
	}
	if ((size_t)pos.pos > s->cfg.max_line) {
		evbuffer_drain(in, (size_t)pos.pos + eol_len);
		smtps_error(s, 500, "5.5.0 Error: line too long");
		return 1;
	}
	n = (size_t)pos.pos;
	evbuffer_remove(in, line, n);
	evbuffer_drain(in, eol_len);
	smtps_command(s, line, n);
	return 1;
}

/*
 * A peer that pipelines commands and never reads would make the replies
 * pile up: while more than SMTPS_OUTPUT_MAX bytes wait, read nothing and
 * take no further command. The write callback (output down to the low
 * water mark) or, under TLS, a short poll resumes. True if paused.
 */
static bool
smtps_is_output_full(struct smtps_session *s)
{
	struct timeval tv = { 0, 5000 };

	if (smtps_output_pending(s) <= SMTPS_OUTPUT_MAX) {
		if (s->out_full) {
			s->out_full = false;
			if (s->pending == SMTPS_PENDING_NONE)
				bufferevent_enable(s->bev, EV_READ);
		}
		return false;
	}
	s->out_full = true;
	bufferevent_disable(s->bev, EV_READ);
	if (s->is_tls)
		event_add(s->ev_resume, &tv);
	return true;
}

static void
smtps_process(struct smtps_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	while (s->state != SMTPS_ST_CLOSING && s->state != SMTPS_ST_GREETING &&
	    s->pending == SMTPS_PENDING_NONE && !smtps_is_output_full(s)) {
		if (s->state == SMTPS_ST_DATA) {
			if (!smtps_read_data(s))
				break;
			if (s->data_too_big) {
				smtps_reset_transaction(s);
				smtps_enter_state(s, SMTPS_ST_HELO);
				smtps_write_reply(s, 552,
				    "5.3.4 Error: message file too big");
				continue;
			}
			smtps_dispatch(s, SMTPS_EV_MESSAGE);
			continue;
		}
		if (smtps_read_command(s) == 0)
			break;
	}
	s->in_process = false;
}

static void
smtps_read_cb(struct bufferevent *bev, void *arg)
{
	smtps_process(arg);
}

static void
smtps_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtps_session *s = arg;

	if (s->state == SMTPS_ST_CLOSING)
		smtps_try_finish(s);
	else if (s->out_full)
		smtps_process(s);
}

static void
smtps_event_cb_(struct bufferevent *bev, short what, void *arg)
{
	struct smtps_session *s = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		char msg[SMTPS_TEXT_MAX];

		if (s->state == SMTPS_ST_CLOSING) {
			smtps_finish(s, s->close_reason);
			return;
		}
		snprintf(msg, sizeof(msg), "4.4.2 %s Error: timeout exceeded",
		    s->hostname);
		if (what & BEV_EVENT_WRITING) {
			/* The peer does not read: no point in a goodbye. */
			smtps_finish(s, "timeout");
			return;
		}
		smtps_write_reply(s, 421, msg);
		s->pending = SMTPS_PENDING_NONE;
		smtps_close_after_reply(s, "timeout");
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		smtps_finish(s, (what & BEV_EVENT_EOF) ? "eof" : "io");
}

static void
smtps_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtps_session *s = arg;

	if (s->state == SMTPS_ST_CLOSING) {
		smtps_try_finish(s);
		return;
	}
	if (s->state == SMTPS_ST_GREETING && s->pending == SMTPS_PENDING_NONE) {
		smtps_dispatch(s, SMTPS_EV_CONNECT);
		return;
	}
	smtps_process(s);
}

struct smtps_session *
smtps_session_new(struct event_base *base, int fd, const struct smtps_config *cfg,
    smtps_event_cb on_event, smtps_close_cb on_close, void *arg)
{
	struct smtps_session *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->cfg = *cfg;
	s->hostname = xstrdup(cfg->hostname ? cfg->hostname : "localhost");
	s->cfg.hostname = s->hostname;
	if (s->cfg.max_message == 0)
		s->cfg.max_message = SMTPS_DEFAULT_MAX_MESSAGE;
	if (s->cfg.max_line == 0 || s->cfg.max_line > SMTPS_LINE_MAX)
		s->cfg.max_line = SMTPS_LINE_MAX;
	if (s->cfg.max_rcpts == 0)
		s->cfg.max_rcpts = SMTPS_DEFAULT_MAX_RCPTS;
	if (s->cfg.max_errors <= 0)
		s->cfg.max_errors = SMTPS_DEFAULT_MAX_ERRORS;
	if (s->cfg.idle_timeout_ms <= 0)
		s->cfg.idle_timeout_ms = SMTPS_DEFAULT_IDLE_MS;
	s->on_event = on_event;
	s->on_close = on_close;
	s->arg = arg;
	s->pending = SMTPS_PENDING_NONE;
	s->state = SMTPS_ST_GREETING;
	buf_init(&s->data, s->cfg.max_message);

	evutil_make_socket_nonblocking(fd);
	s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->ev_resume = event_new(base, -1, 0, smtps_resume_cb, s);
	if (s->bev == NULL || s->ev_resume == NULL) {
		if (s->bev == NULL)
			close(fd);
		smtps_session_free(s);
		return NULL;
	}
	smtps_setup_bev(s);
	bufferevent_disable(s->bev, EV_READ);
	smtps_schedule(s);
	return s;
}

void
smtps_session_free(struct smtps_session *s)
{
	if (s == NULL)
		return;
	if (s->ev_resume)
		event_free(s->ev_resume);
	if (s->bev)
		bufferevent_free(s->bev);
	smtps_reset_transaction(s);
	free(s->rcpts);
	buf_fini(&s->data);
	free(s->hostname);
	free(s);
}

size_t
smtps_session_output_pending(const struct smtps_session *s)
{
	return smtps_output_pending(s);
}

bool
smtps_session_is_tls(const struct smtps_session *s)
{
	return s->is_tls;
}

const char *
smtps_session_helo(const struct smtps_session *s)
{
	return s->helo;
}
