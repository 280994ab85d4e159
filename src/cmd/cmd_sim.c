/*
 * sluice sim: run the simulated providers of a scenario until SIGTERM or
 * SIGINT. A thin wrapper around src/sim/sim.h.
 */
#include "cmd/cmd_sim.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "sim/sim.h"
#include "util/log.h"

static void
cmd_sim_usage(FILE *f)
{
	fprintf(f, "usage: sluice sim -c SCENARIO [--record FILE] [--quiet]\n"
	    "Run the simulated providers of SCENARIO on their loopback addresses\n"
	    "until SIGTERM or SIGINT. See docs/simulator.md.\n");
}

static void
cmd_sim_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopbreak(arg);
}

int
cmd_sim(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "record", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *scenario = NULL, *record = NULL;
	bool quiet = false;
	struct event_base *base = NULL;
	struct event *ev_term = NULL, *ev_int = NULL;
	struct sim *sim = NULL;
	char err[1024], summary[256];
	int ch, status = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:r:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': scenario = optarg; break;
		case 'r': record = optarg; break;
		case 'q': quiet = true; break;
		case 'h': cmd_sim_usage(stdout); return 0;
		default: cmd_sim_usage(stderr); return 2;
		}
	}
	if (scenario == NULL || optind != argc) {
		cmd_sim_usage(stderr);
		return 2;
	}
	if (quiet)
		log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);

	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "sluice sim: cannot create the event loop\n");
		goto done;
	}
	sim = sim_new(base, scenario, err, sizeof(err));
	if (sim == NULL) {
		fprintf(stderr, "sluice sim: %s\n", err);
		goto done;
	}
	if (record)
		sim_set_record(sim, record);
	if (sim_start(sim, err, sizeof(err)) < 0) {
		fprintf(stderr, "sluice sim: %s\n", err);
		goto done;
	}
	ev_term = evsignal_new(base, SIGTERM, cmd_sim_signal_cb, base);
	ev_int = evsignal_new(base, SIGINT, cmd_sim_signal_cb, base);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	if (!quiet)
		printf("sluice sim: %zu providers on %zu addresses, running until "
		    "SIGTERM/SIGINT\n", sim_provider_count(sim), sim_mx_count(sim));
	fflush(stdout);
	event_base_dispatch(base);
	sim_stop(sim);
	sim_summary(sim, summary, sizeof(summary));
	printf("%s\n", summary);
	status = 0;

done:
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	sim_free(sim);
	if (base)
		event_base_free(base);
	return status;
}
