/*
 * engine_int.h: the engine's internal structures, shared by its parts:
 *   engine.c          life cycle, engine_call queue, tick, outcome batches
 *   engine_pump.c     active mailings and claiming recipients from the store
 *   engine_route.c    domain -> MX addresses (static routes, DNS)
 *   engine_sched.c    (source IP, MX IP) pairs, SMTP sessions, assignment
 *   engine_verdict.c  an attempt's result -> recipient outcome + attempt log
 * Nothing outside src/engine includes this file.
 *
 * Ownership: the engine owns every struct here. A recipient (struct rcpt)
 * is in exactly one place: a domain queue, or a connection (conn->cur).
 * Mailing contexts live while the mailing is active or has recipients in
 * memory; domain queues live while they hold recipients or a lookup; dests
 * and pairs live as long as the engine.
 */
#ifndef SLUICE_ENGINE_ENGINE_INT_H
#define SLUICE_ENGINE_ENGINE_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/queue.h>

#include "engine/engine.h"
#include "mail/tmpl.h"
#include "net/dns.h"
#include "policy/block.h"
#include "policy/classify.h"
#include "policy/limit.h"
#include "net/smtpc.h"
#include "util/dict.h"
#include "util/timeutil.h"

#define ENGINE_MAX_DESTS 32 /* MX addresses used per domain */

struct mctx;
struct dq;
struct dest;
struct pair;
struct conn;
struct verdict_in;
struct probe;

struct rcpt {
	TAILQ_ENTRY(rcpt) q;
	struct store_recipient r; /* owns r.name, r.fields */
	struct mctx *m;
	struct dq *dq;
};
TAILQ_HEAD(rcpt_list, rcpt);

/* A stream as the engine sees it: name and source IPs. */
struct sctx {
	char name[128];
	struct store_ip *ips;
	size_t nips;
};

/* An active mailing. */
struct mctx {
	TAILQ_ENTRY(mctx) link;
	int64_t id;
	struct tmpl *tmpl;
	struct sctx *stream;
	char list[128];
	char sender_domain[256]; /* the list's From domain: limit sources */
	bool active;         /* state "sending"; false: drain and forget */
	bool seen;           /* reload bookkeeping */
	size_t inmem;        /* recipients in memory */
	msec_t next_claim;   /* don't ask the store again before this */
	uint64_t sent_since_start;
};
TAILQ_HEAD(mctx_list, mctx);

enum route_state { ROUTE_NONE, ROUTE_RESOLVING, ROUTE_OK, ROUTE_TEMPFAIL, ROUTE_PERMFAIL };

/* Recipients of one domain on one stream, waiting for a session. */
struct dq {
	TAILQ_ENTRY(dq) link;
	char key[400];       /* "stream\tdomain" */
	char domain[256];
	struct sctx *stream;
	struct rcpt_list rcpts;
	size_t n;
	enum route_state route;
	msec_t route_expires;
	char route_error[256];
	enum dns_status dns_status; /* of the last failed lookup */
	struct dest *dests[ENGINE_MAX_DESTS]; /* in preference order */
	int prefs[ENGINE_MAX_DESTS];
	size_t ndests;
	int opening;         /* sessions being opened for this queue */
	int lookups;         /* DNS lookups in flight for this queue */
	bool in_ready;       /* on engine->ready */
	bool static_route;
	/* why no session opened or no message went out (limits), for explain */
	char hold[200];
	msec_t hold_at;      /* when it was seen; 0: not held */
	msec_t hold_until;   /* 0: until a session closes */
};
TAILQ_HEAD(dq_list, dq);

/* One MX address (IP and port). */
struct dest {
	char ip[64];
	int port;
	char host[256];      /* an MX host name that led here */
	struct dq **dqs;     /* queues routed here */
	size_t ndqs, capdqs;
};

