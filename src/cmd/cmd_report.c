/*
 * cmd_report.c: `sluice attempts`, `sluice report streams` and
 * `sluice explain`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CMD_TEXT_COL 72 /* reply text shown in a table cell */

static void
cmd_query_add(struct buf *q, const char *key, const char *value)
{
	char *e;

	if (value == NULL)
		return;
	e = client_escape(value);
	buf_printf(q, "%s%s=%s", strchr(q->data ? q->data : "", '?') ? "&" : "?",
	    key, e);
	free(e);
}

/* The reply text of an attempt on one line, shortened for a table. */
static void
cmd_short_text(const char *text, char *out, size_t n)
{
	size_t max = n - 1 < CMD_TEXT_COL ? n - 1 : CMD_TEXT_COL;

	str_copy(out, text, n);
	for (char *p = out; *p; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	}
	if (strlen(out) > max && max > 3)
		memcpy(out + max - 3, "...", 4);
}

static void
cmd_attempts_table(json_t *arr, bool with_email)
{
	static const char *const head[] = { "TIME", "EMAIL", "SOURCE IP", "MX",
		"STAGE", "CODE", "CATEGORY", "OUTCOME", "REPLY" };
	size_t skip = with_email ? 0 : 1; /* leave the EMAIL column out */
	const char *h[9];
	struct cmd_table *t;
	size_t i;
	json_t *a;

	h[0] = head[0];
	for (size_t k = 1 + skip; k < 9; k++)
		h[k - skip] = head[k];
	t = cmd_table_new(9 - skip, h);
	json_array_foreach(arr, i, a) {
		char when[40], code[32], mx[320], text[CMD_TEXT_COL + 1];
		const char *enh = cmd_str(a, "enhanced");
		const char *host = cmd_str(a, "mx_host"), *ip = cmd_str(a, "mx_ip");
		const char *row[9];

		cmd_time(json_object_get(a, "time"), when, sizeof(when));
		if (cmd_int(a, "code") != 0)
			snprintf(code, sizeof(code), "%lld%s%s", cmd_int(a, "code"),
			    *enh ? " " : "", enh);
		else
			str_copy(code, "-", sizeof(code));
		if (*ip && strcmp(host, ip) != 0)
			snprintf(mx, sizeof(mx), "%s (%s)", host, ip);
		else
			snprintf(mx, sizeof(mx), "%s", *host ? host : ip);
		cmd_short_text(cmd_str(a, "text"), text, sizeof(text));
		const char *cells[] = { when, cmd_str(a, "email"),
			cmd_str(a, "source_ip"), mx, cmd_str(a, "stage"), code,
			cmd_str(a, "category"), cmd_str(a, "outcome"), text };
		row[0] = cells[0];
		for (size_t k = 1 + skip; k < 9; k++)
			row[k - skip] = cells[k];
		cmd_table_add(t, row);
	}
	cmd_table_done(t, NULL);
}

static int
cmd_attempts(struct cmd_ctx *c)
{
	int64_t mailing = 0, limit = 0;
	char num[24];
	json_t *out = NULL;
	struct buf q;
	int rc = 1;

	if (cmd_opt_int(c, "--mailing", 1, INT64_MAX, &mailing) < 0 ||
	    cmd_opt_int(c, "--limit", 1, 10000, &limit) < 0)
		return 1;
	buf_init(&q, 4096);
	buf_puts(&q, "/api/v1/attempts");
	if (mailing > 0) {
		snprintf(num, sizeof(num), "%" PRId64, mailing);
		cmd_query_add(&q, "mailing", num);
	}
	cmd_query_add(&q, "email", cmd_opt(c, "--email"));
	cmd_query_add(&q, "domain", cmd_opt(c, "--domain"));
	if (limit > 0) {
		snprintf(num, sizeof(num), "%" PRId64, limit);
		cmd_query_add(&q, "limit", num);
	}
	if (cmd_call(c, "GET", q.data, NULL, 0, NULL, &out) != 0)
		goto out;
	if (c->json)
		cmd_print_json(out);
	else if (json_array_size(json_object_get(out, "attempts")) == 0)
		printf("no attempts match\n");
	else
		cmd_attempts_table(json_object_get(out, "attempts"), true);
	rc = 0;
out:
	json_decref(out);
	buf_fini(&q);
	return rc;
}

