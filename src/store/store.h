/*
 * store: the one interface to sluice's database. Only this module touches
 * the database handle; the engine, the HTTP API and the commands call these
 * operations. The SQLite backend (store_sqlite.c) is the one shipped today;
 * a PostgreSQL backend implements the same functions.
 *
 * Threads: a struct store is used by one thread at a time. The engine owns
 * the only read-write handle; the HTTP API opens its own read-only handles.
 *
 * Errors: operations return 0 or a negative STORE_E* code; the text of the
 * last error is store_errmsg(). Functions that return pointers return NULL
 * on error. Strings returned in structs are owned by the struct and freed
 * by the matching *_free function.
 *
 * Times are msec_t (ms since the epoch, UTC) everywhere.
 *
 * Every write is atomic on its own (an internal SAVEPOINT), inside or
 * outside a caller's store_begin()/store_commit(). The engine's hot path
 * (claim, finish, attempt and connection logs) uses cached prepared
 * statements and is meant to be batched in one transaction.
 */
#ifndef SLUICE_STORE_STORE_H
#define SLUICE_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/timeutil.h"

enum {
	STORE_OK = 0,
	STORE_EIO = -1,       /* database error */
	STORE_ENOTFOUND = -2, /* named object does not exist */
	STORE_EEXISTS = -3,   /* object already exists */
	STORE_EINVAL = -4,    /* invalid argument (message says which) */
	STORE_EBUSY = -5,     /* object in use (e.g. stream of an active mailing) */
};

struct store;

/*
 * Open (creating if needed) the database at path. Read-write handles apply
 * the numbered migrations (a newer schema than this binary knows is an
 * error, never a reset), enable WAL, and on first start create the site
 * "default" and the stream "default" (one entry, source IP "0.0.0.0": let
 * the kernel choose). Read-only handles see committed data only.
 * On failure returns NULL and writes a message into err.
 */
struct store *store_open(const char *path, bool readonly, char *err, size_t errlen);
void store_free(struct store *st);
const char *store_errmsg(const struct store *st);
int store_schema_version(struct store *st);

/* Explicit transactions for batching (BEGIN IMMEDIATE; not nestable);
 * operations outside one autocommit. */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

/* ---- streams ---------------------------------------------------------- */

struct store_ip {
	char ip[64];    /* textual IPv4/IPv6 source address */
	char helo[256]; /* HELO/EHLO name; empty: the configured hostname */
};

/* Create the stream, or replace its IP list if it exists. */
int store_stream_put(struct store *st, const char *name, const struct store_ip *ips,
    size_t nips);
/* STORE_EBUSY if a mailing in state queued/sending/paused uses it. */
int store_stream_rm(struct store *st, const char *name);
/* The stream's IPs (caller frees *ips). STORE_ENOTFOUND if no such stream. */
int store_stream_ips(struct store *st, const char *name, struct store_ip **ips,
    size_t *nips);
/* [{"name":..,"ips":[{"ip":..,"helo":..}],"created":..}] */
json_t *store_streams_json(struct store *st);

/* ---- routes (DNS bypass) ---------------------------------------------- */

/* hosts are "host[:port]"; domain is lower-cased; "*" is the catch-all. */
int store_route_set(struct store *st, const char *domain, const char *const *hosts,
    size_t nhosts);
int store_route_rm(struct store *st, const char *domain);
/*
 * Hosts for domain: the exact domain's route, else the "*" route, else
 * STORE_ENOTFOUND. *hosts is a NULL-terminated array freed with
 * store_strv_free().
 */
int store_route_get(struct store *st, const char *domain, char ***hosts);
json_t *store_routes_json(struct store *st);
void store_strv_free(char **v);

/* ---- sites, lists, segments, members ---------------------------------- */

/* stream may be NULL. STORE_EEXISTS if the list exists. Site is "default". */
int store_list_create(struct store *st, const char *name, const char *from,
    const char *stream, int64_t *id);
/* {"id","name","from","stream","site","created","members":{"active":n,...},
 *  "segments":[...]} or NULL (STORE_ENOTFOUND) */
json_t *store_list_json(struct store *st, const char *name);
json_t *store_lists_json(struct store *st);

