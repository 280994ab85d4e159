/*
 * sim: simulated destination mail providers on loopback addresses, for the
 * demo, the integration tests and the benchmarks.
 *
 * A scenario file (docs/simulator.md) describes providers: the domains they
 * accept mail for, their MX listening addresses, and how they push back:
 * unknown users, greylisting, rate limits, connection limits, blocks of
 * client IPs, random temporary failures and reply latency. Each MX address
 * runs smtps sessions whose replies the provider's policy decides.
 *
 * Everything that happens is written to the record, a JSON-lines file
 * (connections, rejections, accepted messages, a final summary), and kept
 * in live counters (concurrent connections per client IP and per MX, with
 * peaks).
 *
 * Threading: a sim runs on one event base and all calls except the counter
 * accessors must come from that base's thread. The accessors (sim_counters,
 * sim_client_counters, sim_mx_counters, sim_summary) may be called from any
 * thread.
 *
 * Ownership: the sim owns its listeners, sessions and record file; the
 * caller owns the event base, which must outlive the sim.
 */
#ifndef SLUICE_SIM_SIM_H
#define SLUICE_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct sim;

struct sim_counters {
	uint64_t connections;      /* accepted TCP connections */
	uint64_t messages;         /* accepted messages */
	uint64_t recipients;       /* recipients of accepted messages */
	uint64_t rejections;       /* 4xx/5xx replies decided by policy */
	unsigned concurrent;       /* connections open now */
	unsigned peak_concurrent;
};

/* Per client IP (across all providers) or per MX address. */
struct sim_peer_counters {
	uint64_t connections;
	uint64_t messages;
	unsigned concurrent;
	unsigned peak;
};

/* Load a scenario; NULL with "FILE:LINE: message" in err. */
struct sim *sim_new(struct event_base *base, const char *path, char *err,
    size_t errlen);
/* The same from a string; label stands for the file name in messages. */
struct sim *sim_new_string(struct event_base *base, const char *text,
    const char *label, char *err, size_t errlen);
/* Override the scenario's record file (before sim_start); NULL = none. */
void sim_set_record(struct sim *sim, const char *path);

/* Open the record and bind every MX address. 0, or -1 with err set (and
 * nothing left open). */
int sim_start(struct sim *sim, char *err, size_t errlen);
/* Close listeners and sessions, write the summary record and close the
 * record file. Idempotent. */
void sim_stop(struct sim *sim);
/* Stops if needed. NULL is fine. */
void sim_free(struct sim *sim);

void sim_counters(struct sim *sim, struct sim_counters *out);
/* 0, or -1 if that client IP / MX ("ip:port") was never seen. */
int sim_client_counters(struct sim *sim, const char *client_ip,
    struct sim_peer_counters *out);
int sim_mx_counters(struct sim *sim, const char *mx, struct sim_peer_counters *out);
/* One line: "sim: connections=N messages=N recipients=N rejections=N
 * peak_concurrent=N". */
void sim_summary(struct sim *sim, char *out, size_t n);

/* Number of providers and MX addresses in the scenario. */
size_t sim_provider_count(const struct sim *sim);
size_t sim_mx_count(const struct sim *sim);

#endif
