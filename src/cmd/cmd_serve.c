/*
 * sluice serve: the daemon. Reads the configuration, opens (and migrates)
 * the store, returns inflight recipients to pending, starts the engine and
 * the admin API, and runs until SIGTERM or SIGINT, when it stops pulling,
 * lets sessions finish within a bound, commits and exits 0.
 *
 *   sluice serve [-c FILE] [-n]
 */
#include "cmd/cmd_serve.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/settings.h"
#include "http/api.h"
#include "store/store.h"
#include "util/log.h"

static const char serve_usage[] =
    "usage: sluice serve [-c FILE] [-n] [--log-level LEVEL]\n"
    "\n"
    "Run the delivery daemon in the foreground; logs go to stderr as\n"
    "key=value lines. SIGTERM or SIGINT stops it cleanly.\n"
    "\n"
    "  -c, --config FILE   configuration file (default $SLUICE_CONFIG or\n"
    "                      /etc/sluice/sluice.conf; built-in defaults if the\n"
    "                      default file does not exist)\n"
    "  -n, --check         check the configuration, print \"configuration OK\"\n"
    "                      or FILE:LINE: message, and exit\n"
    "      --log-level L   trace, debug, info (default), warn or error\n"
    "  -h, --help          this text\n";

struct serve_ctx {
	struct engine *engine;
	struct event_base *base;
};

static void
serve_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct serve_ctx *ctx = arg;

	log_info("serve", "event=signal signal=%d", (int)sig);
	engine_shutdown(ctx->engine);
}

/* mkdir -p with mode 0700 for the directories sluice creates. */
static int
serve_mkdirs(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The configuration file to read: -c, $SLUICE_CONFIG, or the default if it
 * exists (NULL: built-in defaults). */
const char *
cmd_config_path(const char *given)
{
	const char *env = getenv("SLUICE_CONFIG");
	struct stat sb;

	if (given)
		return given;
	if (env && *env)
		return env;
	if (stat("/etc/sluice/sluice.conf", &sb) == 0)
		return "/etc/sluice/sluice.conf";
	return NULL;
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *level = NULL;
	bool check = false;
	struct settings cfg;
	char err[1024];
	struct store *st = NULL;
	struct serve_ctx ctx = { 0 };
	struct api *api = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'n': check = true; break;
		case 'L': level = optarg; break;
		case 'h': fputs(serve_usage, stdout); return 0;
		default: fputs(serve_usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice: serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	config = cmd_config_path(config);
	settings_defaults(&cfg);
	if (config && settings_load(&cfg, config, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		settings_fini(&cfg);
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		settings_fini(&cfg);
		return 0;
	}
	if (level == NULL)
		level = cfg.log_level;
	if (log_level_parse(level) < 0) {
		fprintf(stderr, "sluice: serve: unknown log level '%s'\n", level);
		goto out;
	}
	log_set_level((enum log_level)log_level_parse(level));
	signal(SIGPIPE, SIG_IGN);
	if (serve_mkdirs(cfg.data_dir) < 0) {
		fprintf(stderr, "sluice: cannot create data directory %s: %s\n",
		    cfg.data_dir, strerror(errno));
		goto out;
	}
	st = store_open(cfg.database, false, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	evthread_use_pthreads();
	ctx.base = event_base_new();
	if (ctx.base == NULL) {
		fprintf(stderr, "sluice: cannot create the event loop\n");
		goto out;
	}
	ctx.engine = engine_new(&cfg, st, ctx.base);
	if (ctx.engine == NULL) {
		fprintf(stderr, "sluice: cannot start the engine (see log)\n");
		goto out;
	}
	api = api_new(&cfg, ctx.engine, err, sizeof(err));
	if (api == NULL) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	sigterm = evsignal_new(ctx.base, SIGTERM, serve_signal_cb, &ctx);
	sigint = evsignal_new(ctx.base, SIGINT, serve_signal_cb, &ctx);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	if (engine_start(ctx.engine) < 0)
		goto out;
	log_info("serve", "event=started database=%s admin=%s port=%d pid=%ld",
	    cfg.database, cfg.admin_listen, api_port(api), (long)getpid());
	event_base_dispatch(ctx.base);
	rc = engine_failed(ctx.engine) ? 1 : 0;
out:
	/* The API goes first: it may be waiting in engine_call. */
	api_free(api);
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	engine_free(ctx.engine);
	if (ctx.base)
		event_base_free(ctx.base);
	store_free(st);
	settings_fini(&cfg);
	return rc;
}
