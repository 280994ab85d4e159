/*
 * sim_scenario: the simulator's scenario file, parsed and checked into
 * plain configuration structs (docs/simulator.md has the format). Used by
 * sim.c only. The scenario owns everything it points to.
 */
#ifndef SLUICE_SIM_SIM_SCENARIO_H
#define SLUICE_SIM_SIM_SCENARIO_H

#include <netinet/in.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SIM_IP_MAX 64     /* textual IP address */
#define SIM_LABEL_MAX 80  /* "ip:port" */

enum sim_stage {
	SIM_STAGE_GREETING,
	SIM_STAGE_HELO,
	SIM_STAGE_MAIL,
	SIM_STAGE_RCPT,
	SIM_STAGE_DATA,
	SIM_STAGE_MESSAGE,   /* end of data */
};

const char *sim_stage_name(enum sim_stage stage);

struct sim_block {
	char ip[SIM_IP_MAX];     /* client IP */
	char mx[SIM_IP_MAX];     /* "" = every MX of the provider */
	enum sim_stage at;
	int code;
	char *text;              /* after the code; "{ip}" is the client IP */
	int64_t unblock_after_ms; /* after sim start; 0 = never */
};

struct sim_mx_addr {
	char label[SIM_LABEL_MAX]; /* "127.0.0.21:2525" */
	char ip[SIM_IP_MAX];
	struct sockaddr_storage ss;
	socklen_t sslen;
};

struct sim_provider_conf {
	char *name;
	int line;                  /* of its [provider NAME] header */
	char *hostname;            /* in greetings; default mx.NAME.sim */
	char **domains;            /* lower case */
	size_t ndomains, domains_cap;
	struct sim_mx_addr *mx;
	size_t nmx, mx_cap;
	bool has_unknown_users;
	regex_t unknown_users;
	int64_t greylist_ms;       /* 0 = off */
	int64_t rate_count;        /* 0 = off */
	int64_t rate_window_ms;
	int rate_code;             /* 450 or 421 */
	int64_t max_connections_per_ip; /* 0 = unlimited */
	struct sim_block *blocks;
	size_t nblocks, blocks_cap;
	double tempfail;           /* probability 0..1 */
	int64_t latency_ms;
	int64_t max_message;       /* bytes */
};

struct sim_scenario {
	char *record;              /* NULL = no record */
	bool record_data;
	uint64_t seed;
	int64_t idle_timeout_ms;
	int64_t max_errors;
	struct sim_provider_conf **providers;
	size_t nproviders, providers_cap;
};

/* NULL with "FILE:LINE: message" in err. */
struct sim_scenario *sim_scenario_read_file(const char *path, char *err,
    size_t errlen);
struct sim_scenario *sim_scenario_read_string(const char *text,
    const char *label, char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *sc);

#endif
