/*
 * cmd_limit.c: `sluice limit add|edit|list|rm` and `sluice macro
 * set|list|rm` (DESIGN 5.3 and 6), clients of /api/v1/limits and
 * /api/v1/macros. Options are checked here first, so a mistake gets one
 * clear line without a round trip; the daemon checks everything again.
 *
 * A blank limit field is null in the API; on the command line an option
 * left out is blank (add) or kept (edit), and the value "none" blanks it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/conf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CMD_SIMULTANEOUS_MAX 100

/* The numeric options of a limit: option, JSON key, words, kind ('n' a
 * count, 'd' a duration with s/m/h/d suffix). */
static const struct {
	const char *opt;
	const char *key;
	const char *what;
	char kind;
} cmd_limit_nums[] = {
	{ "--messages-per-hour", "messages_per_hour", "messages per hour", 'n' },
	{ "--connections-per-hour", "connections_per_hour", "connections per hour",
	    'n' },
	{ "--simultaneous", "simultaneous", "simultaneous connections", 'n' },
	{ "--messages-per-connection", "messages_per_connection",
	    "messages per connection", 'n' },
	{ "--greylist-interval", "greylist_interval", "greylist interval", 'd' },
	{ "--greylist-max", "greylist_max", "greylist maximum", 'd' },
};

#define CMD_LIMIT_NNUMS (sizeof(cmd_limit_nums) / sizeof(cmd_limit_nums[0]))

static bool
cmd_is_none(const char *v)
{
	return strcmp(v, "none") == 0 || strcmp(v, "-") == 0;
}

/* One numeric option into body (null for "none"). 0, or 1 after an error. */
static int
cmd_limit_num(json_t *body, size_t i, const char *v)
{
	const char *what = cmd_limit_nums[i].what;
	int64_t n;

	if (cmd_is_none(v)) {
		json_object_set_new(body, cmd_limit_nums[i].key, json_null());
		return 0;
	}
	if (cmd_limit_nums[i].kind == 'd') {
		if (conf_parse_int(v, 'd', &n) < 0)
			return cmd_fail("%s: \"%s\" is not a duration (e.g. 240, 90s, 4m, "
			    "2h)", cmd_limit_nums[i].opt, v);
	} else if (str_to_i64(v, INT64_MIN, INT64_MAX, &n) < 0) {
		return cmd_fail("%s: \"%s\" is not a number", cmd_limit_nums[i].opt, v);
	}
	if (strcmp(cmd_limit_nums[i].key, "simultaneous") == 0 &&
	    (n < 1 || n > CMD_SIMULTANEOUS_MAX))
		return cmd_fail("simultaneous connections must be 1 to %d",
		    CMD_SIMULTANEOUS_MAX);
	if (n < 0)
		return cmd_fail("%s must not be negative", what);
	if (n == 0)
		return cmd_fail("%s must be at least 1 (leave it out, or \"none\", "
		    "for no limit)", what);
	json_object_set_new(body, cmd_limit_nums[i].key, json_integer(n));
	return 0;
}

/*
 * Apply the options given to body: the fields named are set (or blanked
 * with "none"), the others left as they are. 0, or 1 after an error.
 */
static int
cmd_limit_apply(const struct cmd_ctx *c, json_t *body)
{
	const char *v;

	if ((v = cmd_opt(c, "--target")) != NULL) {
		if (*v == '\0' || cmd_is_none(v))
			return cmd_fail("--target needs a domain, $macro or mx:HOST");
		json_object_set_new(body, "target", json_string(v));
	}
	if ((v = cmd_opt(c, "--source")) != NULL)
		json_object_set_new(body, "source", *v == '\0' || cmd_is_none(v) ?
		    json_null() : json_string(v));
	for (size_t i = 0; i < CMD_LIMIT_NNUMS; i++) {
		if ((v = cmd_opt(c, cmd_limit_nums[i].opt)) == NULL)
			continue;
		if (cmd_limit_num(body, i, v) != 0)
			return 1;
	}
	if ((v = cmd_opt(c, "--greylist-function")) != NULL) {
		if (cmd_is_none(v))
			json_object_set_new(body, "greylist_function", json_null());
		else if (strcmp(v, "same") == 0 || strcmp(v, "double") == 0 ||
		    strcmp(v, "square") == 0)
			json_object_set_new(body, "greylist_function", json_string(v));
		else
			return cmd_fail("unknown greylist function '%s' (same, double or "
			    "square)", v);
	}
	return 0;
}

/* A number of seconds as "2h" when whole hours, else "240s". */
static void
cmd_limit_duration(long long s, char *out, size_t n)
{
	if (s > 0 && s % 3600 == 0)
		snprintf(out, n, "%lldh", s / 3600);
	else
		snprintf(out, n, "%llds", s);
}