/* A source IP towards a dest: the unit of connection limits and blocks. */
struct pair {
	struct dest *dest;
	char src[64];
	char helo[256];
	char stream[128];
	int nconn;           /* open or opening sessions */
	TAILQ_HEAD(, conn) idle;
	msec_t down_until;   /* after setup failures */
	int failures;        /* consecutive setup failures */
	char last_error[512];
	int last_code;
	struct limit_window win; /* lowered after rate_limited replies */
};

enum conn_state { CONN_OPENING, CONN_IDLE, CONN_BUSY, CONN_CLOSING };

struct conn {
	TAILQ_ENTRY(conn) idle_link;
	LIST_ENTRY(conn) all_link;
	struct engine *e;
	struct pair *p;
	struct smtpc *s;
	enum conn_state state;
	struct dq *opener;   /* queue it is being opened for; NULL once ready */
	char stream[128];    /* stream of that queue, for the connection log */
	struct rcpt *cur;
	msec_t opened;
	msec_t started;      /* current transaction */
	int messages;
	struct event *idle_ev;
	int64_t limit_ids[LIMIT_MATCH_MAX]; /* budgets this session counts in */
	size_t nlimit_ids;
	int64_t mpc;         /* messages per connection, 0: unlimited */
};

struct engine {
	const struct settings *cfg;
	struct store *st;
	struct event_base *base;
	struct dns *dns;
	struct classify_rules *rules;
	SSL_CTX *ssl;
	unsigned char verp_key[64];
	size_t verp_keylen;
	char bounce_domain[256];

	struct mctx_list mailings;
	struct dict *streams;    /* name -> struct sctx */
	struct dict *dqs;        /* key -> struct dq */
	struct dq_list ready;    /* queues with recipients */
	struct dict *dests;      /* "ip:port" -> struct dest */
	struct dict *pairs;      /* "src|ip:port" -> struct pair */

	struct limitset *limits;   /* engine_limit.c */

	/* blocks (engine_block.c) */
	struct block_table *blocks;
	struct store_block *binfo; /* the standing blocks, as in the store */
	size_t nbinfo, capbinfo;
	struct dict *fullblocked;  /* "stream\tdomain" -> struct fullblock */
	int nprobes;               /* probes under way */
	struct probe *probes;      /* their list */
	const char **skipbuf;      /* block_skip_list's answer */
	size_t skipcap;
	msec_t next_expiry;        /* next sweep of recipients past max_age */
	LIST_HEAD(, conn) conns;
	size_t nconns;
	size_t inmem;

	struct event *tick_ev;
	struct event *sched_ev;
	struct event *call_ev;
	struct event *commit_ev;
	bool in_txn;
	size_t txn_rows;
	bool dirty;              /* reload mailings/streams/routes */
	bool stopping;
	bool store_failed;       /* a commit failed: stopping, exit non-zero */
	msec_t stop_deadline;

	/* engine_call queue */
	pthread_mutex_t call_lock;
	pthread_cond_t call_cond;
	struct engine_callreq *calls;
	bool calls_closed;       /* loop ended: engine_call fails at once */

	/* figures */
	uint64_t n_sent, n_deferred, n_failed, n_attempts, n_sessions;
};

/* engine.c */
void engine_txn_touch(struct engine *e);   /* before a store write */
void engine_txn_commit(struct engine *e);
void engine_sched_soon(struct engine *e);
struct sctx *engine_stream(struct engine *e, const char *name);

/* engine_pump.c */
void pump_reload(struct engine *e);
void pump_run(struct engine *e, msec_t now);
void pump_release(struct engine *e, struct rcpt *rc); /* recipient leaves memory */
void pump_free_all(struct engine *e);
/* Recipients of active mailings waiting past max_age expire. */
void pump_expire(struct engine *e, msec_t now);

/* engine_route.c */
void route_dq(struct engine *e, struct dq *dq, msec_t now);
void route_forget_static(struct engine *e);

