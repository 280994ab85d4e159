/*
 * cmd_block.c: `sluice blocks`, `sluice block show|release|permanent` and
 * `sluice report domains` (DESIGN 5.2), clients of the /api/v1/blocks and
 * /api/v1/reports/domains routes.
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

#define CMD_BLOCK_REASON_COL 60 /* reason text shown in a table cell */
#define CMD_BLOCK_PATH_MAX 4096

/* The text on one line, shortened to at most max columns for a table. */
static void
cmd_block_short(const char *text, size_t max, char *out, size_t n)
{
	if (max > n - 1)
		max = n - 1;
	str_copy(out, text, n);
	for (char *p = out; *p; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	}
	if (strlen(out) > max && max > 3)
		memcpy(out + max - 3, "...", 4);
}

/* Add key=value to the query (nothing if value is NULL); -1 if too long. */
static int
cmd_block_query(struct buf *q, const char *key, const char *value)
{
	char *e;
	int rc;

	if (value == NULL)
		return 0;
	e = client_escape(value);
	rc = buf_printf(q, "%s%s=%s", strchr(q->data ? q->data : "", '?') ?
	    "&" : "?", key, e);
	free(e);
	return rc < 0 ? -1 : 0;
}

static int
cmd_block_id(const char *s, int64_t *id)
{
	if (s == NULL || str_to_i64(s, 1, INT64_MAX, id) < 0)
		return cmd_fail("\"%s\" is not a block id", s ? s : "");
	return 0;
}

/* "permanent", or the next probe's time. */
static const char *
cmd_block_next_probe(json_t *b, char *out, size_t n)
{
	if (json_is_true(json_object_get(b, "permanent"))) {
		str_copy(out, "permanent", n);
		return out;
	}
	return cmd_time(json_object_get(b, "next_probe"), out, n);
}

/* ---- blocks ----------------------------------------------------------- */

static int
cmd_blocks(struct cmd_ctx *c)
{
	static const char *const head[] = { "ID", "STREAM", "SOURCE-IP", "DOMAIN",
		"MX-HOST", "MX-IP", "CREATED", "LAST-PROBE", "NEXT-PROBE", "PROBES",
		"REASON" };
	struct cmd_table *t;
	json_t *out = NULL, *arr, *b;
	struct buf q;
	size_t i;
	int rc = 1;

	buf_init(&q, CMD_BLOCK_PATH_MAX);
	buf_puts(&q, "/api/v1/blocks");
	if (cmd_block_query(&q, "stream", cmd_opt(c, "--stream")) < 0 ||
	    cmd_block_query(&q, "domain", cmd_opt(c, "--domain")) < 0 ||
	    cmd_block_query(&q, "ip", cmd_opt(c, "--ip")) < 0 ||
	    cmd_block_query(&q, "released", cmd_opt(c, "--released") != NULL ?
	    "1" : NULL) < 0) {
		rc = cmd_fail("blocks: the filters are too long");
		goto out;
	}
	if (cmd_call(c, "GET", q.data, NULL, 0, NULL, &out) != 0)
		goto out;
	rc = 0;
	if (c->json) {
		cmd_print_json(out);
		goto out;
	}
	arr = json_object_get(out, "blocks");
	if (json_array_size(arr) == 0) {
		printf("no blocks\n");
		goto out;
	}
	t = cmd_table_new(11, head);
	cmd_table_right(t, 0);
	cmd_table_right(t, 9);
	json_array_foreach(arr, i, b) {
		char id[24], probes[24], created[40], last[40], next[40];
		char reason[CMD_BLOCK_REASON_COL + 1];

		snprintf(id, sizeof(id), "%lld", cmd_int(b, "id"));
		snprintf(probes, sizeof(probes), "%lld", cmd_int(b, "probes"));
		cmd_time(json_object_get(b, "created"), created, sizeof(created));
		cmd_time(json_object_get(b, "last_probe"), last, sizeof(last));
		cmd_block_next_probe(b, next, sizeof(next));
		if (cmd_int(b, "released") > 0)
			snprintf(next, sizeof(next), "released (%s)",
			    cmd_str(b, "released_by"));
		cmd_block_short(cmd_str(b, "reason"), CMD_BLOCK_REASON_COL, reason,
		    sizeof(reason));
		const char *row[] = { id, cmd_str(b, "stream"),
			cmd_str(b, "source_ip"), cmd_str(b, "domain"),
			cmd_str(b, "mx_host"), cmd_str(b, "mx_ip"), created, last,
			next, probes, reason };
		cmd_table_add(t, row);
	}
	cmd_table_done(t, NULL);
out:
	json_decref(out);
	buf_fini(&q);
	return rc;
}