/*
 * A segment: a named filter over a list's members. domains: members whose
 * domain is one of these (or a subdomain); fields: members whose fields
 * have these values. Either may be NULL/empty. stream may be NULL.
 */
int store_segment_put(struct store *st, const char *list, const char *name,
    const char *const *domains, size_t ndomains, json_t *fields, const char *stream);

enum store_member_kind { MEMBER_NORMAL, MEMBER_DIGEST, MEMBER_MODERATOR };

struct store_member_in {
	const char *email; /* already validated */
	const char *name;  /* may be NULL */
	enum store_member_kind kind;
	json_t *fields;    /* may be NULL */
};

/* Insert members; members already in the list are left as they are. */
int store_members_import(struct store *st, const char *list,
    const struct store_member_in *m, size_t n, size_t *added, size_t *existing);
/*
 * Set one member's status: active|unsubscribed|removed|held. STORE_ENOTFOUND
 * if the list has no such member. Recipients of running mailings whose
 * member is no longer active become "suppressed" when their turn comes.
 */
int store_member_set_status(struct store *st, const char *list, const char *email,
    const char *status);
/* [{"id","email","name","kind","status","fields","list","created","updated"}],
 * one entry per list the address is a member of; NULL (STORE_ENOTFOUND) if
 * none. */
json_t *store_member_json(struct store *st, const char *email);

/* ---- mailings --------------------------------------------------------- */

/*
 * Create a mailing of list (optionally one segment), storing the whole
 * message, choosing its stream (DESIGN 5.1: argument, segment, list, site,
 * "default") and creating one recipient per active member (others are not
 * recipients). State becomes "sending". *id receives the mailing id.
 */
int store_mailing_create(struct store *st, const char *list, const char *segment,
    const char *stream, const char *message, size_t message_len, msec_t now,
    int64_t *id);
/* state: queued|sending|paused|done|cancelled. A paused or cancelled
 * mailing is no longer pulled; its recipients keep their states. */
int store_mailing_set_state(struct store *st, int64_t id, const char *state, msec_t now);

struct store_mailing {
	int64_t id;
	int64_t list_id;
	char *list;
	char *stream;
	char *from;        /* list's From address */
	char *state;
	char *message;     /* the RFC 5322 message */
	size_t message_len;
	msec_t created;
};
/* Mailings in state "sending" (the engine's work), oldest first. */
int store_mailings_active(struct store *st, struct store_mailing **out, size_t *n);
void store_mailings_free(struct store_mailing *m, size_t n);

struct store_counts {
	int64_t total, pending, inflight, sent, deferred, failed, expired, skipped,
	    suppressed;
};
/* Reads one row: the counters are kept up to date with every state change,
 * so polling this is cheap for any mailing size. total is the sum of the
 * states. */
int store_mailing_counts(struct store *st, int64_t id, struct store_counts *c);
/* {"id","list","stream","state","created","finished","counts":{..}} */
json_t *store_mailing_json(struct store *st, int64_t id);
json_t *store_mailings_json(struct store *st, int limit);

/* ---- recipients (engine) ---------------------------------------------- */

struct store_recipient {
	int64_t id;
	int64_t mailing_id;
	int64_t member_id;
	char email[321];
	char domain[256];
	char *name;        /* member name, may be "" */
	char *fields;      /* member fields as JSON text, "{}" if none */
	int kind;          /* enum store_member_kind */
	int attempts;      /* attempts made so far */
	msec_t created;    /* when the recipient was queued (for maximum age) */
	char sticky_ip[64];/* source IP to retry from (greylisting), "" if none */
};

/*
 * Claim up to max recipients of mailing whose state is pending or deferred
 * and whose next attempt time is <= now: they become "inflight". Members no
 * longer active become "suppressed" instead of being returned. Domains in
 * skip (n_skip entries, any case) are left alone. At most 100000 are
 * claimed at once; the suppressed do not count towards max. Order: next
 * attempt time, then queue order. The caller frees *out with
 * store_recipients_free().
 */
int store_recipients_claim(struct store *st, int64_t mailing_id, msec_t now,
    size_t max, const char *const *skip, size_t n_skip,
    struct store_recipient **out, size_t *n);