/* The greylist column: "240s same max 2h", or "-" when nothing is set. */
static void
cmd_limit_greylist(json_t *l, char *out, size_t n)
{
	const char *fn = cmd_str(l, "greylist_function");
	long long iv = cmd_int(l, "greylist_interval");
	long long max = cmd_int(l, "greylist_max");
	char a[32], b[32];

	if (iv == 0 && max == 0 && *fn == '\0') {
		str_copy(out, "-", n);
		return;
	}
	cmd_limit_duration(iv ? iv : 240, a, sizeof(a));
	if (max) {
		cmd_limit_duration(max, b, sizeof(b));
		snprintf(out, n, "%s %s max %s", a, *fn ? fn : "same", b);
	} else {
		snprintf(out, n, "%s %s", a, *fn ? fn : "same");
	}
}

/* A count column: the number, or "-" when blank. */
static const char *
cmd_limit_count(json_t *l, const char *key, char *out, size_t n)
{
	long long v = cmd_int(l, key);

	if (v == 0)
		return "-";
	snprintf(out, n, "%lld", v);
	return out;
}

static void
cmd_limit_describe(const char *verb, json_t *l)
{
	const char *src = cmd_str(l, "source");

	printf("limit %lld %s: %s -> %s\n", cmd_int(l, "id"), verb,
	    *src ? src : "any source", cmd_str(l, "target"));
}

static int
cmd_limit_id(const char *s, int64_t *id)
{
	if (str_to_i64(s, 1, INT64_MAX, id) < 0)
		return cmd_fail("\"%s\" is not a limit id (see `sluice limit list`)", s);
	return 0;
}

/* ---- limit ------------------------------------------------------------ */

static int
cmd_limit_add(struct cmd_ctx *c)
{
	json_t *body = json_object(), *out = NULL;
	int rc;

	if (cmd_opt(c, "--target") == NULL) {
		rc = cmd_fail("limit add: --target is required (a domain, $macro or "
		    "mx:HOST)");
		goto done;
	}
	if ((rc = cmd_limit_apply(c, body)) != 0)
		goto done;
	if ((rc = cmd_call_json(c, "POST", "/api/v1/limits", body, &out)) != 0)
		goto done;
	if (c->json)
		cmd_print_json(out);
	else
		cmd_limit_describe("added", out);
done:
	json_decref(out);
	json_decref(body);
	return rc;
}

