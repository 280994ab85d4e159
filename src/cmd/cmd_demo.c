/*
 * sluice demo: the self-contained demonstration of DESIGN section 7. Starts
 * `sluice sim` with simulated providers on loopback addresses and `sluice
 * serve` on a temporary SQLite database, then drives them with the same CLI
 * an operator uses (each command is printed before it runs): a three-IP
 * stream, routes to the simulated providers, a list of thousands of members,
 * a mailing sent with live progress, then the streams report; one provider
 * blocks one of the IPs and lifts the block later, so the demo shows the
 * block found, routed around, probed and released. It leaves the API
 * address on screen and stops both daemons cleanly on Ctrl-C.
 */
#include "cmd/cmd_demo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/client.h"
#include "engine/settings.h"
#include "util/str.h"

static const char demo_usage[] =
    "usage: sluice demo [--members N] [--keep] [--no-wait]\n"
    "\n"
    "Run the demonstration: simulated providers on 127.0.0.21-25, the daemon\n"
    "on a temporary database, a three-IP stream (127.0.0.11-13), a list of N\n"
    "members and one mailing sent with live progress.\n"
    "\n"
    "  --members N   list size (default 3000, at most 1000000)\n"
    "  --keep        keep the temporary directory (config, database, logs)\n"
    "  --no-wait     stop when the mailing is done instead of waiting for Ctrl-C\n"
    "  -h, --help    this text\n";

static volatile sig_atomic_t demo_interrupted;

static void
demo_on_signal(int sig)
{
	demo_interrupted = 1;
}

static char demo_self[4096];

