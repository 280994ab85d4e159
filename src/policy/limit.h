/*
 * limit: domain connection limits (DESIGN 5.3). Pure: no I/O, `now` passed
 * in, times in msec_t.
 *
 * A limit has a source (optional) and a target (required) and any of:
 * messages per hour, connections per hour, simultaneous connections
 * (1..100), messages per connection, and a greylist retry strategy.
 *
 *   source  ""               every sender
 *           example.com      mail whose sender (the list's From) domain is
 *                            example.com or a subdomain
 *           $macro           sender domain in the macro's domain set
 *           stream:NAME      sessions from the stream's IPs
 *           192.0.2.11       sessions from that source IP
 *   target  example.com      recipient domain example.com or a subdomain
 *           $macro           recipient domain in the set (or a subdomain)
 *           mx:*.yahoodns.net  MX host name matching the pattern ('*'
 *                            matches any run of characters, case-blind)
 *           mx:192.0.2.25    that MX IP address
 *
 * Each limit is ONE budget, shared by everything it matches: a $domainset
 * target shares one budget across its domains, a stream: source across the
 * stream's IPs, a blank source across every sender. Every matching limit
 * applies at once, so the most restrictive wins. Rates are smooth (GCRA with
 * no burst): 12 per hour admits one every 5 minutes.
 *
 * The server default (not a limit in the set): `dflt` simultaneous
 * connections per (source IP, MX IP) pair, used when no matching limit sets
 * simultaneous; an explicit simultaneous limit replaces it for its target.
 *
 * Budgets carry state (open connections, next admission times). The engine
 * builds a new set when limits or macros change and carries the state of
 * limits that survive (same id) with limitset_carry().
 *
 * The adaptive window (struct limit_window) is the reaction to rate_limited
 * replies: it halves the concurrency allowed on a pair and lets it grow back
 * by one for every `cap` successful deliveries.
 */
#ifndef SLUICE_POLICY_LIMIT_H
#define SLUICE_POLICY_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/retry.h"
#include "util/timeutil.h"

#define LIMIT_SIMULTANEOUS_MAX 100
#define LIMIT_MATCH_MAX 32      /* most limits that can match one context */

/* A limit as configured (values 0 / "" mean blank). */
struct limit_spec {
	int64_t id;
	const char *source;
	const char *target;
	int64_t messages_per_hour;
	int64_t connections_per_hour;
	int64_t simultaneous;
	int64_t messages_per_connection;
	int64_t greylist_interval;   /* seconds; 0: 240 */
	const char *greylist_function; /* NULL/"" | same | double | square */
	int64_t greylist_max;        /* seconds; 0: no cap */
};

/* What a session or a message is about. Any field may be NULL/"" when not
 * known yet (e.g. no MX host for a static route given as an IP). */
struct limit_ctx {
	const char *source_ip;
	const char *stream;
	const char *sender_domain;
	const char *rcpt_domain;
	const char *mx_host;
	const char *mx_ip;
};

struct limitset;

struct limitset *limitset_new(void);
void limitset_free(struct limitset *ls);
/* Define $name (without '$') as a domain set; replaces a previous one. */
int limitset_macro(struct limitset *ls, const char *name, const char *const *domains,
    size_t n);
/*
 * Validate and add a limit. Errors (-1, message in err): empty target,
 * unknown macro, bad mx: pattern, simultaneous outside 1..100, negative
 * values, unknown greylist function. Macros must be defined first.
 */
int limitset_add(struct limitset *ls, const struct limit_spec *spec, char *err,
    size_t errlen);
/* Validation only, as limitset_add would do it (for the API). */
int limit_spec_check(const struct limit_spec *spec, char *err, size_t errlen);
size_t limitset_count(const struct limitset *ls);
/* Copy the budget state of every limit of `from` whose id is also in ls. */
void limitset_carry(struct limitset *ls, const struct limitset *from);

/*
 * The ids of the limits matching ctx, in ascending id order, into ids (at
 * most LIMIT_MATCH_MAX). Returns how many.
 */
size_t limitset_match(const struct limitset *ls, const struct limit_ctx *ctx,
    int64_t *ids);

/* The answer of an admission check. */
struct limit_verdict {
	bool ok;
	msec_t retry_at;     /* when !ok: the earliest time it may become ok
	                      * (0: when a connection closes) */
	int64_t limit_id;    /* when !ok: the limit that holds (0: the default) */
	char why[160];       /* when !ok: e.g. "limit 3 (gmail.com): 20 of 20
	                      * simultaneous connections" */
};

/*
 * May a new session open, counted against the limits ids (n of them) and,
 * if none of them sets simultaneous, against the pair default: pair_open
 * sessions already open on its (source IP, MX IP) pair, at most dflt.
 */
void limitset_may_connect(const struct limitset *ls, const int64_t *ids, size_t n,
    int pair_open, int dflt, msec_t now, struct limit_verdict *v);
/* A session opened / closed, counted against ids. */
void limitset_connected(struct limitset *ls, const int64_t *ids, size_t n, msec_t now);
void limitset_disconnected(struct limitset *ls, const int64_t *ids, size_t n);
/* May one more message go out now under messages per hour. */
void limitset_may_send(const struct limitset *ls, const int64_t *ids, size_t n,
    msec_t now, struct limit_verdict *v);
void limitset_sent(struct limitset *ls, const int64_t *ids, size_t n, msec_t now);
/* The smallest messages-per-connection of ids (0: unlimited). */
int64_t limitset_messages_per_connection(const struct limitset *ls, const int64_t *ids,
    size_t n);
/*
 * The greylist strategy for ids: of the limits that set one, the one whose
 * n-th retry waits longest (most restrictive); none: *g = dflt. Returns the
 * id used, 0 for the default.
 */
int64_t limitset_greylist(const struct limitset *ls, const int64_t *ids, size_t n,
    const struct retry_greylist *dflt, struct retry_greylist *g);
/* JSON-free description of a limit for explanations: "limit 3 (source ->
 * target)". */
const char *limitset_describe(const struct limitset *ls, int64_t id, char *out,
    size_t n);

/* Does a domain match a target domain (itself or a subdomain)? */
bool limit_domain_matches(const char *domain, const char *target);
/* Case-blind glob with '*' only. */
bool limit_glob_matches(const char *pattern, const char *s);

/* ---- adaptive window after rate_limited replies ---------------------- */

#define LIMIT_PAUSE_MIN_MS 1000
#define LIMIT_PAUSE_MAX_MS 300000

struct limit_window {
	int cap;         /* 0: no reduction in force */
	int successes;   /* since the last change */
	msec_t since;    /* when the reduction began */
	int strikes;     /* rate_limited replies in a row */
	msec_t paused_until; /* no new transaction on the pair before this */
};

/* A rate_limited reply on a pair with `open` sessions: cap becomes
 * max(1, open / 2) (or half the current cap, whichever is lower), and the
 * pair pauses: 1 s after the first reply in a row, doubling with each
 * further one, 5 min at most. A success ends the run of replies. */
void limit_window_backoff(struct limit_window *w, int open, msec_t now);
/* A successful delivery: after `cap` successes the cap grows by one; when
 * it reaches ceiling the reduction ends (cap 0). */
void limit_window_success(struct limit_window *w, int ceiling);
/* Is the pair paused after rate_limited replies? */
bool limit_window_is_paused(const struct limit_window *w, msec_t now);
/* The concurrency allowed: ceiling when no reduction, else min(cap, ceiling). */
int limit_window_allowed(const struct limit_window *w, int ceiling);

#endif
