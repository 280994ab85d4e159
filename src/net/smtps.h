/*
 * smtps: the server side of one SMTP session (RFC 5321, with PIPELINING,
 * SIZE, 8BITMIME, ENHANCEDSTATUSCODES and optional STARTTLS) on a libevent
 * bufferevent. The simulator's providers and the inbound bounce listener
 * both run on it.
 *
 * The session owns the protocol: line limits, command sequence, DATA
 * reading with dot-unstuffing, the size limit, error counting and the idle
 * timeout. The owner decides every reply that carries policy: the event
 * callback is called at connect, HELO/EHLO, MAIL, RCPT, DATA and at the end
 * of the message, and must answer each with smtps_reply(), at once or later
 * (latency simulation, an asynchronous lookup). Until the reply is given the
 * session reads no further command, so pipelined commands are answered in
 * order.
 *
 * Ownership: smtps_session_new() takes the fd (closed when the session
 * ends). The session frees itself when it ends (QUIT, peer close, timeout,
 * too many errors, a 421 reply), after calling the close callback once;
 * the owner must not use the handle after that callback. The owner may end
 * a session early with smtps_session_free(), which does not call the close
 * callback. smtps_reply() never calls back into the owner.
 *
 * smtps_parse_command() is the pure command-line parser (a fuzz target).
 */
#ifndef SLUICE_NET_SMTPS_H
#define SLUICE_NET_SMTPS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#define SMTPS_LINE_MAX 4096   /* a command line, without CRLF */
#define SMTPS_PATH_MAX 256    /* RFC 5321 4.5.3.1.3 */
#define SMTPS_PARAMS_MAX 8    /* ESMTP parameters on MAIL / RCPT */
#define SMTPS_PARAM_KEY_MAX 32
#define SMTPS_PARAM_VALUE_MAX 128
#define SMTPS_TEXT_MAX 1024   /* one reply's text */
/* Reply bytes waiting for a peer that does not read; beyond this the
 * session takes no further command until they drain (one reply may
 * overshoot it). */
#define SMTPS_OUTPUT_MAX (64u << 10)

enum smtps_verb {
	SMTPS_VERB_UNKNOWN,
	SMTPS_VERB_HELO,
	SMTPS_VERB_EHLO,
	SMTPS_VERB_MAIL,
	SMTPS_VERB_RCPT,
	SMTPS_VERB_DATA,
	SMTPS_VERB_RSET,
	SMTPS_VERB_NOOP,
	SMTPS_VERB_QUIT,
	SMTPS_VERB_VRFY,
	SMTPS_VERB_HELP,
	SMTPS_VERB_STARTTLS,
};

struct smtps_param {
	char key[SMTPS_PARAM_KEY_MAX + 1];     /* upper-cased */
	char value[SMTPS_PARAM_VALUE_MAX + 1]; /* "" when the key has no value */
	bool has_value;
};

struct smtps_command {
	enum smtps_verb verb;
	/* HELO/EHLO: the domain; NOOP/HELP/VRFY: the argument; else "". */
	char arg[SMTPS_LINE_MAX + 1];
	/* MAIL/RCPT: the address without <> and source route ("" = <>). */
	char path[SMTPS_PATH_MAX + 1];
	struct smtps_param params[SMTPS_PARAMS_MAX];
	size_t nparams;
};

/* smtps_parse_command() results. */
#define SMTPS_PARSE_OK 0
#define SMTPS_PARSE_UNKNOWN (-1)  /* unknown verb: 500 */
#define SMTPS_PARSE_SYNTAX (-2)   /* bad arguments: 501 (cmd->verb is set) */
#define SMTPS_PARSE_TOOLONG (-3)  /* longer than SMTPS_LINE_MAX: 500 */

/*
 * Parse one command line of len bytes (a trailing CR or CRLF is ignored;
 * the line need not be NUL-terminated). Fills cmd; returns SMTPS_PARSE_*.
 */
int smtps_parse_command(const char *line, size_t len, struct smtps_command *cmd);
const char *smtps_verb_name(enum smtps_verb verb);
/* The value of ESMTP parameter key (case-insensitive) or NULL. */
const char *smtps_command_param(const struct smtps_command *cmd, const char *key);

enum smtps_event_type {
	SMTPS_EV_CONNECT,  /* reply 220 to greet; 4xx/5xx refuses */
	SMTPS_EV_HELO,     /* HELO or EHLO (cmd); 250 accepts */
	SMTPS_EV_MAIL,     /* MAIL FROM (cmd->path, params) */
	SMTPS_EV_RCPT,     /* RCPT TO (cmd->path) */
	SMTPS_EV_DATA,     /* DATA command: 354 to go ahead */
	SMTPS_EV_MESSAGE,  /* end of data: data/len, accepted rcpts */
};

struct smtps_event {
	enum smtps_event_type type;
	const struct smtps_command *cmd; /* HELO, MAIL, RCPT; else NULL */
	const char *helo;                /* "" before HELO */
	const char *mail_from;           /* current transaction's sender */
	const char *const *rcpts;        /* accepted recipients so far */
	size_t nrcpts;
	const char *data;                /* MESSAGE: unstuffed text, CRLF lines */
	size_t len;
};

struct smtps_session;

/* Must answer every event with smtps_reply(), now or later. */
typedef void (*smtps_event_cb)(struct smtps_session *s,
    const struct smtps_event *ev, void *arg);
/* The session ended (reason is a short word: quit, eof, timeout, errors,
 * closed, io); the handle is freed when this returns. */
typedef void (*smtps_close_cb)(struct smtps_session *s, const char *reason,
    void *arg);

struct smtps_config {
	const char *hostname;      /* in the default texts and EHLO */
	size_t max_message;        /* SIZE; 0 = 10 MiB */
	size_t max_line;           /* command lines; 0 or > SMTPS_LINE_MAX = max */
	size_t max_rcpts;          /* per transaction; 0 = 100 */
	int max_errors;            /* then 421 and close; 0 = 10 */
	int idle_timeout_ms;       /* then 421 and close; 0 = 300000 */
	SSL_CTX *tls;              /* offer STARTTLS when set (not owned) */
};

/*
 * Start a session on a connected, non-blocking fd (taken over). The
 * CONNECT event is delivered from the event loop, not from this call.
 * cfg is copied (hostname too).
 */
struct smtps_session *smtps_session_new(struct event_base *base, int fd,
    const struct smtps_config *cfg, smtps_event_cb on_event,
    smtps_close_cb on_close, void *arg);
/* End the session at once without calling on_close. NULL is fine. */
void smtps_session_free(struct smtps_session *s);

/*
 * Answer the pending event. text may start with an enhanced status code and
 * may hold several lines separated by '\n' (a multi-line reply). A 421
 * reply closes the session after it is sent. Returns 0, or -1 if no event
 * is waiting for a reply (a bug in the caller).
 */
int smtps_reply(struct smtps_session *s, int code, const char *text);
/* Answer with the session's default acceptance for the pending event
 * (220, 250, 354, "250 2.0.0 Ok: queued"). */
int smtps_reply_default(struct smtps_session *s);
/* The same as smtps_reply() with a printf format. */
int smtps_replyf(struct smtps_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reply bytes not yet handed to the socket. */
size_t smtps_session_output_pending(const struct smtps_session *s);
bool smtps_session_is_tls(const struct smtps_session *s);
const char *smtps_session_helo(const struct smtps_session *s);

#endif