static int
cmd_limit_edit(struct cmd_ctx *c)
{
	json_t *cur = NULL, *out = NULL;
	char path[64];
	int64_t id;
	int rc;

	if (cmd_limit_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/limits/%" PRId64, id);
	if ((rc = cmd_call(c, "GET", path, NULL, 0, NULL, &cur)) != 0)
		goto done;
	json_object_del(cur, "created");
	if ((rc = cmd_limit_apply(c, cur)) != 0)
		goto done;
	if ((rc = cmd_call_json(c, "PUT", path, cur, &out)) != 0)
		goto done;
	if (c->json)
		cmd_print_json(out);
	else
		cmd_limit_describe("updated", out);
done:
	json_decref(out);
	json_decref(cur);
	return rc;
}

static int
cmd_limit_list(struct cmd_ctx *c)
{
	static const char *const head[] = { "ID", "SOURCE", "TARGET", "MSG/H",
		"CONN/H", "SIMUL", "MSG/CONN", "GREYLIST" };
	json_t *out = NULL, *l;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/limits", &rc)) == NULL)
		return rc;
	t = cmd_table_new(8, head);
	json_array_foreach(json_object_get(out, "limits"), i, l) {
		char id[24], mph[24], cph[24], sim[24], mpc[24], grey[96];
		const char *src = cmd_str(l, "source");
		const char *row[8];

		snprintf(id, sizeof(id), "%lld", cmd_int(l, "id"));
		cmd_limit_greylist(l, grey, sizeof(grey));
		row[0] = id;
		row[1] = *src ? src : "any";
		row[2] = cmd_str(l, "target");
		row[3] = cmd_limit_count(l, "messages_per_hour", mph, sizeof(mph));
		row[4] = cmd_limit_count(l, "connections_per_hour", cph, sizeof(cph));
		row[5] = cmd_limit_count(l, "simultaneous", sim, sizeof(sim));
		row[6] = cmd_limit_count(l, "messages_per_connection", mpc,
		    sizeof(mpc));
		row[7] = grey;
		cmd_table_add(t, row);
	}
	for (size_t col = 3; col <= 6; col++)
		cmd_table_right(t, col);
	cmd_table_done(t, "no limits: the server default applies (10 simultaneous "
	    "connections per source IP and MX IP, greylist retry 240s same)");
	json_decref(out);
	return 0;
}

static int
cmd_limit_rm(struct cmd_ctx *c)
{
	char path[64];
	int64_t id;

	if (cmd_limit_id(c->pos[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/limits/%" PRId64, id);
	return cmd_delete(c, path, "limit %" PRId64 " removed\n", id);
}

/* ---- macro ------------------------------------------------------------ */

static const char *
cmd_macro_name(const char *name)
{
	return name[0] == '$' ? name + 1 : name;
}

static int
cmd_macro_set(struct cmd_ctx *c)
{
	const char *name = cmd_macro_name(c->pos[0]);
	json_t *doms = json_array(), *body, *out = NULL;
	char *path;
	int rc;

	for (int i = 1; i < c->npos; i++)
		json_array_append_new(doms, json_string(c->pos[i]));
	body = json_pack("{s:o}", "domains", doms);
	path = cmd_path("/api/v1/macros/%s", name);
	rc = cmd_call_json(c, "PUT", path, body, &out);
	if (rc == 0) {
		size_t n = json_array_size(json_object_get(out, "domains"));

		if (c->json)
			cmd_print_json(out);
		else
			printf("macro $%s: %zu domain%s\n", name, n, n == 1 ? "" : "s");
	}
	json_decref(out);
	json_decref(body);
	free(path);
	return rc;
}

static int
cmd_macro_list(struct cmd_ctx *c)
{
	static const char *const head[] = { "MACRO", "DOMAINS" };
	json_t *out = NULL, *m;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/macros", &rc)) == NULL)
		return rc;
	t = cmd_table_new(2, head);
	json_array_foreach(json_object_get(out, "macros"), i, m) {
		char name[80];
		struct buf b;
		size_t j;
		json_t *d;

		snprintf(name, sizeof(name), "$%s", cmd_str(m, "name"));
		buf_init(&b, 1 << 20);
		json_array_foreach(json_object_get(m, "domains"), j, d)
			buf_printf(&b, "%s%s", j ? " " : "",
			    json_string_value(d) ? json_string_value(d) : "");
		const char *row[] = { name, b.data ? b.data : "" };
		cmd_table_add(t, row);
		buf_fini(&b);
	}
	cmd_table_done(t, "no macros");
	json_decref(out);
	return 0;
}

static int
cmd_macro_rm(struct cmd_ctx *c)
{
	const char *name = cmd_macro_name(c->pos[0]);
	char *path = cmd_path("/api/v1/macros/%s", name);
	int rc;

	rc = cmd_delete(c, path, "macro $%s removed\n", name);
	free(path);
	return rc;
}

static const struct cmd_opt cmd_limit_opts[] = {
	{ "--target", "T", "recipient domain (and its subdomains), $macro, "
	    "mx:HOST-pattern or mx:IP", false },
	{ "--source", "S", "sender domain, $macro, stream:NAME or source IP "
	    "(default: any)", false },
	{ "--messages-per-hour", "N", "messages per hour, spread evenly", false },
	{ "--connections-per-hour", "N", "new connections per hour, spread evenly",
	    false },
	{ "--simultaneous", "N", "simultaneous connections, 1 to 100 (replaces "
	    "the server default of 10 per source IP and MX IP)", false },
	{ "--messages-per-connection", "N", "messages before a connection is "
	    "closed and a new one opened", false },
	{ "--greylist-interval", "S", "first greylist retry after S (s, m, h; "
	    "default 240s)", false },
	{ "--greylist-function", "F", "same, double or square: how later "
	    "greylist retries grow", false },
	{ "--greylist-max", "S", "longest greylist retry wait (s, m, h)", false },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_limit_specs[] = {
	{ "limit", "add", "--target T [options]",
	    "add a domain connection limit (\"none\" or leaving an option out: "
	    "unlimited)", 0, 0, cmd_limit_opts, cmd_limit_add },
	{ "limit", "edit", "ID [options]",
	    "change the given fields of a limit, keep the others (\"none\" "
	    "blanks one)", 1, 1, cmd_limit_opts, cmd_limit_edit },
	{ "limit", "list", "", "list the domain connection limits", 0, 0, NULL,
	    cmd_limit_list },
	{ "limit", "rm", "ID", "remove a limit", 1, 1, NULL, cmd_limit_rm },
	{ "macro", "set", "NAME DOMAIN...",
	    "define the domain set $NAME, or replace its domains", 2,
	    CMD_POS_MAX, NULL, cmd_macro_set },
	{ "macro", "list", "", "list the domain macros", 0, 0, NULL,
	    cmd_macro_list },
	{ "macro", "rm", "NAME", "remove a macro no limit uses", 1, 1, NULL,
	    cmd_macro_rm },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