/* engine_sched.c */
void sched_run(struct engine *e, msec_t now);
struct dq *sched_dq_get(struct engine *e, struct sctx *s, const char *domain);
void sched_dq_put(struct engine *e, struct dq *dq, struct rcpt *rc);
void sched_dq_maybe_free(struct engine *e, struct dq *dq);
struct dest *sched_dest_get(struct engine *e, const char *ip, int port, const char *host);
void sched_dest_link(struct dest *d, struct dq *dq);
void sched_dest_unlink(struct dest *d, struct dq *dq);
void sched_close_all(struct engine *e, bool force);
/* A session configuration from the settings (timeouts, TLS). */
void sched_smtpc_config(struct engine *e, const char *src, const char *helo,
    const char *ip, int port, struct smtpc_config *cfg);
/* Close the sessions of every pair from src to the MX address ip: idle ones
 * at once, busy ones after their transaction. */
void sched_close_pair(struct engine *e, const char *src, const char *ip);
int sched_conn_count(struct engine *e);

/* engine_block.c */
void block_engine_init(struct engine *e);
void block_engine_fini(struct engine *e);
/* (Re)load the standing blocks from the store; recheck fully blocked
 * domains. */
void block_engine_reload(struct engine *e, msec_t now);
/* A reply classified ip_block for a recipient: true when the recipient was
 * put back to go out on another pair (the verdict is then done). */
bool block_on_reply(struct engine *e, struct rcpt *rc, const struct verdict_in *in,
    msec_t now);
/* A session that could not be set up: a refusal that is a block records
 * one. */
void block_on_refusal(struct engine *e, struct pair *p, const char *stream,
    const char *domain, int code, const char *enhanced, const char *text, msec_t now);
bool block_pair_is_blocked(struct engine *e, const struct pair *p);
/* Is the queue's domain fully blocked for its stream? If so its queued
 * recipients go back to pending and the pump stops pulling the domain for
 * that stream. */
bool block_dq_check_full(struct engine *e, struct dq *dq, msec_t now);
/* Domains fully blocked for stream (array of pointers into the engine,
 * valid until the next engine event); *n how many. */
const char **block_skip_list(struct engine *e, const char *stream, size_t *n);
void block_probe_run(struct engine *e, msec_t now);
json_t *block_domain_json(struct engine *e, const char *stream, const char *domain,
    struct dq *dq);

/* engine_limit.c */
void limit_engine_reload(struct engine *e);
void limit_engine_fini(struct engine *e);
/* The limits matching a session of pair p for queue dq (sender: the head
 * recipient's list domain). */
size_t limit_ids_for(struct engine *e, const struct pair *p, const struct dq *dq,
    const char *sender, int64_t *ids);
/* May a session open on p for dq now? If not, dq->hold says why. */
bool limit_may_open(struct engine *e, struct pair *p, struct dq *dq, msec_t now);
void limit_opened(struct engine *e, struct conn *c, struct dq *dq);
void limit_closed(struct engine *e, struct conn *c);
/* May session c carry rc now (same budgets, messages per hour, messages
 * per connection)? If not, the queue's hold says why. */
bool limit_may_send(struct engine *e, struct conn *c, struct dq *dq,
    const struct rcpt *rc, msec_t now);
void limit_sent(struct engine *e, struct conn *c, msec_t now);
/* The greylist strategy for a recipient's attempt on pair p. */
void limit_greylist_for(struct engine *e, const struct rcpt *rc, const struct pair *p,
    struct retry_greylist *g);
void limit_rate_limited(struct engine *e, struct pair *p, msec_t now);
void limit_delivered(struct engine *e, struct pair *p);

/* engine_verdict.c */
struct verdict_in {
	const char *stage;
	bool net_error;
	int code;
	const char *enhanced;
	const char *text;
	const char *source_ip;
	const char *mx_host;
	const char *mx_ip;
	int duration_ms;
	struct pair *pair;   /* the pair of the session, NULL if none */
};
void verdict_apply(struct engine *e, struct rcpt *rc, const struct verdict_in *in,
    msec_t now);
/* Put a recipient back to pending without counting an attempt. */
void verdict_return(struct engine *e, struct rcpt *rc, msec_t now);

#endif