static int
demo_write(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	if (f == NULL) {
		fprintf(stderr, "sluice: demo: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) == 0 ? 0 : -1;
}

static int
demo_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* execv of our own binary with a const argument vector. */
static void
demo_exec(const char *const argv[])
{
	execv(demo_self, (char *const *)(uintptr_t)argv);
	_exit(127);
}

/* Start `sluice ARGS...` with stdout and stderr to logpath (NULL: inherit). */
static pid_t
demo_spawn(const char *logpath, const char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		if (logpath) {
			FILE *f = freopen(logpath, "a", stderr);
			if (f == NULL || dup2(fileno(stderr), 1) < 0)
				_exit(127);
		}
		signal(SIGINT, SIG_IGN); /* the demo stops its daemons itself */
		demo_exec(argv);
	}
	return pid;
}

/* Run `sluice ARGS...` in the foreground, printed first; its exit status. */
static int
demo_run(const char *first, ...)
{
	const char *argv[32];
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	argv[argc++] = "sluice";
	argv[argc++] = first;
	va_start(ap, first);
	while (argc < 31 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	printf("\n\033[1m$");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\033[0m\n");
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		demo_exec(argv);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
demo_stop(pid_t pid, const char *what)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 150; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	fprintf(stderr, "sluice: demo: %s did not stop in 15 s; killing it\n", what);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int
demo_wait_ready(pid_t serve, const char *conf)
{
	for (int i = 0; i < 100 && !demo_interrupted; i++) {
		int status;
		pid_t pid;
		if (waitpid(serve, &status, WNOHANG) == serve)
			return -1;
		pid = fork();
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
			execl(demo_self, "sluice", "stream", "list", "-c", conf, (char *)NULL);
			_exit(127);
		}
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

/* Standing blocks, through the API; -1 if the daemon does not answer. */
static int
demo_standing_blocks(const char *conf)
{
	struct settings cfg;
	char err[512];
	json_t *out = NULL;
	int n = -1;

	settings_defaults(&cfg);
	if (settings_load(&cfg, conf, err, sizeof(err)) == 0 &&
	    client_call(&cfg, "GET", "/api/v1/blocks", NULL, 0, NULL, &out, err,
	    sizeof(err)) == 0)
		n = (int)json_array_size(json_object_get(out, "blocks"));
	json_decref(out);
	settings_fini(&cfg);
	return n;
}

/* Wait (at most a minute) for the probes to release every block. */
static void
demo_wait_release(const char *conf)
{
	int n = demo_standing_blocks(conf);

	if (n <= 0)
		return;
	printf("\n%d block(s) standing; the daemon probes them every 5 s "
	    "(the provider lifts its block 20 s after it started)...\n", n);
	fflush(stdout);
	for (int i = 0; i < 60 && !demo_interrupted; i++) {
		sleep(1);
		if ((n = demo_standing_blocks(conf)) == 0) {
			printf("every block released by a probe\n");
			return;
		}
	}
}

static const char *const demo_domains[] = {
	"inbox.test", "mail.inbox.test", "blockmail.test", "greylist.test",
	"ratelimit.test", "unknown.test",
};

static int
demo_members(const char *path, long n)
{
	FILE *f = fopen(path, "w");
	static const char *const first[] = { "Ada", "Grace", "Alan", "Edsger",
		"Barbara", "Donald", "Frances", "Ken", "Radia", "Dennis" };

	if (f == NULL)
		return -1;
	fprintf(f, "email,name,kind\n");
	for (long i = 0; i < n; i++) {
		const char *d = demo_domains[i % 6];
		/* one member in twenty at unknown.test does not exist there */
		const char *local = (i % 6 == 5 && i % 20 == 5) ? "nobody" : "member";
		fprintf(f, "%s%ld@%s,%s %ld,%s\n", local, i, d, first[i % 10], i,
		    i % 97 == 0 ? "digest" : "normal");
	}
	return fclose(f);
}

int
cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "members", required_argument, NULL, 'm' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[] = "/tmp/sluice-demo-XXXXXX";
	char conf[256], scen[256], csv[256], msg[256], slog[256], simlog[256],
	    record[256], nmembers[32];
	int64_t members = 3000;
	bool keep = false, nowait = false;
	pid_t sim = -1, serve = -1;
	int c, port, rc = 1;
	ssize_t n;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (str_to_i64(optarg, 1, 1000000, &members) < 0) {
				fprintf(stderr, "sluice: demo: --members takes 1 to 1000000\n");
				return 2;
			}
			break;
		case 'k': keep = true; break;
		case 'W': nowait = true; break;
		case 'h': fputs(demo_usage, stdout); return 0;
		default: fputs(demo_usage, stderr); return 2;
		}
	}
	n = readlink("/proc/self/exe", demo_self, sizeof(demo_self) - 1);
	if (n <= 0) {
		fprintf(stderr, "sluice: demo: cannot find my own executable\n");
		return 1;
	}
	demo_self[n] = '\0';
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "sluice: demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(conf, sizeof(conf), "%s/sluice.conf", dir);
	snprintf(scen, sizeof(scen), "%s/providers.conf", dir);
	snprintf(csv, sizeof(csv), "%s/members.csv", dir);
	snprintf(msg, sizeof(msg), "%s/message.eml", dir);
	snprintf(slog, sizeof(slog), "%s/serve.log", dir);
	snprintf(simlog, sizeof(simlog), "%s/sim.log", dir);
	snprintf(record, sizeof(record), "%s/received.jsonl", dir);
	snprintf(nmembers, sizeof(nmembers), "%lld", (long long)members);
	port = demo_free_port();
	if (port < 0)
		goto out;
	if (demo_write(conf,
	    "# written by `sluice demo`\n"
	    "[server]\ndata_dir = %s\nhostname = demo.sluice.test\n\n"
	    "[admin]\nlisten = 127.0.0.1:%d\n\n"
	    "[delivery]\nbounce_domain = bounces.demo.sluice.test\n"
	    "retry_schedule = 5s, 10s, 20s\nmax_age = 10m\nidle = 2s\n\n"
	    "[blocks]\nprobe_interval = 5s\n\n"
	    "[timeouts]\nconnect = 5s\ngreeting = 10s\n",
	    dir, port) < 0)
		goto out;
	if (demo_write(scen,
	    "# written by `sluice demo`: five simulated providers\n"
	    "[sim]\nrecord = %s\nseed = 7\n\n"
	    "[provider inbox]\ndomains = inbox.test, mail.inbox.test\n"
	    "mx = 127.0.0.21:2525, 127.0.0.22:2525\nlatency_ms = 2\n\n"
	    "[provider blockmail]\ndomains = blockmail.test\nmx = 127.0.0.23:2525\n"
	    "block = 127.0.0.12 at=rcpt unblock_after=20 text=\"554 5.7.1 Service unavailable; Client host [127.0.0.12] blocked using zen.spamhaus.org\"\n\n"
	    "[provider greylist]\ndomains = greylist.test\nmx = 127.0.0.24:2525\ngreylist = 5\n\n"
	    "[provider ratelimit]\ndomains = ratelimit.test\nmx = 127.0.0.25:2525\nrate_limit = 100/5\n\n"
	    "[provider unknown]\ndomains = unknown.test\nmx = 127.0.0.26:2525\n"
	    "unknown_users = ^nobody\n",
	    record) < 0)
		goto out;
	if (demo_members(csv, (long)members) < 0)
		goto out;
	if (demo_write(msg,
	    "From: Demo List <news@demo.sluice.test>\n"
	    "To: {{name}} <{{email}}>\n"
	    "Subject: Hello {{name}}, this is the sluice demo\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "\n"
	    "Dear {{name}},\n\n"
	    "this message was personalised for {{email}} at {{domain}} and\n"
	    "delivered by sluice over a three-IP mail stream.\n") < 0)
		goto out;

	signal(SIGINT, demo_on_signal);
	signal(SIGTERM, demo_on_signal);
	setenv("SLUICE_CONFIG", conf, 1);
	printf("sluice demo: working directory %s\n", dir);
	printf("  simulated providers: inbox.test (2 MX), blockmail.test (blocks 127.0.0.12),\n"
	       "  greylist.test (greylists 5 s), ratelimit.test (100 per 5 s per IP),\n"
	       "  unknown.test (rejects unknown users)\n");
	{
		const char *args[] = { "sluice", "sim", "-c", scen, NULL };
		sim = demo_spawn(simlog, args);
	}
	{
		const char *args[] = { "sluice", "serve", "-c", conf, NULL };
		serve = demo_spawn(slog, args);
	}
	if (sim < 0 || serve < 0 || demo_wait_ready(serve, conf) < 0) {
		fprintf(stderr, "sluice: demo: the daemon did not start; see %s\n", slog);
		keep = true;
		goto out;
	}
	printf("daemon up: admin API on http://127.0.0.1:%d/api/v1/ (log: %s)\n", port,
	    slog);
	if (demo_run("stream", "add", "demo", "--ip", "127.0.0.11=mta1.demo.sluice.test",
	    "--ip", "127.0.0.12=mta2.demo.sluice.test", "--ip",
	    "127.0.0.13=mta3.demo.sluice.test", NULL) != 0 ||
	    demo_run("route", "set", "inbox.test", "127.0.0.21:2525", "127.0.0.22:2525",
	    NULL) != 0 ||
	    demo_run("route", "set", "mail.inbox.test", "127.0.0.21:2525",
	    "127.0.0.22:2525", NULL) != 0 ||
	    demo_run("route", "set", "blockmail.test", "127.0.0.23:2525", NULL) != 0 ||
	    demo_run("route", "set", "greylist.test", "127.0.0.24:2525", NULL) != 0 ||
	    demo_run("route", "set", "ratelimit.test", "127.0.0.25:2525", NULL) != 0 ||
	    demo_run("route", "set", "unknown.test", "127.0.0.26:2525", NULL) != 0 ||
	    demo_run("limit", "add", "--target", "greylist.test", "--greylist-interval",
	    "6", "--greylist-function", "double", "--greylist-max", "30", NULL) != 0 ||
	    demo_run("limit", "add", "--target", "ratelimit.test", "--simultaneous", "6",
	    NULL) != 0 ||
	    demo_run("list", "create", "demo-list", "--from", "news@demo.sluice.test",
	    "--stream", "demo", NULL) != 0 ||
	    demo_run("member", "import", "demo-list", csv, NULL) != 0 ||
	    demo_run("mailing", "send", "demo-list", msg, "--wait", NULL) != 0) {
		fprintf(stderr, "sluice: demo: a step failed; see %s\n", slog);
		keep = true;
		goto out;
	}
	demo_run("report", "streams", NULL);
	/* The block blockmail.test put on 127.0.0.12: found, routed around,
	 * probed every 5 s, released by a probe once the provider lifted it. */
	demo_run("blocks", NULL);
	demo_wait_release(conf);
	demo_run("blocks", "--released", NULL);
	/* Greylisting: retried from the same IP after the limit's 6 s. */
	demo_run("explain", "member3@greylist.test", "--mailing", "1", NULL);
	demo_run("limit", "list", NULL);
	rc = 0;
	printf("\nAdmin API: http://127.0.0.1:%d/api/v1/ (bearer token in %s/admin.token)\n",
	    port, dir);
	if (!nowait && isatty(0)) {
		printf("The daemon is still running: try `SLUICE_CONFIG=%s sluice report streams`.\n"
		       "Press Ctrl-C to stop.\n", conf);
		fflush(stdout);
		while (!demo_interrupted)
			pause();
	}
out:
	printf("\nstopping the daemon and the simulator...\n");
	demo_stop(serve, "sluice serve");
	demo_stop(sim, "sluice sim");
	if (!keep) {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("rm", "rm", "-rf", dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	} else {
		printf("kept %s\n", dir);
	}
	return rc;
}