void store_recipients_free(struct store_recipient *r, size_t n);
/* At start: every inflight recipient returns to pending; *n how many. */
int store_recover_inflight(struct store *st, int64_t *n);
/* Earliest next attempt time among claimable recipients of the mailing
 * (0 if none wait). */
int store_mailing_next_due(struct store *st, int64_t mailing_id, msec_t *next);
/* If the mailing has no pending, inflight or deferred recipient, set it to
 * "done" and return 1; 0 if work remains. */
int store_mailing_finish_if_done(struct store *st, int64_t mailing_id, msec_t now);

/* What became of one recipient after an attempt. */
struct store_outcome {
	int64_t recipient_id;
	const char *state;     /* sent|deferred|failed|expired|skipped|suppressed|pending */
	msec_t next_at;        /* for deferred */
	int attempts;          /* new attempt count */
	const char *sticky_ip; /* NULL: unchanged */
	int code;              /* last reply code, 0 if none */
	const char *reply;     /* last reply text, may be NULL */
	const char *category;  /* may be NULL */
	msec_t now;
};
int store_recipient_finish(struct store *st, const struct store_outcome *o);

/* One row of the attempt log. */
struct store_attempt {
	msec_t time;
	int64_t mailing_id;
	int64_t member_id;
	int64_t recipient_id;
	const char *email;
	const char *domain;
	const char *stream;
	const char *source_ip;
	const char *mx_host;
	const char *mx_ip;
	const char *stage;    /* connect|greeting|ehlo|starttls|mail|rcpt|data|dot|dns */
	int code;
	const char *enhanced; /* "5.1.1" or "" */
	const char *text;     /* reply text (all lines) */
	const char *category;
	const char *action;
	const char *outcome;  /* recipient state after the attempt */
	int duration_ms;
};
int store_attempt_add(struct store *st, const struct store_attempt *a);

struct store_attempt_filter {
	int64_t mailing_id; /* 0: any */
	const char *email;  /* NULL: any */
	const char *domain; /* NULL: any */
	int limit;          /* newest first; 0: 100 */
};
json_t *store_attempts_json(struct store *st, const struct store_attempt_filter *f);

/* One SMTP connection (for the streams report). */
struct store_connection {
	msec_t opened;
	msec_t closed;
	const char *stream;
	const char *source_ip;
	const char *mx_host;
	const char *mx_ip;
	int messages;     /* transactions completed on it */
	bool tls;
	const char *error; /* NULL if it ended cleanly */
};
int store_connection_add(struct store *st, const struct store_connection *c);

/*
 * Per stream and per source IP: sent, deferred, failed (attempt outcomes)
 * and connections opened. {"streams":[{"name","sent",..,"ips":[{"ip",..}]}]}
 */
json_t *store_report_streams_json(struct store *st);
/* Recipient's row plus its attempts: {"recipient":{..},"attempts":[..]} */
json_t *store_recipient_json(struct store *st, int64_t mailing_id, const char *email);

/* ---- blocks (DESIGN 5.2; migration 2) ----------------------------------- */

/*
 * A block of the pair (source IP, destination MX IP), found by a mailing on
 * `stream` while delivering to `domain`. While it stands (released == 0) no
 * connection is opened from source_ip to mx_ip, whatever the stream.
 */
struct store_block {
	int64_t id;
	char stream[128];
	char source_ip[64];
	char mx_ip[64];
	char mx_host[256];
	char domain[256];
	char reason[1024];   /* the reply text that created it */
	int code;            /* its reply code (0 if none) */
	msec_t created;
	msec_t last_probe;   /* 0: never probed */
	msec_t next_probe;   /* 0 when permanent */
	int probes;
	bool permanent;
	char last_probe_result[512];
};

/* Record a new block; *id receives its id. History: "created". */
int store_block_add(struct store *st, struct store_block *b, msec_t now);
/* Blocks not released, oldest first (the engine loads them at start).
 * Caller frees *out with free(). */
int store_blocks_active(struct store *st, struct store_block **out, size_t *n);
/* A probe's result: still blocked (or failed otherwise): next_probe set,
 * probes + 1, last_probe_result = text. History: "probe". */
int store_block_probed(struct store *st, int64_t id, msec_t now, msec_t next_probe,
    const char *result);
