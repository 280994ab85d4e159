/*
 * smtpc: one SMTP client session (RFC 5321) on a libevent loop.
 *
 * A session connects from an optional source IP to one destination IP and
 * port, reads the greeting, says EHLO (HELO when EHLO gets a 5xx), takes
 * STARTTLS when offered and configured (opportunistic: no certificate
 * verification, no SNI; a 4xx/5xx to STARTTLS other than 421 goes on in
 * plain text), says EHLO again, and is then ready. Each smtpc_send is one
 * transaction with one recipient:
 *
 *   [RSET] MAIL FROM:<from> [SIZE=n] [BODY=8BITMIME]  RCPT TO:<rcpt>  DATA
 *   <message, CRLF line ends, dot-stuffed>  CRLF.CRLF
 *
 * RSET policy: RSET is sent before the MAIL of every transaction but the
 * first on a connection (always, whether or not the previous one ended
 * cleanly), except right after a probe whose closing RSET got a 2xx. With PIPELINING advertised, RSET+MAIL+RCPT+DATA go out in one
 * write and the replies are read in order (RFC 2920); otherwise lock-step.
 * If DATA is answered 354 although MAIL or RCPT failed, a lone "." is sent
 * and its reply discarded; the first failure is what is reported.
 *
 * SIZE: when the server advertises SIZE m (m > 0) and the message (after
 * CRLF normalisation and dot-stuffing) is larger, nothing is sent: the
 * transaction ends at stage MAIL with net_error false and the synthetic
 * reply 552 5.3.4 "message size N exceeds server limit M". SIZE=N is added
 * to MAIL FROM when SIZE is advertised; BODY=8BITMIME when 8BITMIME is
 * advertised and the message has a byte >= 0x80.
 *
 * Timeouts (config, in milliseconds; RFC 5321 4.5.3.2 suggests connect
 * and greeting 300 s, EHLO 300 s, MAIL 300 s, RCPT 300 s, DATA 120 s, data
 * block 180 s, dot 600 s, RSET/QUIT short): each runs from when the
 * command was written until its reply is complete; t_starttls covers the
 * STARTTLS reply and the TLS handshake; t_data_block runs from each block of
 * message data handed to the socket until the next one can be (no progress
 * for that long fails the transaction), t_dot from when the whole message
 * has left until the reply. A data-block timeout is reported at stage DOT
 * ("timeout after 180s sending message data"), like any failure after 354.
 *
 * Limits: a reply line longer than max_line bytes (CRLF excluded), a reply
 * of more than max_lines lines, a malformed line, a continuation line with
 * another code, or a reply while nothing is outstanding is a protocol error
 * and closes the session (net_error). A 421 at any point closes the session:
 * it is reported as the reply of the stage it answered.
 *
 * Callbacks and ownership. The caller owns the session (smtpc_new/free),
 * the event_base and the SSL_CTX. If smtpc_open returns an error, no
 * callback is ever called (smtpc_error() says why). Otherwise:
 *   ready   once, when the session is set up and idle (not called again
 *           between transactions: the session is idle again after done);
 *   done    exactly once per accepted smtpc_send or smtpc_probe, never
 *           synchronously from inside them; r->duration_ms is the
 *           transaction's;
 *   closed  once, when the session is gone: setup failed (r->stage and reply
 *           or error say where), the peer closed or sent 421 while idle, a
 *           transaction failure closed it (after that transaction's done,
 *           with the same result), or QUIT finished (stage QUIT, ok true
 *           when the QUIT got 221). r->duration_ms is the session's. The
 *           connection is already closed; the owner calls smtpc_free.
 * smtpc_free may be called from inside any callback; no callback follows.
 *
 * Logging: log_trace("smtp") for every line sent and received, log_info
 * ("smtp") one line per transaction (event=transaction) and per session end
 * (event=session_end), key=value with log_quote'd texts.
 */
#ifndef SLUICE_NET_SMTPC_H
#define SLUICE_NET_SMTPC_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "net/smtp_reply.h"

struct event_base;
struct smtpc;

struct smtpc_config {           /* value type, copied by smtpc_new */
	char source_ip[64];     /* bind() before connect; "", "0.0.0.0" or "::": don't bind */
	char dest_ip[64];       /* IPv4 or IPv6 literal */
	int dest_port;
	char helo[256];         /* EHLO/HELO name; "" → "localhost" */
	bool starttls;          /* opportunistic: use STARTTLS when offered */
	SSL_CTX *ssl_ctx;       /* client TLS context, shared, owned by the caller;
	                         * smtpc_tls_ctx_new(); NULL: no STARTTLS */
	int t_connect, t_greeting, t_ehlo, t_starttls, t_mail, t_rcpt, t_data,
	    t_data_block, t_dot, t_rset, t_quit;   /* ms; <= 0: the RFC 5321 value */
	size_t max_line;        /* longest reply line accepted; 0 → 4096 */
	size_t max_lines;       /* most lines in one reply; 0 → 128 */
};

enum smtpc_stage {
	SMTPC_CONNECT,
	SMTPC_GREETING,
	SMTPC_EHLO,
	SMTPC_HELO,
	SMTPC_STARTTLS,
	SMTPC_MAIL,
	SMTPC_RCPT,
	SMTPC_DATA,
	SMTPC_DOT,
	SMTPC_RSET,
	SMTPC_QUIT,
	SMTPC_IDLE,     /* between transactions: peer closed or sent 421 */
};

