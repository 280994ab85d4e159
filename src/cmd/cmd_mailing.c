/*
 * cmd_mailing.c: `sluice mailing send|show|list|pause|resume|cancel`, and
 * the live progress of `mailing send --wait`.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define CMD_MESSAGE_MAX ((size_t)64 << 20)
#define CMD_POLL_MS 500
#define CMD_PLAIN_EVERY_MS 5000 /* progress line when not on a terminal */
#define CMD_RATE_SAMPLES 10     /* the rate is over the last 5 s */
#define CMD_BAR_WIDTH 20

static volatile sig_atomic_t cmd_interrupted;

static void
cmd_on_sigint(int sig)
{
	cmd_interrupted = 1;
}

static long long
cmd_count(json_t *m, const char *key)
{
	return cmd_int(json_object_get(m, "counts"), key);
}

/* Recipients with an outcome (nothing more will happen to them). */
static long long
cmd_finished(json_t *m)
{
	return cmd_count(m, "sent") + cmd_count(m, "failed") +
	    cmd_count(m, "expired") + cmd_count(m, "skipped") +
	    cmd_count(m, "suppressed");
}

static bool
cmd_is_terminal_state(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "cancelled") == 0;
}

static void
cmd_progress_line(json_t *m, double rate, bool tty)
{
	long long total = cmd_count(m, "total"), fin = cmd_finished(m);
	int pct = total > 0 ? (int)(fin * 100 / total) : 100;
	int fill = total > 0 ? (int)(fin * CMD_BAR_WIDTH / total) : CMD_BAR_WIDTH;
	char bar[CMD_BAR_WIDTH + 1];
	const char *state = cmd_str(m, "state");

	for (int i = 0; i < CMD_BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[CMD_BAR_WIDTH] = '\0';
	printf("%s[%s] %3d%%  sent %lld  deferred %lld  failed %lld  skipped %lld"
	    "  pending %lld  %.0f msg/s%s%s%s", tty ? "\r" : "", bar, pct,
	    cmd_count(m, "sent"), cmd_count(m, "deferred"), cmd_count(m, "failed"),
	    cmd_count(m, "skipped"),
	    cmd_count(m, "pending") + cmd_count(m, "inflight"), rate,
	    strcmp(state, "paused") == 0 ? "  (paused)" : "",
	    tty ? "\033[K" : "", tty ? "" : "\n");
	fflush(stdout);
}

static void
cmd_summary(json_t *m, int64_t id, msec_t elapsed)
{
	printf("mailing %" PRId64 " %s after %.1f s: %lld recipients, sent %lld, "
	    "failed %lld, expired %lld, skipped %lld, suppressed %lld",
	    id, cmd_str(m, "state"), (double)elapsed / 1000.0,
	    cmd_count(m, "total"), cmd_count(m, "sent"), cmd_count(m, "failed"),
	    cmd_count(m, "expired"), cmd_count(m, "skipped"),
	    cmd_count(m, "suppressed"));
	if (cmd_count(m, "deferred") + cmd_count(m, "pending") > 0)
		printf(", not delivered %lld", cmd_count(m, "deferred") +
		    cmd_count(m, "pending") + cmd_count(m, "inflight"));
	printf("\n");
}

/*
 * Poll the mailing until it is done or cancelled, showing progress (not
 * with --json). Exit status: 0 done, 1 cancelled or error, 130 when
 * Ctrl-C stopped the waiting (the mailing goes on).
 */
static int
cmd_wait(struct cmd_ctx *c, int64_t id)
{
	struct sigaction sa, old;
	msec_t started = time_mono_ms(), last_plain = 0;
	msec_t st[CMD_RATE_SAMPLES];
	long long sv[CMD_RATE_SAMPLES];
	size_t ns = 0;
	bool tty = !c->json && isatty(STDOUT_FILENO);
	char path[64], last_state[32] = "";
	json_t *m = NULL;
	int rc = 1;

	snprintf(path, sizeof(path), "/api/v1/mailings/%" PRId64, id);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cmd_on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	cmd_interrupted = 0;
	if (!c->json)
		printf("waiting for mailing %" PRId64 " (Ctrl-C stops waiting, not "
		    "the mailing)\n", id);

	for (;;) {
		struct timespec ts = { CMD_POLL_MS / 1000,
			(CMD_POLL_MS % 1000) * 1000000L };
		msec_t now;
		long long moved;
		double rate = 0;
		const char *state;

		json_decref(m);
		m = NULL;
		if (cmd_call(c, "GET", path, NULL, 0, NULL, &m) != 0)
			goto out;
		now = time_mono_ms();
		moved = cmd_count(m, "sent") + cmd_count(m, "failed");
		if (ns == CMD_RATE_SAMPLES) {
			memmove(st, st + 1, sizeof(st[0]) * (ns - 1));
			memmove(sv, sv + 1, sizeof(sv[0]) * (ns - 1));
			ns--;
		}
		st[ns] = now;
		sv[ns++] = moved;
		if (ns > 1 && st[ns - 1] > st[0])
			rate = (double)(sv[ns - 1] - sv[0]) * 1000.0 /
			    (double)(st[ns - 1] - st[0]);
		state = cmd_str(m, "state");
		if (!c->json) {
			if (tty) {
				cmd_progress_line(m, rate, true);
			} else if (now - last_plain >= CMD_PLAIN_EVERY_MS ||
			    strcmp(state, last_state) != 0 ||
			    cmd_is_terminal_state(state)) {
				cmd_progress_line(m, rate, false);
				last_plain = now;
			}
		}
		str_copy(last_state, state, sizeof(last_state));
		if (cmd_is_terminal_state(state))
			break;
		if (cmd_interrupted)
			break;
		nanosleep(&ts, NULL);
		if (cmd_interrupted)
			break;
	}
	if (tty)
		printf("\n");
	if (cmd_interrupted && !cmd_is_terminal_state(last_state)) {
		rc = 130;
		cmd_fail("stopped waiting; mailing %" PRId64 " goes on (`sluice "
		    "mailing show %" PRId64 "`, `sluice mailing cancel %" PRId64 "`)",
		    id, id, id);
		goto out;
	}
	if (c->json)
		cmd_print_json(m);
	else
		cmd_summary(m, id, time_mono_ms() - started);
	rc = strcmp(last_state, "done") == 0 ? 0 : 1;
out:
	sigaction(SIGINT, &old, NULL);
	json_decref(m);
	return rc;
}

static int
cmd_mailing_send(struct cmd_ctx *c)
{
	const char *seg = cmd_opt(c, "--segment"), *stream = cmd_opt(c, "--stream");
	json_t *out = NULL;
	struct buf msg, path;
	char *e;
	int64_t id;
	int rc = 1;

	buf_init(&path, 4096);
	if (cmd_read_file(c->pos[1], CMD_MESSAGE_MAX, &msg) != 0)
		goto out;
	e = client_escape(c->pos[0]);
	buf_printf(&path, "/api/v1/mailings?list=%s", e);
	free(e);
	if (seg != NULL) {
		e = client_escape(seg);
		buf_printf(&path, "&segment=%s", e);
		free(e);
	}
	if (stream != NULL) {
		e = client_escape(stream);
		buf_printf(&path, "&stream=%s", e);
		free(e);
	}
	if (cmd_call(c, "POST", path.data, msg.data ? msg.data : "", msg.len,
	    "message/rfc822", &out) != 0)
		goto out;
	id = (int64_t)cmd_int(out, "id");
	if (cmd_opt(c, "--wait") != NULL) {
		if (!c->json)
			printf("mailing %" PRId64 " queued: list %s, stream %s, %lld "
			    "recipients\n", id, c->pos[0], cmd_str(out, "stream"),
			    cmd_count(out, "total"));
		rc = cmd_wait(c, id);
		goto out;
	}
	if (c->json)
		cmd_print_json(out);
	else
		printf("mailing %" PRId64 " queued: list %s, stream %s, %lld "
		    "recipients\n", id, c->pos[0], cmd_str(out, "stream"),
		    cmd_count(out, "total"));
	rc = 0;
out:
	json_decref(out);
	buf_fini(&msg);
	buf_fini(&path);
	return rc;
}

static int
cmd_id(const char *s, int64_t *id)
{
	if (str_to_i64(s, 1, INT64_MAX, id) < 0)
		return cmd_fail("\"%s\" is not a mailing id", s);
	return 0;
}

static int
cmd_mailing_show(struct cmd_ctx *c)
{
	char path[64], when[40];
	json_t *m = NULL;
	int64_t id;

	if (cmd_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/mailings/%" PRId64, id);
	if (cmd_call(c, "GET", path, NULL, 0, NULL, &m) != 0) {
		json_decref(m);
		return 1;
	}
	if (c->json) {
		cmd_print_json(m);
		json_decref(m);
		return 0;
	}
	printf("mailing     %" PRId64 "\n", id);
	printf("list        %s\n", cmd_str(m, "list"));
	printf("segment     %s\n", *cmd_str(m, "segment") ? cmd_str(m, "segment") :
	    "-");
	printf("stream      %s\n", cmd_str(m, "stream"));
	printf("state       %s\n", cmd_str(m, "state"));
	printf("created     %s\n", cmd_time(json_object_get(m, "created"), when,
	    sizeof(when)));
	printf("finished    %s\n", cmd_time(json_object_get(m, "finished"), when,
	    sizeof(when)));
	printf("message     %lld bytes\n", cmd_int(m, "message_size"));
	printf("recipients  %lld\n", cmd_count(m, "total"));
	static const char *const keys[] = { "sent", "deferred", "failed",
		"expired", "skipped", "suppressed", "pending", "inflight" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		printf("  %-10s %lld\n", keys[i], cmd_count(m, keys[i]));
	cmd_block_print_waiting(m);
	json_decref(m);
	return 0;
}

static int
cmd_mailing_list(struct cmd_ctx *c)
{
	static const char *const head[] = { "ID", "LIST", "SEGMENT", "STREAM",
		"STATE", "CREATED", "TOTAL", "SENT", "DEFERRED", "FAILED", "PENDING" };
	int64_t limit = 50;
	char path[64];
	json_t *out = NULL, *m;
	struct cmd_table *t;
	size_t i;
	int rc;

	if (cmd_opt_int(c, "--limit", 1, 10000, &limit) < 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/mailings?limit=%" PRId64, limit);
	if ((out = cmd_get_listing(c, path, &rc)) == NULL)
		return rc;
	t = cmd_table_new(11, head);
	for (size_t col = 6; col < 11; col++)
		cmd_table_right(t, col);
	json_array_foreach(json_object_get(out, "mailings"), i, m) {
		char id[24], when[40], n[5][24];
		static const char *const keys[] = { "total", "sent", "deferred",
			"failed", "pending" };
		snprintf(id, sizeof(id), "%lld", cmd_int(m, "id"));
		for (size_t k = 0; k < 5; k++)
			snprintf(n[k], sizeof(n[k]), "%lld", cmd_count(m, keys[k]) +
			    (k == 4 ? cmd_count(m, "inflight") : 0));
		const char *row[] = { id, cmd_str(m, "list"),
			*cmd_str(m, "segment") ? cmd_str(m, "segment") : "-",
			cmd_str(m, "stream"), cmd_str(m, "state"),
			cmd_time(json_object_get(m, "created"), when, sizeof(when)),
			n[0], n[1], n[2], n[3], n[4] };
		cmd_table_add(t, row);
	}
	cmd_table_done(t, "no mailings yet");
	json_decref(out);
	return 0;
}

static int
cmd_mailing_state(struct cmd_ctx *c, const char *verb)
{
	char path[96];
	json_t *m = NULL;
	int64_t id;

	if (cmd_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/mailings/%" PRId64 "/%s", id, verb);
	if (cmd_call(c, "POST", path, NULL, 0, NULL, &m) != 0) {
		json_decref(m);
		return 1;
	}
	if (c->json)
		cmd_print_json(m);
	else
		printf("mailing %" PRId64 " is now %s\n", id, cmd_str(m, "state"));
	json_decref(m);
	return 0;
}

static int
cmd_mailing_pause(struct cmd_ctx *c)
{
	return cmd_mailing_state(c, "pause");
}

static int
cmd_mailing_resume(struct cmd_ctx *c)
{
	return cmd_mailing_state(c, "resume");
}

static int
cmd_mailing_cancel(struct cmd_ctx *c)
{
	return cmd_mailing_state(c, "cancel");
}

static const struct cmd_opt cmd_send_opts[] = {
	{ "--segment", "S", "send only to the list's segment S", false },
	{ "--stream", "S", "send from mail stream S (default: the segment's, "
	    "list's, site's, else \"default\")", false },
	{ "--wait", NULL, "show progress until the mailing is done (exit 1 if "
	    "it is cancelled); Ctrl-C stops waiting, not the mailing", false },
	{ NULL, NULL, NULL, false },
};

static const struct cmd_opt cmd_mlist_opts[] = {
	{ "--limit", "N", "show the newest N mailings (default 50)", false },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_mailing_specs[] = {
	{ "mailing", "send", "LIST MESSAGE.eml [--segment S] [--stream S] [--wait]",
	    "queue an RFC 5322 message to a list's active members", 2, 2,
	    cmd_send_opts, cmd_mailing_send },
	{ "mailing", "show", "ID", "a mailing's state and recipient counts", 1, 1,
	    NULL, cmd_mailing_show },
	{ "mailing", "list", "[--limit N]", "the newest mailings", 0, 0,
	    cmd_mlist_opts, cmd_mailing_list },
	{ "mailing", "pause", "ID", "stop sending a mailing for now", 1, 1, NULL,
	    cmd_mailing_pause },
	{ "mailing", "resume", "ID", "go on sending a paused mailing", 1, 1, NULL,
	    cmd_mailing_resume },
	{ "mailing", "cancel", "ID", "stop a mailing for good (recipients keep "
	    "their states)", 1, 1, NULL, cmd_mailing_cancel },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