/*
 * Release blocks: one (id > 0), or all matching domain / source_ip (either
 * non-NULL), or every one (id == 0, both NULL). by: "probe", "operator",
 * "api:<who>". *n how many were released. STORE_ENOTFOUND if id names no
 * standing block. History: "released" with by.
 */
int store_block_release(struct store *st, int64_t id, const char *domain,
    const char *source_ip, const char *by, msec_t now, int64_t *n);
/* Mark or unmark permanent (permanent blocks are never probed; unmarking
 * schedules a probe at next_probe). History: "permanent"/"not permanent". */
int store_block_set_permanent(struct store *st, int64_t id, bool permanent,
    msec_t next_probe, msec_t now);
/*
 * Blocks as JSON for the API: {"blocks":[{"id","stream","source_ip",
 * "mx_ip","mx_host","domain","reason","code","created","last_probe",
 * "next_probe","probes","permanent","released","released_by"}]}, filtered
 * by stream / domain / source_ip (NULL: any), standing blocks only unless
 * include_released.
 */
json_t *store_blocks_json(struct store *st, const char *stream, const char *domain,
    const char *source_ip, bool include_released);
/* One block with its history: {"block":{..},"history":[{"time","kind",
 * "detail","by"}]}. NULL + STORE_ENOTFOUND if no such id. */
json_t *store_block_json(struct store *st, int64_t id);

/* ---- domain macros and connection limits (DESIGN 5.3; migration 3) ----- */

/* $name -> domains. name without the '$'. Replaces an existing macro. */
int store_macro_set(struct store *st, const char *name, const char *const *domains,
    size_t n);
/* STORE_EBUSY if a limit names it. */
int store_macro_rm(struct store *st, const char *name);
/* {"macros":[{"name","domains":[..]}]} */
json_t *store_macros_json(struct store *st);

/* Blank fields are 0 (unlimited) / "" (not set). */
struct store_limit {
	int64_t id;
	char source[300];          /* "" | sender domain | $macro | stream:NAME | IP */
	char target[300];          /* domain | $macro | mx:HOST-pattern | mx:IP */
	int64_t messages_per_hour;
	int64_t connections_per_hour;
	int64_t simultaneous;      /* 0 or 1..100 */
	int64_t messages_per_connection;
	int64_t greylist_interval; /* seconds, 0: default */
	char greylist_function[8]; /* "" | same | double | square */
	int64_t greylist_max;      /* seconds, 0: no cap */
	msec_t created;
};

/* Validate (ranges, macro exists, stream exists for stream:NAME) and add;
 * *id receives the id. STORE_EINVAL with a clear message otherwise. */
int store_limit_add(struct store *st, struct store_limit *l, msec_t now);
/* Replace limit id's settings (same validation). */
int store_limit_update(struct store *st, const struct store_limit *l);
int store_limit_rm(struct store *st, int64_t id);
/* Every limit, by id; caller frees *out. */
int store_limits_all(struct store *st, struct store_limit **out, size_t *n);
/* Every macro; *names and *domains are NULL-terminated arrays; free with
 * store_macros_free. domains[i] is a NULL-terminated array for names[i]. */
int store_macros_all(struct store *st, char ***names, char ****domains);
void store_macros_free(char **names, char ***domains);
/* {"limits":[{"id","source","target","messages_per_hour",...}]} */
json_t *store_limits_json(struct store *st);

/* ---- engine queries for blocks and expiry -------------------------------- */

/* An address of a recipient waiting (pending or deferred) for domain in a
 * sending mailing on stream, for probing a block; STORE_ENOTFOUND if none. */
int store_waiting_recipient(struct store *st, const char *stream, const char *domain,
    char *email, size_t n);
/* How many recipients of domain wait in sending mailings on stream. */
int store_domain_waiting(struct store *st, const char *stream, const char *domain,
    int64_t *count);
/* How many recipients of one mailing and domain wait (pending/deferred). */
int store_mailing_domain_waiting(struct store *st, int64_t mailing_id, const char *domain,
    int64_t *count);
/* Recipients of the mailing still pending or deferred that were created
 * before cutoff become "expired"; *n how many. */
int store_mailing_expire(struct store *st, int64_t mailing_id, msec_t cutoff, msec_t now,
    int64_t *n);

#endif