/* "connect", "greeting", "ehlo", "helo", "starttls", "mail", "rcpt",
 * "data", "dot", "rset", "quit", "idle". */
const char *smtpc_stage_name(enum smtpc_stage stage);

struct smtpc_reply {            /* value type */
	int code;                              /* 200..599 */
	char enhanced[SMTP_REPLY_ENHANCED_MAX]; /* "5.1.1" or "" */
	char text[SMTP_REPLY_TEXT_MAX];        /* see smtp_reply.h: all lines,
	                                        * codes stripped, joined with " " */
};

struct smtpc_result {
	enum smtpc_stage stage; /* where the transaction/session ended */
	bool ok;                /* message accepted (250 after DOT) / QUIT got 221 */
	bool net_error;         /* no SMTP reply: refused, timeout, closed, TLS
	                         * failure, protocol error */
	struct smtpc_reply reply; /* valid when !net_error */
	char error[256];        /* for net_error: e.g. "connection refused",
	                         * "timeout after 30s waiting for greeting",
	                         * "reply line longer than 4096 bytes" */
	int duration_ms;
};

struct smtpc_callbacks {
	void (*ready)(struct smtpc *s, void *arg);
	void (*done)(struct smtpc *s, const struct smtpc_result *r, void *arg);
	void (*closed)(struct smtpc *s, const struct smtpc_result *r, void *arg);
};

/* A new, unopened session. Copies cfg and cb. */
struct smtpc *smtpc_new(struct event_base *base, const struct smtpc_config *cfg,
    const struct smtpc_callbacks *cb, void *arg);
/* Close at once (no QUIT) and free; NULL is fine. No callback follows. */
void smtpc_free(struct smtpc *s);

/*
 * Start connecting. 0, or -1 with the reason in smtpc_error() (bad address,
 * socket/bind/connect failure reported at once); then no callback is called.
 * A refused connection found later is reported through closed.
 */
int smtpc_open(struct smtpc *s);

/*
 * One transaction, one recipient, only when idle (after ready or done).
 * mail_from may be "" (null sender); addresses without <>, at most 512
 * bytes, no CR/LF/<>. data: the RFC 5322 message with LF or CRLF line ends;
 * it is copied (normalised to CRLF and dot-stuffed, CRLF.CRLF appended)
 * once into an evbuffer before this returns. 0, or -1 (not idle, bad
 * address) and then done is not called.
 */
int smtpc_send(struct smtpc *s, const char *mail_from, const char *rcpt,
    const char *data, size_t len);

/*
 * A probe (block re-test, DESIGN 5.2), only when idle, never DATA:
 *
 *   [RSET] MAIL FROM:<from>  RCPT TO:<rcpt>  RSET
 *
 * The leading RSET follows the RSET policy above; MAIL carries no SIZE or
 * BODY parameter. With PIPELINING the four commands go out in one write;
 * lock-step, a refused MAIL (or leading RSET) is followed by the closing
 * RSET alone. Whatever the answers, the closing RSET is sent, so the
 * session is clean and can carry smtpc_send or smtpc_probe afterwards; its
 * own reply is not reported (a 2xx spares the next transaction its RSET).
 * done reports, exactly like smtpc_send:
 *   RCPT got 2xx           ok true, stage RCPT, reply = the RCPT reply;
 *   MAIL or RCPT refused   ok false, stage MAIL or RCPT, reply = that one
 *                          (the first refusal; a refused leading RSET is
 *                          reported at stage RSET);
 *   421 at MAIL/RCPT       as refused, then the session closes (closed);
 *   no reply (timeout, close, protocol error) before RCPT was answered:
 *                          net_error at the stage waited for. Once MAIL and
 *                          RCPT were answered, a failure during the closing
 *                          RSET still reports that answer (then closed).
 * Same contract as smtpc_send: 0, or -1 (not idle, bad address; then done
 * is not called); done exactly once, never synchronously. Addresses as for
 * smtpc_send. A probe is not counted by smtpc_transactions. Logged as
 * event=probe.
 */
int smtpc_probe(struct smtpc *s, const char *mail_from, const char *rcpt);

/* QUIT when idle (at once) or when the running transaction or setup ends,
 * then closed. */
void smtpc_quit(struct smtpc *s);

bool smtpc_is_tls(const struct smtpc *s);          /* STARTTLS succeeded */
bool smtpc_is_idle(const struct smtpc *s);         /* smtpc_send allowed now */
bool smtpc_has_pipelining(const struct smtpc *s);  /* EHLO advertised it */
bool smtpc_has_8bitmime(const struct smtpc *s);
bool smtpc_has_enhancedstatuscodes(const struct smtpc *s);
size_t smtpc_max_size(const struct smtpc *s);      /* SIZE n; 0: none advertised */
int smtpc_transactions(const struct smtpc *s);     /* smtpc_send calls accepted
                                                    * (probes not counted) */
/* Why smtpc_open failed ("" otherwise). */
const char *smtpc_error(const struct smtpc *s);

/* A client SSL_CTX for opportunistic MX TLS: no verification, TLS >= 1.0.
 * The caller frees it with SSL_CTX_free. NULL on failure. */
SSL_CTX *smtpc_tls_ctx_new(void);

#endif