static int
cmd_block_show(struct cmd_ctx *c)
{
	static const char *const head[] = { "TIME", "EVENT", "BY", "DETAIL" };
	char path[64], when[40];
	json_t *out = NULL, *b, *h;
	struct cmd_table *t;
	int64_t id;
	size_t i;
	int rc;

	if (cmd_block_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/blocks/%" PRId64, id);
	if ((out = cmd_get_listing(c, path, &rc)) == NULL)
		return rc;
	b = json_object_get(out, "block");
	printf("block        %lld\n", cmd_int(b, "id"));
	printf("stream       %s\n", cmd_str(b, "stream"));
	printf("source IP    %s\n", cmd_str(b, "source_ip"));
	printf("domain       %s\n", cmd_str(b, "domain"));
	printf("MX           %s (%s)\n", cmd_str(b, "mx_host"), cmd_str(b, "mx_ip"));
	printf("reason       %s\n", cmd_str(b, "reason"));
	printf("created      %s\n", cmd_time(json_object_get(b, "created"), when,
	    sizeof(when)));
	printf("last probe   %s", cmd_time(json_object_get(b, "last_probe"), when,
	    sizeof(when)));
	if (*cmd_str(b, "last_probe_result"))
		printf(": %s", cmd_str(b, "last_probe_result"));
	printf("\n");
	printf("probes       %lld\n", cmd_int(b, "probes"));
	if (cmd_int(b, "released") > 0)
		printf("released     %s by %s\n", cmd_time(json_object_get(b,
		    "released"), when, sizeof(when)), cmd_str(b, "released_by"));
	else
		printf("next probe   %s\n", cmd_block_next_probe(b, when,
		    sizeof(when)));

	printf("\nhistory:\n");
	t = cmd_table_new(4, head);
	json_array_foreach(json_object_get(out, "history"), i, h) {
		char detail[CMD_BLOCK_REASON_COL * 2 + 1];

		cmd_time(json_object_get(h, "time"), when, sizeof(when));
		cmd_block_short(cmd_str(h, "detail"), CMD_BLOCK_REASON_COL * 2,
		    detail, sizeof(detail));
		const char *row[] = { when, cmd_str(h, "kind"), cmd_str(h, "by"),
			detail };
		cmd_table_add(t, row);
	}
	cmd_table_done(t, NULL);
	json_decref(out);
	return 0;
}

static int
cmd_block_release(struct cmd_ctx *c)
{
	const char *domain = cmd_opt(c, "--domain"), *ip = cmd_opt(c, "--ip");
	bool all = cmd_opt(c, "--all") != NULL;
	int nsel = (c->npos > 0) + (domain != NULL) + (ip != NULL) + all;
	json_t *out = NULL, *body = NULL;
	char path[64];
	int64_t id;
	int rc = 1;

	if (nsel != 1)
		return cmd_fail("block release: give exactly one of ID, --domain D, "
		    "--ip IP or --all");
	if (c->npos > 0) {
		if (cmd_block_id(c->pos[0], &id) != 0)
			return 1;
		snprintf(path, sizeof(path), "/api/v1/blocks/%" PRId64 "/release",
		    id);
		if (cmd_call(c, "POST", path, NULL, 0, NULL, &out) != 0)
			goto out;
	} else {
		if (domain != NULL)
			body = json_pack("{s:s}", "domain", domain);
		else if (ip != NULL)
			body = json_pack("{s:s}", "ip", ip);
		else
			body = json_pack("{s:b}", "all", 1);
		if (body == NULL) {
			rc = cmd_fail("block release: the value is not valid UTF-8");
			goto out;
		}
		if (cmd_call_json(c, "POST", "/api/v1/blocks/release", body,
		    &out) != 0)
			goto out;
	}
	rc = 0;
	if (c->json)
		cmd_print_json(out);
	else
		printf("released %lld block%s\n", cmd_int(out, "released"),
		    cmd_int(out, "released") == 1 ? "" : "s");
out:
	json_decref(body);
	json_decref(out);
	return rc;
}

static int
cmd_block_permanent(struct cmd_ctx *c)
{
	bool off = cmd_opt(c, "--off") != NULL;
	json_t *out = NULL, *body;
	char path[64], when[40];
	int64_t id;
	int rc = 1;

	if (cmd_block_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/blocks/%" PRId64 "/permanent", id);
	body = json_pack("{s:b}", "permanent", !off);
	if (cmd_call_json(c, "POST", path, body, &out) != 0)
		goto out;
	rc = 0;
	if (c->json)
		cmd_print_json(out);
	else if (off)
		printf("block %" PRId64 " is no longer permanent; next probe %s\n",
		    id, cmd_block_next_probe(json_object_get(out, "block"), when,
		    sizeof(when)));
	else
		printf("block %" PRId64 " is permanent (never probed)\n", id);
out:
	json_decref(body);
	json_decref(out);
	return rc;
}

/* ---- report domains --------------------------------------------------- */

static void
cmd_domain_status(json_t *d, char *out, size_t n)
{
	const char *s = cmd_str(d, "status");

	if (strcmp(s, "fully_blocked") == 0)
		str_copy(out, "fully blocked", n);
	else if (strcmp(s, "partly_blocked") == 0)
		snprintf(out, n, "partly blocked %lld/%lld", cmd_int(d,
		    "pairs_blocked"), cmd_int(d, "pairs"));
	else
		str_copy(out, *s ? s : "-", n);
}

static int
cmd_report_domains(struct cmd_ctx *c)
{
	static const char *const head[] = { "DOMAIN", "STREAM", "WAITING",
		"STATUS", "NEXT-PROBE", "LIMIT" };
	json_t *out = NULL, *arr, *d, *lim;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/reports/domains", &rc)) == NULL)
		return rc;
	arr = json_object_get(out, "domains");
	if (json_array_size(arr) == 0) {
		printf("no recipients waiting\n");
		json_decref(out);
		return 0;
	}
	t = cmd_table_new(6, head);
	cmd_table_right(t, 2);
	json_array_foreach(arr, i, d) {
		char waiting[24], status[64], next[40], limit[256];

		snprintf(waiting, sizeof(waiting), "%lld", cmd_int(d, "waiting"));
		cmd_domain_status(d, status, sizeof(status));
		cmd_time(json_object_get(d, "next_probe"), next, sizeof(next));
		lim = json_object_get(d, "limit");
		if (json_is_string(lim))
			str_copy(limit, json_string_value(lim), sizeof(limit));
		else if (json_is_object(lim) || json_is_array(lim)) {
			char *text = json_dumps(lim, JSON_COMPACT);
			str_copy(limit, text ? text : "-", sizeof(limit));
			free(text);
		} else
			str_copy(limit, "-", sizeof(limit));
		const char *row[] = { cmd_str(d, "domain"), cmd_str(d, "stream"),
			waiting, status, next, limit };
		cmd_table_add(t, row);
	}
	cmd_table_done(t, NULL);
	json_decref(out);
	return 0;
}

/* ---- shared with `mailing show` --------------------------------------- */

void
cmd_block_print_waiting(json_t *mailing)
{
	json_t *eng = json_object_get(mailing, "engine"), *d;
	size_t i;

	if (!json_is_true(json_object_get(eng, "waiting_on_blocks")))
		return;
	printf("waiting on blocks: ");
	json_array_foreach(json_object_get(eng, "blocked_domains"), i, d)
		printf("%s%s", i ? ", " : "", json_is_string(d) ?
		    json_string_value(d) : "?");
	printf("\n");
}

/* ---- the table -------------------------------------------------------- */

static const struct cmd_opt cmd_blocks_opts[] = {
	{ "--stream", "S", "blocks of this stream (found by it or from its IPs)",
	    false },
	{ "--domain", "D", "blocks found delivering to this domain", false },
	{ "--ip", "IP", "blocks of this source IP", false },
	{ "--released", NULL, "released blocks too", false },
	{ NULL, NULL, NULL, false },
};

static const struct cmd_opt cmd_block_release_opts[] = {
	{ "--domain", "D", "release every block of this domain", false },
	{ "--ip", "IP", "release every block of this source IP", false },
	{ "--all", NULL, "release every block", false },
	{ NULL, NULL, NULL, false },
};

static const struct cmd_opt cmd_block_permanent_opts[] = {
	{ "--off", NULL, "unmark: probe it again at the probe interval", false },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_block_specs[] = {
	{ "blocks", NULL, "[--stream S] [--domain D] [--ip IP] [--released]",
	    "standing blocks of (source IP, MX IP) pairs", 0, 0, cmd_blocks_opts,
	    cmd_blocks },
	{ "block", "show", "ID", "one block and its history", 1, 1, NULL,
	    cmd_block_show },
	{ "block", "release", "ID | --domain D | --ip IP | --all",
	    "release blocks (the engine uses the pairs again at once)", 0, 1,
	    cmd_block_release_opts, cmd_block_release },
	{ "block", "permanent", "ID [--off]", "mark a block permanent (never "
	    "probed), or unmark it", 1, 1, cmd_block_permanent_opts,
	    cmd_block_permanent },
	{ "report", "domains", "", "domains with recipients waiting and their "
	    "status per stream", 0, 0, NULL, cmd_report_domains },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