static int
cmd_report_streams(struct cmd_ctx *c)
{
	static const char *const head[] = { "STREAM", "SOURCE IP", "SENT",
		"DEFERRED", "FAILED", "CONNECTIONS", "BLOCKED" };
	json_t *out = NULL, *s, *ip;
	struct cmd_table *t;
	size_t i, j;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/reports/streams", &rc)) == NULL)
		return rc;
	t = cmd_table_new(7, head);
	for (size_t col = 2; col < 7; col++)
		cmd_table_right(t, col);
	json_array_foreach(json_object_get(out, "streams"), i, s) {
		char n[5][24];
		/* pairs_blocked: standing blocks from the stream's IPs */
		static const char *const keys[] = { "sent", "deferred", "failed",
			"connections", "pairs_blocked" };
		for (size_t k = 0; k < 5; k++)
			snprintf(n[k], sizeof(n[k]), "%lld", cmd_int(s, keys[k]));
		const char *row[] = { cmd_str(s, "name"), "(all)", n[0], n[1], n[2],
			n[3], n[4] };
		cmd_table_add(t, row);
		json_array_foreach(json_object_get(s, "ips"), j, ip) {
			for (size_t k = 0; k < 5; k++)
				snprintf(n[k], sizeof(n[k]), "%lld",
				    cmd_int(ip, keys[k]));
			const char *irow[] = { "", cmd_str(ip, "ip"), n[0], n[1],
				n[2], n[3], n[4] };
			cmd_table_add(t, irow);
		}
	}
	cmd_table_done(t, NULL);
	json_decref(out);
	return 0;
}

static int
cmd_explain(struct cmd_ctx *c)
{
	int64_t mailing = 0;
	char num[24], when[40];
	json_t *out = NULL, *r;
	struct buf q;
	int rc = 1;

	if (cmd_opt(c, "--mailing") == NULL)
		return cmd_fail("explain: --mailing ID is needed");
	if (cmd_opt_int(c, "--mailing", 1, INT64_MAX, &mailing) < 0)
		return 1;
	buf_init(&q, 4096);
	buf_puts(&q, "/api/v1/explain");
	cmd_query_add(&q, "email", c->pos[0]);
	snprintf(num, sizeof(num), "%" PRId64, mailing);
	cmd_query_add(&q, "mailing", num);
	if (cmd_call(c, "GET", q.data, NULL, 0, NULL, &out) != 0)
		goto out;
	if (c->json) {
		cmd_print_json(out);
		rc = 0;
		goto out;
	}
	r = json_object_get(out, "recipient");
	/* reason: the engine's (blocks, limits) when it has one; the
	 * store's view of the recipient is then state_reason */
	printf("%s in mailing %" PRId64 ": %s\n", c->pos[0], mailing,
	    cmd_str(out, "reason"));
	if (*cmd_str(out, "state_reason") &&
	    strcmp(cmd_str(out, "state_reason"), cmd_str(out, "reason")) != 0)
		printf("  recipient     %s\n", cmd_str(out, "state_reason"));
	printf("  state         %s\n", cmd_str(r, "state"));
	printf("  attempts      %lld\n", cmd_int(r, "attempts"));
	printf("  next attempt  %s\n", cmd_time(json_object_get(r, "next_at"),
	    when, sizeof(when)));
	if (*cmd_str(r, "sticky_ip"))
		printf("  retry from    %s\n", cmd_str(r, "sticky_ip"));
	printf("  member        %s\n", cmd_str(r, "member_status"));
	if (json_array_size(json_object_get(out, "attempts")) > 0) {
		printf("\n");
		cmd_attempts_table(json_object_get(out, "attempts"), false);
	}
	rc = 0;
out:
	json_decref(out);
	buf_fini(&q);
	return rc;
}

static const struct cmd_opt cmd_attempts_opts[] = {
	{ "--mailing", "ID", "only this mailing's attempts", false },
	{ "--email", "ADDR", "only attempts to this address", false },
	{ "--domain", "D", "only attempts to this domain", false },
	{ "--limit", "N", "at most N attempts, newest first (default 100)", false },
	{ NULL, NULL, NULL, false },
};

static const struct cmd_opt cmd_explain_opts[] = {
	{ "--mailing", "ID", "the mailing (required)", false },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_report_specs[] = {
	{ "attempts", NULL, "[--mailing ID] [--email ADDR] [--domain D] "
	    "[--limit N]", "the delivery attempt log, newest first", 0, 0,
	    cmd_attempts_opts, cmd_attempts },
	{ "report", "streams", "", "sent, deferred, failed and connections per "
	    "stream and source IP", 0, 0, NULL, cmd_report_streams },
	{ "explain", NULL, "ADDR --mailing ID", "why this recipient is where it "
	    "is", 1, 1, cmd_explain_opts, cmd_explain },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
